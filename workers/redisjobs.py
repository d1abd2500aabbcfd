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
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import Any

from kombu import Producer
from kombu.utils.uuid import uuid

#: What the job is built around: a task id and the argument it carries, placeholders of the
#: same form as the real ones (uuid4 text), so that their repr in ``argsrepr`` has the same shape.
TASK_ID_MARK = "00000000-0000-4000-8000-00000000beef"
ARGUMENT_MARK = "00000000-0000-4000-8000-00000000f00d"
CHECK_TASK_ID = "00000000-0000-4000-8000-0000000c0ffe"
CHECK_ARGUMENT = "00000000-0000-4000-8000-00000000cafe"

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
        self._embed = body[1:]
        # The templates: kombu's own envelopes of the placeholder job (and its event).
        (_, self._key, job_payload), *event_wire = job_wire
        self._envelope = json.loads(job_payload)
        self._headers = self._envelope["headers"]
        self._properties = self._envelope["properties"]
        self._header_fields = _fields_with_marks(self._headers)
        self._property_fields = _fields_with_marks(self._properties)
        self._reply_to_default = self._properties.get("reply_to") == reply_to()
        self._event: dict[str, Any] | None = None
        self._topics: list[str] = []
        if event is not None:
            self._event_fields = dict(event[0])
            self._event_marked = _fields_with_marks(self._event_fields)
            self._topics = [topic for _, topic, _ in event_wire]
            self._event = json.loads(event_wire[0][2])

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
        task_id = uuid()
        commands = self.commands(task_id, argument)
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self._pool.get_connection()
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
        """The Redis commands of one job (and its event), as kombu would write them."""
        marks = ((TASK_ID_MARK, task_id), (ARGUMENT_MARK, argument))
        channel = self._channel
        body = json.dumps(([argument], *self._embed))
        properties = _filled(self._properties, self._property_fields, marks)
        properties["delivery_info"] = dict(properties["delivery_info"])
        properties["delivery_tag"] = uuid()
        if self._reply_to_default:
            properties["reply_to"] = self._reply_to()
        envelope = dict(self._envelope)
        envelope["body"] = channel.encode_body(body, self._body_encoding)[0]
        envelope["headers"] = _filled(self._headers, self._header_fields, marks)
        envelope["properties"] = properties
        commands: list[tuple[str, ...]] = [("LPUSH", self._key, json.dumps(envelope))]
        if self._event is not None:
            fields = _filled(self._event_fields, self._event_marked, marks)
            fields.update(timestamp=time.time(), clock=self._clock(), utcoffset=self._utcoffset())
            event = dict(self._event)
            event["body"] = channel.encode_body(json.dumps(fields), self._body_encoding)[0]
            event["properties"] = {**event["properties"], "delivery_tag": uuid()}
            payload = json.dumps(event)
            commands += [("PUBLISH", topic, payload) for topic in self._topics]
        return commands

    def close(self) -> None:
        """Close the channel and its connections."""
        for connection in self._idle:
            connection.disconnect()
        self._channel.close()


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


def _fields_with_marks(values: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        key
        for key, value in values.items()
        if isinstance(value, str) and (TASK_ID_MARK in value or ARGUMENT_MARK in value)
    )


def _filled(
    values: dict[str, Any], fields: tuple[str, ...], marks: tuple[tuple[str, str], ...]
) -> dict[str, Any]:
    filled = dict(values)
    for key in fields:
        value = filled[key]
        for mark, real in marks:
            value = value.replace(mark, real)
        filled[key] = value
    return filled


def _without(values: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in names}
