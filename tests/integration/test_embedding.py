"""wadispatch installed from its wheel into a web app that has its own Celery set-up.

The wheel is built from a copy of this tree and installed into a fresh virtual environment. The
web app's folder holds its own ``tasks.py`` (a Celery app of its own), ``celeryconfig.py`` (another
Redis database, queue and serializer) and ``workers/`` package, and is both the current folder and
on ``PYTHONPATH``, as a web app has it. From there the app imports wadispatch and enqueues, and
``wadispatch worker`` started there sends the message to the simulator. The web app's settings stay
as written, nothing reaches its broker database, and wadispatch never imports its modules.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis
from wadispatch.celery import SEND_TASK
from wadispatch.ledger import Ledger
from wadispatch.localstack import stop_process_group
from wadispatch.simulator import SimulatorServer
from wadispatch.states import State

from tests.support import SECRETS, button_request, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
#: What the wheel is built from: the tree without its virtualenv, git data and build leftovers.
IGNORED = shutil.ignore_patterns(
    ".venv",
    ".git",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    "bench-results",
    "*.sqlite3*",
    ".env",
)
#: The repository folders that are installed, and where their files land in the wheel.
SOURCE_FOLDERS = {"workers": "wadispatch", "tasks": "wadispatch/tasks"}
#: The web app's own settings: another Redis database, queue and serializer than wadispatch's.
HOST_SETTINGS = ("broker_url", "task_default_queue", "task_serializer", "accept_content")


def run(command: list[str], *, timeout: float, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


# --- the wheel ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this tree (others may edit it meanwhile; the build writes into its source)."""
    return Path(shutil.copytree(REPO, tmp_path_factory.mktemp("embed") / "src", ignore=IGNORED))


@pytest.fixture(scope="module")
def wheel(source: Path) -> Path:
    out = source.parent / "wheelhouse"
    # With build isolation: pip builds with the setuptools pyproject asks for, as a user's pip does.
    run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(source)],
        timeout=300,
    )
    [built] = out.glob("wadispatch-*.whl")
    return built


def test_the_wheel_installs_one_top_level_package_with_every_module(wheel: Path, source: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        [dist_info] = {name.split("/")[0] for name in names if ".dist-info/" in name}
        top_level = archive.read(f"{dist_info}/top_level.txt").decode().split()
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()

    assert top_level == ["wadispatch"]
    assert {name.split("/")[0] for name in names} == {"wadispatch", dist_info}
    assert "wadispatch = wadispatch.cli:main" in entry_points
    # Nothing of the workshop: tests, the benchmark harness, the example settings module.
    shipped = [name for name in names if not name.startswith(dist_info)]
    assert [name for name in shipped if "bench" in name or "tests" in name.split("/")] == []
    # Every module of the repository's folders is in the wheel, with the operations page's
    # templates and static files, and nothing else.
    expected = {
        f"{package}/{path.relative_to(source / folder).as_posix()}"
        for folder, package in SOURCE_FOLDERS.items()
        for path in (source / folder).rglob("*.py")
        if "__pycache__" not in path.parts
    }
    expected |= {
        f"wadispatch/api/{path.relative_to(source / 'workers' / 'api').as_posix()}"
        for pattern in ("templates/*.html", "static/*")
        for path in (source / "workers" / "api").glob(pattern)
    }
    assert set(shipped) - expected == set()
    assert expected - set(shipped) == set(), "modules left out of the wheel (pyproject's packages list?)"


# --- a web app with its own Celery set-up --------------------------------------------------------


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Iterator[Path]:
    """A fresh virtual environment with only the wheel (and its declared dependencies) in it."""
    path = wheel.parent.parent / "venv"
    run([sys.executable, "-m", "venv", str(path)], timeout=120)
    run([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], timeout=600)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def other_database(url: str) -> str:
    """The same Redis server, another database: 7, or 8 when wadispatch's is 7."""
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{8 if db == 7 else 7}"))


HOST_CELERYCONFIG = """\
# The web app's own Celery settings.
broker_url = {broker_url!r}
task_default_queue = "hostapp"
task_serializer = "pickle"
result_serializer = "pickle"
accept_content = ["pickle", "json"]
"""

HOST_TASKS = """\
\"\"\"The web app's own Celery app and tasks.\"\"\"
import os

from celery import Celery

with open(os.environ["HOST_IMPORT_LOG"], "a") as log:
    log.write(f"tasks {os.getpid()}\\n")

app = Celery("hostapp")
app.config_from_object("celeryconfig")


@app.task(name="hostapp.add")
def add(x, y):
    return x + y
"""

HOST_WORKERS = """\
\"\"\"The web app's own workers package: it must never be imported by wadispatch.\"\"\"
import os

with open(os.environ["HOST_IMPORT_LOG"], "a") as log:
    log.write(f"workers {os.getpid()}\\n")
raise ImportError("host workers imported")
"""

#: The web app's code that enqueues (its view or script): its own modules first, then wadispatch.
HOST_ENQUEUE = """\
import json
import os
import sys

import celeryconfig
import tasks

SETTINGS = {settings!r}


def snapshot():
    return {{
        "module": {{name: getattr(celeryconfig, name) for name in SETTINGS}},
        "app": {{name: tasks.app.conf[name] for name in SETTINGS}},
    }}


before = snapshot()

import wadispatch
from wadispatch import EnqueueResult, MessageValidationError, enqueue, enqueue_many
from wadispatch.celery import app as wadispatch_app

assert callable(enqueue_many) and issubclass(MessageValidationError, Exception)
result = enqueue(json.loads(sys.argv[1]))
assert isinstance(result, EnqueueResult)
print(json.dumps({{
    "message_id": result.message_id,
    "status": result.status,
    "published": result.published,
    "wadispatch": wadispatch.__file__,
    "celeryconfig": celeryconfig.__file__,
    "tasks": tasks.__file__,
    "before": before,
    "after": snapshot(),
    "wadispatch_conf": {{name: wadispatch_app.conf[name] for name in SETTINGS}},
    "host_workers_loaded": "workers" in sys.modules,
    "pid": os.getpid(),
}}))
"""


@pytest.fixture
def host_app(tmp_path: Path, redis_url: str) -> Path:
    folder = tmp_path / "webapp"
    (folder / "workers").mkdir(parents=True)
    (folder / "celeryconfig.py").write_text(HOST_CELERYCONFIG.format(broker_url=other_database(redis_url)))
    (folder / "tasks.py").write_text(HOST_TASKS)
    (folder / "workers" / "__init__.py").write_text(HOST_WORKERS)
    (folder / "enqueue_message.py").write_text(HOST_ENQUEUE.format(settings=HOST_SETTINGS))
    return folder


def host_env(folder: Path, **values: str) -> dict[str, str]:
    """The web app's environment: its folder on PYTHONPATH, no inherited wadispatch or Celery
    settings, no virtualenv of this test run's."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WADISPATCH_", "CELERY_", "PYTHON", "FLOWER_"))
        and key not in ("REDIS_URL", "VIRTUAL_ENV")
    }
    return {
        **inherited,
        "PYTHONPATH": str(folder),
        "HOST_IMPORT_LOG": str(folder.parent / "host-imports.log"),
        **values,
    }


def broker_messages(client: redis.Redis, queue: str) -> list[dict]:
    """The jobs waiting in a kombu Redis queue, decoded: (headers, content type, body)."""
    return [json.loads(raw) for raw in client.lrange(queue, 0, -1)]


def test_a_web_app_with_its_own_celery_setup_enqueues_and_a_worker_sends(
    venv: Path, host_app: Path, redis_url: str, simulator: SimulatorServer, sim: httpx.Client
) -> None:
    queue = f"wadispatch-embed-{uuid.uuid4().hex[:8]}"
    database_url = f"sqlite:///{host_app.parent / 'ledger.sqlite3'}"
    host_url = other_database(redis_url)
    broker = redis.Redis.from_url(redis_url)
    host_broker = redis.Redis.from_url(host_url)
    host_keys_before = set(host_broker.keys("*"))
    env = host_env(
        host_app,
        WADISPATCH_REDIS_URL=redis_url,
        WADISPATCH_DATABASE_URL=database_url,
        WADISPATCH_QUEUE=queue,
        WADISPATCH_BACKOFF_BASE_SECONDS="0.2",
        WADISPATCH_BACKOFF_CAP_SECONDS="2",
        WADISPATCH_HTTP_READ_TIMEOUT="3",
        **simulator.base_urls(),
        **SECRETS,
    )
    celeryconfig_text = (host_app / "celeryconfig.py").read_text()
    worker_log = host_app.parent / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    try:
        # 1. The web app enqueues, with its own celeryconfig and Celery app already imported.
        request = button_request("meta", to="+255712345678")
        enqueued = run(
            [str(venv / "bin" / "python"), "enqueue_message.py", json.dumps(request)],
            cwd=host_app,
            env=env,
            timeout=120,
        )
        seen = json.loads(enqueued.stdout.strip().splitlines()[-1])
        message_id = seen["message_id"]
        assert (seen["status"], seen["published"]) == ("pending", True)
        # wadispatch came from the wheel; celeryconfig and tasks were the web app's own.
        assert Path(seen["wadispatch"]).is_relative_to(venv), seen["wadispatch"]
        assert seen["celeryconfig"] == str(host_app / "celeryconfig.py")
        assert seen["tasks"] == str(host_app / "tasks.py")
        assert seen["host_workers_loaded"] is False
        # The web app's settings and its Celery app are as written, before and after.
        written = {
            "broker_url": host_url,
            "task_default_queue": "hostapp",
            "task_serializer": "pickle",
            "accept_content": ["pickle", "json"],
        }
        assert seen["before"] == seen["after"] == {"module": written, "app": written}
        # wadispatch's app has its own: the test's broker and queue, JSON.
        assert seen["wadispatch_conf"] == {
            "broker_url": redis_url,
            "task_default_queue": queue,
            "task_serializer": "json",
            "accept_content": ["json"],
        }

        # 2. The job is on wadispatch's queue on wadispatch's broker, as JSON; nothing on the app's.
        [job] = broker_messages(broker, queue)
        assert job["content-type"] == "application/json"
        assert job["headers"]["task"] == SEND_TASK
        assert json.loads(base64.b64decode(job["body"]))[0] == [message_id]
        assert set(host_broker.keys("*")) == host_keys_before
        assert host_broker.llen("hostapp") == 0

        # 3. `wadispatch worker` started in the web app's folder sends it.
        hostname = f"embed-{uuid.uuid4().hex[:6]}@test"
        with worker_log.open("wb") as log:
            worker = subprocess.Popen(
                [
                    str(venv / "bin" / "wadispatch"),
                    "worker",
                    "--concurrency=2",
                    f"--hostname={hostname}",
                    "--without-gossip",
                    "--without-mingle",
                ],
                cwd=host_app,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ledger = Ledger.from_url(database_url)
        try:
            wait_for(lambda: sent(ledger, message_id, worker, worker_log), timeout=90, interval=0.25)
        finally:
            ledger.dispose()
        stats = wait_for(lambda: meta_requests(sim), timeout=10)
        assert stats["requests"]["meta"] == 1
        assert [entry["recipient"].lstrip("+") for entry in stats["accepted_log"]] == ["255712345678"]

        # 4. `celery -A wadispatch`, run in the web app's folder, reaches that worker.
        pong = run(
            [str(venv / "bin" / "celery"), "-A", "wadispatch", "inspect", "ping", "-d", hostname, "-t", "10"],
            cwd=host_app,
            env=env,
            timeout=60,
        )
        assert "pong" in pong.stdout, pong.stdout
    finally:
        if worker is not None:
            stop_process_group(worker, 15)
        broker.delete(queue)
        broker.close()

    log = worker_log.read_text(errors="replace")
    assert f".> {queue}" in log  # the queue of the worker's banner: wadispatch's, not "hostapp"
    assert "hostapp" not in log
    assert "host workers imported" not in log
    assert "Traceback" not in log, log[-3000:]
    # Nothing reached the web app's broker database, and nothing changed its settings.
    assert set(host_broker.keys("*")) == host_keys_before
    assert host_broker.llen("hostapp") == 0
    host_broker.close()
    assert (host_app / "celeryconfig.py").read_text() == celeryconfig_text
    # Only the web app's own process imported its tasks.py; no one imported its workers/.
    imports = (host_app.parent / "host-imports.log").read_text().splitlines()
    assert imports == [f"tasks {seen['pid']}"]


def sent(ledger: Ledger, message_id: str, worker: subprocess.Popen[bytes], log: Path) -> bool:
    if worker.poll() is not None:
        raise AssertionError(
            f"the worker exited {worker.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
        )
    record = ledger.get(message_id)
    assert record.state is not State.FAILED, (record.reason, record.provider_error_message)
    return record.state is State.SENT


def meta_requests(sim: httpx.Client) -> dict | None:
    stats = sim.get("/_sim/stats").json()
    return stats if stats["requests_total"] else None


def test_python_m_wadispatch_runs_the_cli(venv: Path, tmp_path: Path) -> None:
    """The CLI is reachable as a module too, from any folder."""
    result = run([str(venv / "bin" / "python"), "-m", "wadispatch", "--help"], cwd=tmp_path, timeout=60)
    assert "worker" in result.stdout
