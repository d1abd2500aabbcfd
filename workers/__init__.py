"""wadispatch: a provider-neutral queue for WhatsApp interactive messages.

    from wadispatch import MessageValidationError, enqueue, enqueue_many

    try:
        result = enqueue({"provider": "meta", "sender": "1107264639145282", "to": "+255712345678",
                          "interactive": {...}})
    except MessageValidationError as exc:
        exc.errors                                  # every broken rule, as (path, rule)
    else:
        result.message_id, result.status            # "…uuid…", "pending"

    results = enqueue_many([request, ...])          # all recorded and queued, or none

Campaigns (a CSV or JSONL file of recipients) are in :mod:`wadispatch.campaigns`; the errors
wadispatch raises in :mod:`wadispatch.errors`; the Celery app, for ``celery -A wadispatch``, in
:mod:`wadispatch.celery`.

The names are loaded on first use: importing a submodule (the Celery app, the simulator, the
errors) does not load the producer, and importing :func:`enqueue` loads no HTTP client nor the
send engine, its rate limiter or its event loop.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wadispatch.errors import MessageValidationError
    from wadispatch.producer import EnqueueResult, enqueue, enqueue_many

__all__ = ["EnqueueResult", "MessageValidationError", "enqueue", "enqueue_many"]

# Public name -> the module defining it. Never "app" nor "celery": Celery's ``-A wadispatch`` looks
# those up here before it tries the ``wadispatch.celery`` module.
_EXPORTS = {
    "EnqueueResult": "wadispatch.producer",
    "MessageValidationError": "wadispatch.errors",
    "enqueue": "wadispatch.producer",
    "enqueue_many": "wadispatch.producer",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
