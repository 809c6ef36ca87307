// Verify a TPX webhook delivery with Go's standard library only, in a net/http handler.
// Not executed in this repository's tests (no Go toolchain here); verify_raw.py implements the
// same steps and is tested against real deliveries.
package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

const tolerance = 5 * time.Minute

type Event struct {
	MsgType       string          `json:"msg_type"`
	MsgID         string          `json:"msg_id"`
	Seq           int64           `json:"seq"`
	SentAt        int64           `json:"sent_at"` // unix seconds
	SourceID      string          `json:"source_id"`
	DestinationID string          `json:"destination_id"`
	Payload       json.RawMessage `json:"payload"`
}

func verifyTPXWebhook(secret string, header http.Header, body []byte, now time.Time) (*Event, error) {
	id, ts, sigs := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return nil, errors.New("missing webhook-id, webhook-timestamp or webhook-signature header")
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, errors.New("webhook-timestamp is not a unix timestamp")
	}
	if d := now.Sub(time.Unix(unix, 0)); d > tolerance || d < -tolerance {
		return nil, errors.New("webhook-timestamp is outside the tolerance")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return nil, errors.New("the secret is not whsec_<base64>")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	expected := mac.Sum(nil)
	for _, entry := range strings.Split(sigs, " ") {
		version, signature, ok := strings.Cut(entry, ",")
		if !ok || version != "v1" {
			continue
		}
		candidate, err := base64.StdEncoding.DecodeString(signature)
		if err == nil && hmac.Equal(candidate, expected) { // constant-time comparison
			var event Event
			if err := json.Unmarshal(body, &event); err != nil {
				return nil, err
			}
			if event.MsgID != id {
				return nil, errors.New("body msg_id differs from webhook-id")
			}
			return &event, nil
		}
	}
	return nil, errors.New("no matching signature")
}

func main() {
	secret := os.Getenv("TPX_WEBHOOK_SECRET")
	http.HandleFunc("/tpx/webhooks", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20)) // the raw bytes: the signature covers them
		if err != nil {
			http.Error(w, "cannot read body", http.StatusBadRequest)
			return
		}
		event, err := verifyTPXWebhook(secret, r.Header, body, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		log.Printf("#%d %s %s", event.Seq, event.MsgType, event.MsgID)
		w.WriteHeader(http.StatusOK)
	})
	log.Fatal(http.ListenAndServe(":3000", nil))
}
