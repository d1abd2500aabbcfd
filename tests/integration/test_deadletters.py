"""Poison jobs against a real worker: dead-lettered with the reason, and the worker carries on.

Also the ``wadispatch dead-letters`` commands, run as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from wadispatch import enqueue
from wadispatch.celery import SEND_BATCH_TASK, SEND_TASK
from wadispatch.ledger import DeadLetter, Ledger
from wadispatch.messages import validate_send_request
from wadispatch.states import State

from tests.support import SECRETS, button_request, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.faults]

WADISPATCH = str(Path(sys.executable).with_name("wadispatch"))


def publish_raw(app: Any, queue: str, body: bytes, content_type: str, headers: dict[str, Any]) -> None:
    """Put a job on the queue exactly as given, bypassing Celery's serialisation."""
    with app.connection_for_write() as connection:
        connection.Producer().publish(
            body,
            exchange="",
            routing_key=queue,
            content_type=content_type,
            content_encoding="binary",
            headers=headers,
        )


def celery_headers(task: str) -> dict[str, Any]:
    return {"task": task, "id": str(uuid.uuid4()), "lang": "py", "argsrepr": "", "kwargsrepr": ""}


def cli(database_url: str, redis_url: str, queue: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WADISPATCH_")}
    env.update(
        WADISPATCH_DATABASE_URL=database_url,
        WADISPATCH_REDIS_URL=redis_url,
        WADISPATCH_QUEUE=queue,
        **SECRETS,
    )
    return subprocess.run(
        [WADISPATCH, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_poison_jobs_are_dead_lettered_and_the_worker_carries_on(
    database_url: str, ledger: Ledger, producer_app, redis_url: str, queue_name: str, start_worker
) -> None:
    with redis.Redis.from_url(redis_url) as client:
        client.delete(queue_name)  # jobs earlier tests left without a worker
    worker = start_worker(database_url)
    unknown_id = str(uuid.uuid4())
    publish_raw(
        producer_app, queue_name, b"\xff\xfe{not json", "application/json", celery_headers(SEND_BATCH_TASK)
    )
    publish_raw(
        producer_app,
        queue_name,
        b'"a string, not [args, kwargs, embed]"',
        "application/json",
        celery_headers(SEND_BATCH_TASK),
    )
    publish_raw(
        producer_app,
        queue_name,
        b"\x80\x04K\x01.",
        "application/x-python-serialize",
        celery_headers(SEND_BATCH_TASK),
    )
    producer_app.send_task("wadispatch.no_such_task", args=[["x"]])
    producer_app.send_task(SEND_BATCH_TASK, args=[[unknown_id]])
    producer_app.send_task(SEND_TASK, args=[42])

    reasons = {"undecodable", "invalid_job", "unknown_task", "unknown_message", "invalid_arguments"}
    wait_for(lambda: {letter.reason for letter in ledger.dead_letters()} == reasons)
    letters = ledger.dead_letters()
    by_reason: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        by_reason.setdefault(letter.reason, []).append(letter)
    assert sorted((reason, len(found)) for reason, found in by_reason.items()) == [
        ("invalid_arguments", 1),
        ("invalid_job", 2),
        ("undecodable", 1),
        ("unknown_message", 1),
        ("unknown_task", 1),
    ]
    [undecodable] = by_reason["undecodable"]
    assert (undecodable.body_encoding, undecodable.replayable) == ("base64", False)
    assert undecodable.task == SEND_BATCH_TASK and undecodable.error
    assert undecodable.headers and undecodable.headers["content_type"] == "application/json"
    assert "argsrepr" not in undecodable.headers  # only the headers on the safe list are kept
    [unknown] = by_reason["unknown_message"]
    assert (unknown.task, unknown.args, unknown.replayable) == (SEND_BATCH_TASK, [[unknown_id]], True)
    [unknown_task] = by_reason["unknown_task"]
    assert (unknown_task.task, unknown_task.args) == ("wadispatch.no_such_task", [["x"]])
    assert by_reason["invalid_arguments"][0].args == [42]  # the task's own arguments, as sent

    # Still alive, and still sending.
    message_id = enqueue(button_request("meta"), ledger=ledger).message_id
    wait_for(lambda: ledger.get(message_id).state is State.SENT)
    assert worker.process is not None and worker.process.poll() is None
    assert len(ledger.dead_letters()) == 6


def test_dead_letters_list_replay_and_purge_from_the_command_line(
    database_url: str, ledger: Ledger, producer_app, redis_url: str, queue_name: str, start_worker
) -> None:
    start_worker(database_url)
    message_id, _ = ledger.record_pending(validate_send_request(button_request("meta")))
    replayable = ledger.record_dead_letter(
        DeadLetter(
            reason="unknown_message",
            body=json.dumps([[message_id]]),
            task=SEND_BATCH_TASK,
            args=[[message_id]],
        )
    )
    undecodable = ledger.record_dead_letter(
        DeadLetter(reason="undecodable", body="/w==", body_encoding="base64")
    )

    listed = cli(database_url, redis_url, queue_name, "dead-letters", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(item["id"], item["replayable"]) for item in json.loads(listed.stdout)] == [
        (replayable, True),
        (undecodable, False),
    ]

    replay = cli(database_url, redis_url, queue_name, "dead-letters", "replay", "--all")
    assert replay.returncode == 1  # one of them could not be replayed, and it says why
    assert "replayed 1" in replay.stdout
    assert f"#{undecodable} cannot be replayed: its body could not be decoded" in replay.stderr
    wait_for(lambda: ledger.get(message_id).state is State.SENT)
    assert ledger.get_dead_letter(replayable).replayed_at is not None
    assert ledger.get_dead_letter(undecodable).replayed_at is None

    again = cli(database_url, redis_url, queue_name, "dead-letters", "replay", "999999")
    assert (again.returncode, again.stderr.strip()) == (1, "error: no dead letter #999999")

    purge = cli(database_url, redis_url, queue_name, "dead-letters", "purge")
    assert (purge.returncode, purge.stdout.strip()) == (0, "purged 1")
    assert [letter.id for letter in ledger.dead_letters()] == [undecodable]
