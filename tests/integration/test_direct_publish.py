"""enqueue()'s send job written straight to Redis: Celery's own message, its event, a broker lost.

The job of one message goes out through :class:`wadispatch.redisjobs.RedisJobs` (see
:mod:`wadispatch.publishing`); these tests hold it to what Celery's ``send_task`` writes for the
same job, read back from a real Redis. That a worker runs such a job and Flower shows it is in
``test_pipeline`` and ``test_flower`` (their jobs go out the same way).
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from typing import Any

import pytest
import redis
from wadispatch import enqueue, publishing
from wadispatch.celery import SEND_TASK, point_app_at
from wadispatch.ledger import Ledger
from wadispatch.localstack import EmbeddedRedis
from wadispatch.publishing import Job, publish_jobs, publish_message
from wadispatch.states import State

from tests.support import button_request, wait_for

pytestmark = pytest.mark.integration

#: Envelope fields that differ from one job to the next.
PER_JOB_HEADERS = {"id", "root_id", "argsrepr"}
PER_JOB_PROPERTIES = {"correlation_id", "delivery_tag"}


def _jobs(client: redis.Redis, queue: str) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]


def _body(envelope: dict[str, Any]) -> Any:
    return json.loads(base64.b64decode(envelope["body"]))


def test_the_direct_job_is_the_message_celery_writes(producer_app, redis_url: str, queue_name: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.delete(queue_name)
        message_id = str(uuid.uuid4())
        assert publish_message(message_id)
        assert publishing._send_jobs.get() is not None  # it went out directly
        assert publish_jobs([Job(SEND_TASK, [message_id], (message_id,))]) == 1  # Celery's send_task
        direct, celery = _jobs(client, queue_name)
    finally:
        client.delete(queue_name)
        client.close()
    assert direct["headers"]["task"] == SEND_TASK
    assert direct["headers"]["argsrepr"] == celery["headers"]["argsrepr"] == repr([message_id])
    assert direct["headers"]["root_id"] == direct["headers"]["id"] == direct["properties"]["correlation_id"]
    assert direct["headers"]["id"] != celery["headers"]["id"]

    def fixed(envelope: dict[str, Any]) -> dict[str, Any]:
        headers = {k: v for k, v in envelope["headers"].items() if k not in PER_JOB_HEADERS}
        properties = {k: v for k, v in envelope["properties"].items() if k not in PER_JOB_PROPERTIES}
        return {**envelope, "body": _body(envelope), "headers": headers, "properties": properties}

    assert fixed(direct) == fixed(celery)
    assert _body(direct)[0] == [message_id]


def test_the_task_sent_event_goes_out_with_the_job(producer_app, redis_url: str, queue_name: str) -> None:
    client = redis.Redis.from_url(redis_url)
    subscriber = client.pubsub()
    try:
        subscriber.psubscribe("*celeryev/task.sent")
        wait_for(lambda: subscriber.get_message(timeout=0.5), 5)  # the subscription's confirmation
        message_id = str(uuid.uuid4())
        assert publish_message(message_id)
        [job] = [job for job in _jobs(client, queue_name) if _body(job)[0] == [message_id]]
        message = wait_for(lambda: subscriber.get_message(timeout=0.5), 5)
    finally:
        subscriber.close()
        client.delete(queue_name)
        client.close()
    event = _body(json.loads(message["data"]))
    assert event["type"] == "task-sent"
    assert (event["uuid"], event["name"]) == (job["headers"]["id"], SEND_TASK)
    assert event["args"] == repr([message_id])
    assert event["queue"] == queue_name
    assert abs(event["timestamp"] - time.time()) < 60


def test_a_job_from_inside_a_publish_signal_receiver_goes_through_celery(
    producer_app, redis_url: str, queue_name: str
) -> None:
    from celery import signals

    seen: list[str] = []

    def receiver(headers: dict[str, Any], **_: Any) -> None:
        seen.append(headers["id"])  # a tracing library would add its headers here

    signals.before_task_publish.connect(receiver)
    try:
        assert publish_message(str(uuid.uuid4()))
    finally:
        signals.before_task_publish.disconnect(receiver)
        redis.Redis.from_url(redis_url).delete(queue_name)
    assert len(seen) == 1


def test_a_broker_lost_after_the_writer_was_built_keeps_the_message_pending(
    ledger: Ledger, producer_app, redis_url: str, queue_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    broker = EmbeddedRedis().start()
    try:
        point_app_at(broker.url, queue_name)
        first = enqueue(button_request("meta"), ledger=ledger)
        assert first.published and publishing._send_jobs.get() is not None
        broker.stop()
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="wadispatch.publishing"):
            lost = enqueue(button_request("meta"), ledger=ledger)
        elapsed = time.monotonic() - started
        assert (lost.status, lost.published) == ("pending", False)
        assert ledger.get(lost.message_id).state is State.PENDING
        assert elapsed < 10
        assert any("1 message(s) stay pending" in record.getMessage() for record in caplog.records)
    finally:
        broker.stop()
        point_app_at(redis_url, queue_name)  # back to the session's broker
    # Another broker: the writer of the lost one was dropped, a new one is built on first use.
    again = enqueue(button_request("meta"), ledger=ledger)
    assert again.published and publishing._send_jobs.get() is not None
    client = redis.Redis.from_url(redis_url)
    try:
        assert [_body(job)[0] for job in _jobs(client, queue_name)] == [[again.message_id]]
    finally:
        client.delete(queue_name)
        client.close()


def test_a_message_recorded_through_the_driver_reads_back_like_any_other(ledger: Ledger) -> None:
    request = button_request("meta", idempotency_key="key-1")
    message_id, created = ledger.record_pending(enqueue_request(request))
    assert created
    record = ledger.get(message_id)
    assert (record.state, record.attempts, record.provider) == (State.PENDING, 0, "meta")
    assert record.request == enqueue_request(request).model_dump(mode="json", exclude_none=True)
    assert record.created_at == record.updated_at
    [transition] = ledger.transitions(message_id)
    assert (transition.from_state, transition.to_state, transition.attempt) == (None, State.PENDING, 0)
    assert transition.detail is None
    # The same key again: the first message, nothing written.
    assert ledger.record_pending(enqueue_request(request)) == (message_id, False)
    assert ledger.count_by_state() == {"pending": 1}


def enqueue_request(data: dict[str, Any]) -> Any:
    from wadispatch.messages import validate_send_request

    return validate_send_request(data)
