"""
Verify a TPX webhook delivery with the Standard Webhooks library for Python
(`pip install standardwebhooks`), in a Flask endpoint. Not executed in this repository's tests
(no Python package registry here); verify_raw.py is, against real deliveries.
"""
import os

from flask import Flask, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

app = Flask(__name__)
webhook = Webhook(os.environ["TPX_WEBHOOK_SECRET"])  # "whsec_…", as printed by `tpx webhooks add`


@app.post("/tpx/webhooks")
def tpx_webhook():
    try:
        # The raw body, exactly as received: the signature covers these bytes.
        event = webhook.verify(request.get_data(), dict(request.headers))
    except WebhookVerificationError as err:
        return {"error": str(err)}, 401
    # event: {"msg_type", "msg_id", "seq", "sent_at" (unix seconds), "source_id", "destination_id", "payload"}
    # De-duplicate on msg_id (a retried delivery repeats it); order or detect gaps per account with seq.
    handle(event)
    return {"ok": True}, 200


def handle(event):
    print(event["seq"], event["msg_type"], event["msg_id"])
