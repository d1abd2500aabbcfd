"""The one publisher: what goes out, where it stops when the broker fails, and how that is reported.

A fake Celery app stands in for the broker (the integration tests publish to a real Redis, and to
a dead port).
"""

from __future__ import annotations

import ast
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wadispatch import publishing
from wadispatch.celery import SEND_BATCH_TASK, SEND_TASK
from wadispatch.errors import WadispatchError
from wadispatch.later import Later
from wadispatch.publishing import PublishError

from tests.support import make_settings

ROOT = Path(__file__).resolve().parents[2]
#: Ways of publishing a Celery task; only the publishing module may use them.
PUBLISHING_CALLS = {"send_task", "apply_async", "producer_or_acquire"}


class BrokerDown(ConnectionError):
    pass


class FakeProducer:
    """Buffers what is published inside ``batch()`` and writes it at the batch's end, as kombu's
    Redis batch does; an error inside the batch discards what it buffered."""

    def __init__(self, app: FakeApp) -> None:
        self.app = app
        self.buffer: list[dict[str, Any]] | None = None

    @contextlib.contextmanager
    def batch(self, max_size: int) -> Iterator[None]:
        assert max_size >= 2 * publishing.PUBLISH_CHUNK  # a chunk and its events in one flush
        self.buffer = []
        try:
            yield
            self.app.sent += self.buffer
            self.app.flushes += 1
        finally:
            self.buffer = None


class FakeApp:
    """Records published jobs; the ``fail_at``-th publish (0-based) raises, like a dead broker."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.sent: list[dict[str, Any]] = []
        self.attempts = 0
        self.connections = 0
        self.flushes = 0

    @contextlib.contextmanager
    def producer_or_acquire(self) -> Iterator[FakeProducer]:
        self.connections += 1
        yield FakeProducer(self)

    def send_task(self, name: str, args: list[Any], *, producer: FakeProducer, **options: Any) -> None:
        if self.attempts == self.fail_at:
            raise BrokerDown("connection refused")
        self.attempts += 1
        job = {"task": name, "args": args, "producer": producer, **options}
        (producer.buffer if producer.buffer is not None else self.sent).append(job)


@pytest.fixture
def fake_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApp]:
    app = FakeApp()
    monkeypatch.setattr(publishing, "app", app)
    # A fresh direct writer, which cannot be built on the fake app: send jobs go through send_task.
    monkeypatch.setattr(publishing, "_send_jobs", publishing._SendJobs())
    monkeypatch.setattr(publishing, "get_settings", lambda: make_settings(send_batch_size=2))
    yield app


def test_batches_go_out_over_one_connection(fake_app: FakeApp) -> None:
    ids = [f"m{i}" for i in range(5)]
    assert publishing.publish_batches(ids, 2) == ids
    assert [job["args"] for job in fake_app.sent] == [[["m0", "m1"]], [["m2", "m3"]], [["m4"]]]
    assert {job["task"] for job in fake_app.sent} == {SEND_BATCH_TASK}
    assert (fake_app.connections, fake_app.flushes) == (1, 1)  # one pipelined write
    assert "queue" not in fake_app.sent[0]  # the task's route decides


def test_jobs_go_out_a_chunk_per_write_and_a_failed_chunk_stays_pending(
    fake_app: FakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    chunk = publishing.PUBLISH_CHUNK
    ids = [f"m{i}" for i in range(chunk * 2 + 5)]
    assert publishing.publish_batches(ids, 1) == ids
    assert fake_app.flushes == 3 and len(fake_app.sent) == len(ids)
    fake_app.sent.clear()
    fake_app.attempts, fake_app.fail_at = 0, chunk + 3  # the broker dies in the second chunk
    with caplog.at_level(logging.WARNING, logger="wadispatch.publishing"):
        published = publishing.publish_batches(ids, 1)
    assert published == ids[:chunk] and len(fake_app.sent) == chunk  # nothing of the second chunk
    [record] = caplog.records
    assert record.getMessage() == (
        f"could not publish {chunk + 5} job(s) of {SEND_BATCH_TASK}; {chunk + 5} message(s) stay pending: "
        "BrokerDown"
    )


def test_a_broker_failure_stops_at_once_and_is_logged_once_with_what_stays_pending(
    fake_app: FakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    fake_app.fail_at = 1
    with caplog.at_level(logging.WARNING, logger="wadispatch.publishing"):
        published = publishing.publish_batches([f"m{i}" for i in range(7)], 2)
    assert published == []  # the first job was buffered with the failing one, and dropped with it
    assert fake_app.sent == [] and fake_app.attempts == 1  # no publish after the failure
    [record] = caplog.records
    assert record.getMessage() == (
        f"could not publish 4 job(s) of {SEND_BATCH_TASK}; 7 message(s) stay pending: BrokerDown"
    )


def test_raise_on_failure_raises_a_publish_error_after_logging(
    fake_app: FakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    fake_app.fail_at = 0
    with pytest.raises(PublishError) as raised, caplog.at_level(logging.WARNING):
        publishing.publish_batches(["m0", "m1", "m2"], 2, raise_on_failure=True)
    assert (raised.value.jobs, raised.value.messages) == (2, 3)
    assert isinstance(raised.value, WadispatchError)
    assert isinstance(raised.value.__cause__, BrokerDown)
    assert len(caplog.records) == 1


def test_one_message_and_one_job(fake_app: FakeApp) -> None:
    assert publishing.publish_message("m0")
    assert publishing.publish_job("app.tasks.on_reply", ["m0", {"type": "reply"}], queue="celery")
    assert fake_app.sent == [
        {"task": SEND_TASK, "args": ["m0"], "countdown": None, "producer": fake_app.sent[0]["producer"]},
        {
            "task": "app.tasks.on_reply",
            "args": ["m0", {"type": "reply"}],
            "countdown": None,
            "producer": fake_app.sent[1]["producer"],
            "queue": "celery",
        },
    ]


def test_one_job_reports_false_when_the_broker_is_down(
    fake_app: FakeApp, caplog: pytest.LogCaptureFixture
) -> None:
    fake_app.fail_at = 0
    with caplog.at_level(logging.WARNING, logger="wadispatch.publishing"):
        assert not publishing.publish_message("m0")
        assert not publishing.publish_job("app.tasks.on_reply", ["m0", {}], about="the reply event of m0")
    assert [record.getMessage() for record in caplog.records] == [
        f"could not publish 1 job(s) of {SEND_TASK}; 1 message(s) stay pending: BrokerDown",
        "could not publish 1 job(s) of app.tasks.on_reply (the reply event of m0): BrokerDown",
    ]


def test_later_jobs_carry_their_countdowns(fake_app: FakeApp) -> None:
    later = [Later("r0", 2.0, "retry", ""), Later("r1", 2.1, "retry", ""), Later("r2", 2.2, "retry", "")]
    assert publishing.publish_later(later) == ["r0", "r1", "r2"]
    assert [(job["args"], job["countdown"]) for job in fake_app.sent] == [
        ([["r0", "r1"]], 2.1),
        ([["r2"]], 2.2),
    ]


def test_nothing_to_publish_touches_no_connection(fake_app: FakeApp) -> None:
    assert publishing.publish_batches([], 2) == []
    assert publishing.publish_later([]) == []
    assert fake_app.connections == 0


def _publishing_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)]
    names += [node.id for node in ast.walk(tree) if isinstance(node, ast.Name)]
    return [f"{path.relative_to(ROOT)}: {name}" for name in names if name in PUBLISHING_CALLS]


def test_only_the_publishing_module_publishes_tasks() -> None:
    publisher = ROOT / "workers" / "publishing.py"
    sources = sorted({*(ROOT / "workers").rglob("*.py"), *(ROOT / "tasks").rglob("*.py")})
    assert publisher in sources
    assert [call for path in sources if path != publisher for call in _publishing_calls(path)] == []
