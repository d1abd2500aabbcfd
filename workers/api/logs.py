"""Keeping secrets out of the access log: the secret last part of ``/webhooks/<provider>/<secret>``
and Meta's ``hub.verify_token`` are masked before uvicorn writes a request line."""

from __future__ import annotations

import logging
import re

_URL_SECRET = re.compile(r"^(/webhooks/[^/?]+/)[^/?]+")
_VERIFY_TOKEN = re.compile(r"(hub\.verify_token=)[^&]*")


def redact_path(path: str) -> str:
    """``/webhooks/zixflow/s3cret?x=1`` → ``/webhooks/zixflow/***?x=1``."""
    return _VERIFY_TOKEN.sub(r"\1***", _URL_SECRET.sub(r"\1***", path))


class RedactAccessLog(logging.Filter):
    """A filter for ``uvicorn.access``, whose arguments are (client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True
