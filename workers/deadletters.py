"""Dead letters: jobs no worker can run, kept in the ledger with why, to list and replay.

A poison job (a body that cannot be decoded, an unknown task, arguments of the wrong shape, or
message ids the ledger has never seen) would otherwise be dropped with a log line, or block a
worker. It is stored in the ledger's ``dead_letters`` table instead (durable across Redis
restarts) and the worker carries on. Only headers from a fixed list are kept, the body is cut to
``dead_letter_max_body_bytes`` and every configured credential is scrubbed from it.

A dead letter whose body was decoded can be replayed (its task published again with the same
arguments); one whose body could not be decoded cannot: there is nothing to publish.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wadispatch import metrics
from wadispatch.errors import UnknownDeadLetter
from wadispatch.ledger import DeadLetter, Ledger
from wadispatch.redaction import scrub_secrets
from wadispatch.settings import Settings

log = logging.getLogger("wadispatch.deadletters")

#: Why a job was dead-lettered.
UNDECODABLE = "undecodable"
INVALID_JOB = "invalid_job"
UNKNOWN_TASK = "unknown_task"
INVALID_ARGUMENTS = "invalid_arguments"
UNKNOWN_MESSAGE = "unknown_message"

#: Celery headers kept with a dead letter: ids and routing, nothing a producer could put a secret in.
SAFE_HEADERS = ("task", "id", "root_id", "parent_id", "retries", "eta", "expires", "lang")
MAX_ERROR_CHARS = 500
MAX_HEADER_CHARS = 255


def encode_body(body: bytes | str | None, limit: int) -> tuple[str, str, bool]:
    """``(text, encoding, truncated)``: the body as UTF-8 text, else base64, cut to ``limit`` bytes."""
    if body is None:
        return "", "utf-8", False
    raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else bytes(body)
    truncated = len(raw) > limit
    raw = raw[:limit]
    try:
        return raw.decode("utf-8"), "utf-8", truncated
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64", truncated


def safe_headers(headers: Mapping[str, Any] | None, **properties: Any) -> dict[str, Any]:
    """The headers in :data:`SAFE_HEADERS` (scalars only, strings cut) plus the given properties."""
    kept: dict[str, Any] = {}
    for name, value in [*((name, (headers or {}).get(name)) for name in SAFE_HEADERS), *properties.items()]:
        if isinstance(value, bool | int | float):
            kept[name] = value
        elif isinstance(value, str):
            kept[name] = value[:MAX_HEADER_CHARS]
    return kept


def build_dead_letter(
    reason: str,
    *,
    settings: Settings,
    body: bytes | str | None = None,
    args: list[Any] | None = None,
    task: str | None = None,
    queue: str | None = None,
    headers: Mapping[str, Any] | None = None,
    error: BaseException | str | None = None,
) -> DeadLetter:
    """A dead letter from what the worker had in hand; with ``args`` and no body, the body is
    the arguments as JSON."""
    if body is None and args is not None:
        body = json.dumps(args)
    text, encoding, truncated = encode_body(body, settings.dead_letter_max_body_bytes)
    secrets = settings.secret_values()
    if encoding == "utf-8":
        text = scrub_secrets(text, secrets) or ""
    if isinstance(error, BaseException):
        error = f"{type(error).__name__}: {error}"
    return DeadLetter(
        reason=reason,
        body=text,
        body_encoding=encoding,
        body_truncated=truncated,
        queue=queue,
        task=task,
        error=scrub_secrets(error[:MAX_ERROR_CHARS], secrets) if error else None,
        args=args,
        headers=dict(headers) if headers else None,
    )


def store(ledger: Ledger, letter: DeadLetter) -> int | None:
    """Record a dead letter; ``None`` (logged) if the ledger cannot be reached."""
    try:
        letter_id = ledger.record_dead_letter(letter)
    except Exception:
        log.exception("could not store a dead letter (%s, task %s)", letter.reason, letter.task)
        return None
    log.warning("dead-lettered a job (%s, task %s) as #%d", letter.reason, letter.task, letter_id)
    metrics.dead_lettered(letter.reason)
    return letter_id


@dataclass(frozen=True)
class ReplayResult:
    replayed: list[int]
    not_replayable: list[int]
    failed: list[int]
    """Replayable, but the broker could not be reached: still waiting to be replayed."""


def replay(ledger: Ledger, letter_ids: list[int]) -> ReplayResult:
    """Publish these dead letters' jobs again and mark them replayed.

    Raises :class:`~wadispatch.errors.UnknownDeadLetter` (a ``LookupError``) naming an id that
    does not exist.
    """
    letters = []
    for letter_id in letter_ids:
        letter = ledger.get_dead_letter(letter_id)
        if letter is None:
            raise UnknownDeadLetter(f"no dead letter #{letter_id}")
        letters.append(letter)
    replayed, not_replayable, failed = [], [], []
    for letter in letters:
        assert letter.id is not None
        if not letter.replayable:
            not_replayable.append(letter.id)
        elif _publish(letter):
            ledger.mark_dead_letter_replayed(letter.id)
            replayed.append(letter.id)
        else:
            failed.append(letter.id)
    return ReplayResult(replayed, not_replayable, failed)


def _publish(letter: DeadLetter) -> bool:
    from wadispatch.publishing import publish_job

    assert letter.task is not None and letter.args is not None
    return publish_job(letter.task, letter.args, about=f"the replay of dead letter #{letter.id}")
