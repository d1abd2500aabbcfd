"""Jobs of one shape written to a Redis broker as Celery writes them, in one round trip each.

Celery's own publish of a task costs far more than the write itself: kombu builds a new Redis client
for every message (and one more for its ``task-sent`` event), Celery resolves the route, declares
the queue, builds the headers, and the job and its event go out in two round trips. The send job of
one message differs from the last one only by two ids. So :class:`RedisJobs` takes what Celery
handed its producer for one such job (captured once, its event included), has kombu's own producer
write it once on a Redis channel (recorded, not sent), and keeps those envelopes as templates: for
each new job it fills in the task id, the message id, a new delivery tag and the event's clock, and
sends the ``LPUSH`` (and the event's ``PUBLISH``) in one write on a pooled connection. The queue and
the event exchange are declared once, when the writer is built.

A writer is built only where that gives Celery's and kombu's own message: :meth:`RedisJobs.build`
returns ``None`` when the broker is not Redis (or has a key prefix), when the captured job is not a
plain JSON job on an anonymous direct route, or when its rendering of a second job differs from
what kombu writes for Celery's second job. It holds no retry: a caller that meets an error
publishes through Celery instead (its retry policy, its logs).
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

from kombu import Producer

#: What the job is built around: a task id and the argument it carries, placeholders of the
#: same form as the real ones (uuid4 text), so that their repr in ``argsrepr`` has the same shape.
TASK_ID_MARK = "00000000-0000-4000-8000-00000000beef"
ARGUMENT_MARK = "00000000-0000-4000-8000-00000000f00d"
CHECK_TASK_ID = "00000000-0000-4000-8000-0000000c0ffe"
CHECK_ARGUMENT = "00000000-0000-4000-8000-00000000cafe"

#: A job's argument written into the templates as it is (a message id): no character that JSON or
#: ``repr`` would escape, short enough for Celery's ``argsrepr`` to keep whole.
_PLAIN_ARGUMENT = re.compile(r"[0-9A-Za-z-]{1,64}")
#: Tokens in the templates where each job (or event) has its own value.
_BODY, _TAG, _REPLY_TO = "wadispatch:body:3f1e", "wadispatch:tag:3f1e", "wadispatch:reply-to:3f1e"
_TIMESTAMP, _CLOCK, _UTCOFFSET = "wadispatch:ts:3f1e", "wadispatch:clock:3f1e", "wadispatch:utcoffset:3f1e"

_QUOTED_BODY, _QUOTED_TAG, _QUOTED_REPLY_TO = f'"{_BODY}"', f'"{_TAG}"', f'"{_REPLY_TO}"'
_QUOTED_TIMESTAMP, _QUOTED_CLOCK, _QUOTED_UTCOFFSET = f'"{_TIMESTAMP}"', f'"{_CLOCK}"', f'"{_UTCOFFSET}"'

#: Event fields that change with every event, not with the job: filled in at publish time.
_EVENT_CLOCK_FIELDS = ("timestamp", "clock", "utcoffset")

Captured = tuple[Any, dict[str, Any]]
"""One ``Producer.publish`` call: its body and its keyword arguments."""


class CapturingProducer(Producer):
    """A kombu producer that records what it is asked to publish and sends nothing."""

    def __init__(self, channel: Any) -> None:
        super().__init__(channel, auto_declare=False)
        self.captured: list[Captured] = []

    def publish(self, body: Any, **kwargs: Any) -> None:  # type: ignore[override]
        self.captured.append((body, kwargs))


class _Recorder:
    """Stands in for the Redis client of kombu's channel: records the commands of a publish."""

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []

    def lpush(self, key: str, value: str) -> None:
        self.commands.append(("LPUSH", key, value))

    def publish(self, topic: str, value: str) -> None:
        self.commands.append(("PUBLISH", topic, value))

    def pexpire(self, key: str, milliseconds: int) -> None:
        self.commands.append(("PEXPIRE", key, milliseconds))

    def pipeline(self, *_: Any, **__: Any) -> _Recorder:
        return self

    def execute(self) -> None:
        pass

    def __enter__(self) -> _Recorder:
        return self

    def __exit__(self, *_: Any) -> None:
        pass


class RedisJobs:
    """Publishes jobs shaped like one captured Celery job (see the module's docstring).

    Thread-safe: every publish renders its own messages and takes a connection from the pool.
    """

    def __init__(
        self,
        channel: Any,
        job: Captured,
        job_wire: list[tuple[Any, ...]],
        event: Captured | None,
        reply_to: Callable[[], str],
        clock: Callable[[], int],
        utcoffset: Callable[[], Any],
    ) -> None:
        self._channel = channel
        self._pool = channel.pool
        # Connections taken from the channel's pool once and kept for publishes (one per thread
        # publishing at the same moment): the pool's own checkout costs more than the write.
        self._idle: list[Any] = []
        self._reply_to = reply_to
        self._clock = clock
        self._utcoffset = utcoffset
        self._body_encoding = channel.body_encoding
        body, _ = job
        # The body's JSON around its argument (a plain id, written as it is).
        before, _, after = json.dumps(([ARGUMENT_MARK], *body[1:])).partition(ARGUMENT_MARK)
        self._body_text = (before, after)
        # The templates: kombu's own envelopes of the placeholder job (and its event) as JSON text,
        # with tokens where each job differs; the ids are the placeholders themselves.
        (_, self._key, job_payload), *event_wire = job_wire
        envelope = json.loads(job_payload)
        envelope["body"] = _BODY
        envelope["properties"]["delivery_tag"] = _TAG
        self._reply_to_default = envelope["properties"].get("reply_to") == reply_to()
        if self._reply_to_default:
            envelope["properties"]["reply_to"] = _REPLY_TO
        self._job_text = json.dumps(envelope)
        self._event_text: str | None = None
        self._topics: list[str] = []
        if event is not None:
            fields = {**event[0], "timestamp": _TIMESTAMP, "clock": _CLOCK, "utcoffset": _UTCOFFSET}
            self._event_fields_text = json.dumps(fields)
            self._topics = [topic for _, topic, _ in event_wire]
            event_envelope = json.loads(event_wire[0][2])
            event_envelope["body"] = _BODY
            event_envelope["properties"]["delivery_tag"] = _TAG
            self._event_text = json.dumps(event_envelope)

    @classmethod
    def build(
        cls,
        connection: Any,
        first: Sequence[Captured],
        second: Sequence[Captured],
        *,
        reply_to: Callable[[], str],
        clock: Callable[[], int],
        utcoffset: Callable[[], Any],
    ) -> RedisJobs | None:
        """A writer on a new channel of ``connection``, or ``None`` where it would not write what
        Celery writes.

        ``first`` is what Celery published for a job of task id :data:`TASK_ID_MARK` carrying
        :data:`ARGUMENT_MARK`, ``second`` the same for :data:`CHECK_TASK_ID` and
        :data:`CHECK_ARGUMENT`: the job, then its ``task-sent`` event if events are sent.
        Connects (a PING): raises what kombu raises when the broker is down.
        """
        from kombu.transport.redis import Channel as RedisChannel

        if not 1 <= len(first) <= 2 or len(first) != len(second):
            return None
        job, event = first[0], (first[1] if len(first) == 2 else None)
        if not _plain_job(job) or (event is not None and not _plain_event(event)):
            return None
        channel = connection.channel()
        try:
            if not isinstance(channel, RedisChannel) or getattr(channel, "global_keyprefix", ""):
                channel.close()
                return None
            for _, kwargs in first:
                for entity in kwargs.get("declare") or ():
                    entity.bind(channel).declare()
            wire = [_wire(channel, captured) for captured in (first, second)]
            if len(wire[0]) != len(first) or any(command[0] != "LPUSH" for command in wire[0][:1]):
                channel.close()
                return None
            writer = cls(channel, job, wire[0], event, reply_to, clock, utcoffset)
        except BaseException:
            channel.close()
            raise
        if not _same_wire(writer.commands(CHECK_TASK_ID, CHECK_ARGUMENT), wire[1]):
            channel.close()
            return None
        return writer

    def publish(self, argument: str) -> str:
        """Publish one job carrying ``argument`` (and its event), one round trip; return its task id.

        Raises what redis raises when the broker cannot be reached: the job may or may not be
        queued then (a duplicate job is harmless where its argument is claimed atomically).
        """
        task_id = uuid4_text()
        commands = self.commands(task_id, argument)
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = _new_connection(self._pool)
        try:
            connection.send_packed_command([_packed(commands)])
            for _ in commands:
                connection.read_response()
        except BaseException:
            connection.disconnect()  # a reply may be left unread: the next use reconnects
            raise
        finally:
            self._idle.append(connection)
        return task_id

    def commands(self, task_id: str, argument: str) -> list[tuple[str, ...]]:
        """The Redis commands of one job (and its event), as kombu would write them.

        ``argument`` is a message id (letters, digits, dashes): it is written into the templates
        as it is; any other raises :class:`ValueError` (the caller publishes through Celery).
        """
        if not _PLAIN_ARGUMENT.fullmatch(argument) or not _PLAIN_ARGUMENT.fullmatch(task_id):
            raise ValueError("a job argument the templates cannot carry as it is")
        encode = self._channel.encode_body
        body = encode(self._body_text[0] + argument + self._body_text[1], self._body_encoding)[0]
        job = (
            self._job_text.replace(TASK_ID_MARK, task_id)
            .replace(ARGUMENT_MARK, argument)
            .replace(_QUOTED_BODY, f'"{body}"')
            .replace(_QUOTED_TAG, f'"{uuid4_text()}"')
        )
        if self._reply_to_default:
            job = job.replace(_QUOTED_REPLY_TO, json.dumps(self._reply_to()))
        commands: list[tuple[str, ...]] = [("LPUSH", self._key, job)]
        if self._event_text is not None:
            fields = (
                self._event_fields_text.replace(TASK_ID_MARK, task_id)
                .replace(ARGUMENT_MARK, argument)
                # What json.dumps writes for a float (its repr) and an int.
                .replace(_QUOTED_TIMESTAMP, repr(time.time()))
                .replace(_QUOTED_CLOCK, str(int(self._clock())))
                .replace(_QUOTED_UTCOFFSET, json.dumps(self._utcoffset()))
            )
            event = self._event_text.replace(
                _QUOTED_BODY, f'"{encode(fields, self._body_encoding)[0]}"'
            ).replace(_QUOTED_TAG, f'"{uuid4_text()}"')
            commands += [("PUBLISH", topic, event) for topic in self._topics]
        return commands

    def close(self) -> None:
        """Close the channel and its connections."""
        for connection in self._idle:
            connection.disconnect()
        self._channel.close()


#: The version (4) and variant (10) bits of a random UUID, as RFC 9562 sets them.
_UUID4_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
_UUID4_SET = (0x4 << 76) | (0x2 << 62)


def uuid4_text() -> str:
    """A random (version 4) UUID as text, what kombu's ``uuid()`` gives, at a fraction of its cost."""
    digits = (int.from_bytes(os.urandom(16)) & _UUID4_CLEAR | _UUID4_SET).to_bytes(16).hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def _new_connection(pool: Any) -> Any:
    # redis-py before 5.3 requires a command name here (unused since); later ones deprecate it.
    try:
        return pool.get_connection()
    except TypeError:
        return pool.get_connection("LPUSH")


def _packed(commands: list[tuple[str, ...]]) -> bytes:
    """Redis commands in the Redis protocol (RESP): arrays of bulk strings."""
    parts: list[bytes] = []
    for command in commands:
        parts.append(b"*%d\r\n" % len(command))
        for argument in command:
            data = argument.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _wire(channel: Any, captured: Sequence[Captured]) -> list[tuple[Any, ...]]:
    """The Redis commands kombu's producer writes for these captured publishes."""
    recorder = _Recorder()
    producer = Producer(channel, auto_declare=False)
    original = channel.conn_or_acquire
    channel.conn_or_acquire = lambda client=None: nullcontext(recorder)
    try:
        for body, kwargs in captured:
            producer.publish(body, **{**kwargs, "retry": False, "declare": []})
    finally:
        channel.conn_or_acquire = original
    return recorder.commands


def _same_wire(rendered: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> bool:
    """Whether rendered commands are kombu's, but for delivery tags and the event's clock."""
    return [_comparable(command) for command in rendered] == [_comparable(command) for command in expected]


def _comparable(command: tuple[Any, ...]) -> tuple[Any, ...]:
    name, target, payload = command
    envelope = json.loads(payload)
    envelope["properties"].pop("delivery_tag", None)
    body = base64.b64decode(envelope.pop("body"))
    decoded = json.loads(body)
    if name == "PUBLISH" and isinstance(decoded, dict):
        decoded = _without(decoded, _EVENT_CLOCK_FIELDS)
    return name, target, envelope, decoded


def _plain_job(job: Captured) -> bool:
    """A JSON job for one argument on an anonymous direct route, as Celery sends a routed task."""
    body, kwargs = job
    return (
        isinstance(body, tuple)
        and len(body) == 3
        and body[0] == [ARGUMENT_MARK]
        and body[1] == {}
        and kwargs.get("exchange") == ""
        and kwargs.get("serializer") == "json"
        and not kwargs.get("compression")
        and kwargs.get("expiration") is None
        and not kwargs.get("priority")
        and isinstance(kwargs.get("headers"), dict)
        and kwargs["headers"].get("id") == TASK_ID_MARK
    )


def _plain_event(event: Captured) -> bool:
    fields, kwargs = event
    return (
        isinstance(fields, dict)
        and all(name in fields for name in _EVENT_CLOCK_FIELDS)
        and kwargs.get("serializer") == "json"
        and not kwargs.get("compression")
        and all(getattr(entity, "type", None) == "fanout" for entity in kwargs.get("declare") or ())
    )


def _without(values: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in names}
