"""The webhook channel: a notification as a signed JSON POST.

The body is the run event as JSON (:func:`event_body`); the header
``X-Idsync-Signature: sha256=<hex>`` is the HMAC-SHA256 of the exact body
bytes with the webhook secret, so the receiver can check the request came
from this installation (:func:`verify` is the reference check).
``X-Idsync-Delivery`` carries the message's id, made of its outbox row and
the installation (the email's Message-ID without its angle brackets): the
same at every attempt, so a receiver that got a request whose answer was
lost may see it again, and can tell.

Answers: 2xx is delivered; 408, 429 and 5xx, or no answer at all, may pass
(:class:`~idsync.errors.TransientError`); any other 4xx will not. HTTPS
certificates are verified with :func:`ssl.create_default_context`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from idsync.errors import ConnectorError, TransientError
from idsync.notify.events import RunEvent

SIGNATURE_HEADER = "X-Idsync-Signature"
DELIVERY_HEADER = "X-Idsync-Delivery"
EVENT_HEADER = "X-Idsync-Event"
TIMEOUT_SECONDS = 10.0


def event_body(event: RunEvent, trigger: str, subject: str) -> dict[str, Any]:
    """The JSON document of *event* for *trigger*: what a receiver needs to act on it."""

    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "trigger": trigger,
        "subject": subject,
        "run_id": event.run_id,
        "collection": event.collection,
        "state": event.state,
        "run_trigger": event.trigger,
        "started_at": when(event.started_at),
        "finished_at": when(event.finished_at),
        "duration_seconds": event.duration_seconds,
        "counts": event.counts.to_dict(),
        "jobs": [
            {"job": job.job, "state": job.state, "counts": job.counts.to_dict(), "error": job.error}
            for job in event.jobs
        ],
        "errors": [
            {"message": e.message, "key": e.key, "attribute": e.attribute, "dn": e.dn, "line": e.line}
            for e in event.errors
        ],
        "error_total": event.error_total,
        "error": event.error,
        "missed": event.missed,
        "link": event.link,
    }


def sign(secret: str, body: bytes) -> str:
    """The signature header value of *body*."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether *header* is the signature of *body* (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, body), header)


def post(url: str, body: bytes, secret: str, *, delivery: str, event: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """POST *body* to *url*, signed; the answer in one line."""
    if not url.lower().startswith(("http://", "https://")):
        raise ConnectorError(f"webhook {url!r}: only http:// and https:// URLs are posted to")
    request = urllib.request.Request(  # noqa: S310 (http and https only, checked above)
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "idsync",
            SIGNATURE_HEADER: sign(secret, body),
            DELIVERY_HEADER: delivery,
            EVENT_HEADER: event,
        },
    )
    context = ssl.create_default_context()
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310 (checked above)
            return f"webhook {url} answered {response.status} {response.reason}"
    except urllib.error.HTTPError as exc:
        error = TransientError if exc.code in (408, 429) or exc.code >= 500 else ConnectorError
        raise error(f"webhook {url} answered {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise ConnectorError(f"webhook {url}: certificate refused ({reason.verify_message})") from None
        raise TransientError(f"webhook {url} cannot be reached: {reason}") from None
    except (TimeoutError, OSError) as exc:
        raise TransientError(f"webhook {url} cannot be reached: {exc or type(exc).__name__}") from None


def encode(document: dict[str, Any]) -> bytes:
    """The exact bytes sent (and signed)."""
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode("utf-8")
