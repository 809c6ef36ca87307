// Verify a TPX webhook delivery with the Standard Webhooks library for Go
// (`go get github.com/standard-webhooks/libraries`), in a net/http handler.
// Not executed in this repository's tests (no Go toolchain here).
package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"

	standardwebhooks "github.com/standard-webhooks/libraries/go"
)

func main() {
	wh, err := standardwebhooks.NewWebhook(os.Getenv("TPX_WEBHOOK_SECRET")) // "whsec_…"
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("/tpx/webhooks", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20)) // the raw bytes: the signature covers them
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		if err := wh.Verify(body, r.Header); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var event struct {
			MsgType string          `json:"msg_type"`
			MsgID   string          `json:"msg_id"`
			Seq     int64           `json:"seq"`
			Payload json.RawMessage `json:"payload"`
		}
		if err := json.Unmarshal(body, &event); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		// De-duplicate on msg_id (a retried delivery repeats it); order or detect gaps with seq.
		log.Printf("#%d %s %s", event.Seq, event.MsgType, event.MsgID)
		w.WriteHeader(http.StatusOK)
	})
	log.Fatal(http.ListenAndServe(":3000", nil))
}
