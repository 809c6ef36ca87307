"""
Verify a TPX webhook delivery with the Python standard library only (no package to install).

TPX signs every delivery the Standard Webhooks way (SPEC §4):
  webhook-id:        the event's msg_id
  webhook-timestamp: unix seconds
  webhook-signature: "v1,<base64 HMAC-SHA256(key, f"{id}.{timestamp}.{body}")>", several
                     space-separated entries while a secret is being rotated
  key:               the base64 part of the endpoint secret "whsec_<base64>"

Use it in any framework; pass the RAW body bytes exactly as received (not re-serialised JSON):

    event = verify_tpx_webhook(os.environ["TPX_WEBHOOK_SECRET"], request.headers, request.get_data())

Run as a script, it reads {"secret", "headers", "body"} as JSON on stdin and prints the
verified event (the repository's tests do this with a real delivery from a TPX server).
"""
import base64
import hashlib
import hmac
import json
import sys
import time
from typing import Any, Mapping, Optional

TOLERANCE_SECONDS = 5 * 60  # reject deliveries signed more than 5 minutes away from now (replays)


class WebhookVerificationError(Exception):
    """The request is not a genuine, fresh TPX delivery: answer 400/401 and do not process it."""


def verify_tpx_webhook(secret: str, headers: Mapping[str, str], body: bytes, now: Optional[float] = None) -> Any:
    h = {k.lower(): v for k, v in headers.items()}
    msg_id = h.get("webhook-id")
    timestamp = h.get("webhook-timestamp")
    signatures = h.get("webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not timestamp.isdigit():
        raise WebhookVerificationError("webhook-timestamp is not a unix timestamp")
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("webhook-timestamp is outside the tolerance")

    key = base64.b64decode(secret[len("whsec_"):] if secret.startswith("whsec_") else secret)
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    for entry in signatures.split(" "):
        version, _, signature = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(signature, validate=True)
        except ValueError:
            continue
        if hmac.compare_digest(candidate, expected):  # constant-time comparison
            event = json.loads(body)
            if event.get("msg_id") != msg_id:
                raise WebhookVerificationError("body msg_id differs from webhook-id")
            return event
    raise WebhookVerificationError("no matching signature")


if __name__ == "__main__":
    request = json.load(sys.stdin)
    try:
        verified = verify_tpx_webhook(request["secret"], request["headers"], request["body"].encode())
    except WebhookVerificationError as err:
        print(f"rejected: {err}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"msg_id": verified["msg_id"], "seq": verified.get("seq"), "msg_type": verified["msg_type"]}))
