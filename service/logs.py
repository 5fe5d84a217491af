"""Structured JSON logs and the request id carried by every response."""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid

import msgspec
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_enc = msgspec.json.Encoder()
_STD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update({k: v for k, v in vars(record).items() if k not in _STD})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return _enc.encode(
            {
                k: (v if isinstance(v, int | float | str | bool | None) else str(v))
                for k, v in out.items()
            }
        ).decode()


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request's full URL at INFO, and a webhook URL may carry the
    # receiver's token: only its warnings reach the log (failures are logged by us, masked).
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


access_log = logging.getLogger("service.access")

# Paths that carry a bearer secret (links emailed to people): the secret never reaches a log.
_SECRET_PAGES = ("/invites/", "/password/reset/")
_API_INVITE = re.compile(r"^/v1/invites/(?P<code>[^/]+)(?P<rest>/.*)$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
MASK = "***"


def mask_path(path: str) -> str:
    """The path as logs may show it: invite codes and reset tokens replaced by ***.

    ``/v1/invites/<code>/accept`` is masked, ``/v1/invites/<uuid>/resend`` is not (an id).
    """
    for prefix in _SECRET_PAGES:
        if path.startswith(prefix) and len(path) > len(prefix):
            return prefix + MASK
    m = _API_INVITE.match(path)
    if m is not None and not _UUID.match(m["code"]):
        return f"/v1/invites/{MASK}{m['rest']}"
    return path


def request_id_middleware(app: ASGIApp) -> ASGIApp:
    """Give each request an id (or keep a sane client one), echo it, log one line per request."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        rid = None
        for k, v in scope["headers"]:
            if k == b"x-request-id":
                candidate = v.decode("latin-1")
                if 0 < len(candidate) <= 64 and candidate.isprintable():
                    rid = candidate
                break
        rid = rid or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await app(scope, receive, send_wrapper)
        finally:
            access_log.info(
                "request",
                extra={
                    "request_id": rid,
                    "method": scope["method"],
                    "path": mask_path(scope["path"]),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )

    return middleware
