"""The public API at the top of the package, and what importing it costs.

Each check runs in a fresh interpreter: this test process has loaded half the package already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import wadispatch
import wadispatch.campaigns

#: Loaded by the workers' send path, never by a web app that only enqueues. ``asyncio`` is not
#: here: SQLAlchemy (``sqlalchemy.util.compat``) and pydantic-settings (``pydantic_settings.main``)
#: import it at import time, and enqueue needs both (the ledger, the settings). No loop is started.
NOT_FOR_ENQUEUE = (
    "aiohttp",
    "httpx",
    "httpx_aiohttp",
    "uvicorn",
    "fastapi",
    "wadispatch.engine",
    "wadispatch.ratelimit",
    "wadispatch.transport",
    "wadispatch.window",
)


def run_python(code: str) -> object:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_importing_enqueue_loads_no_http_client_engine_or_limiter() -> None:
    loaded = run_python(
        "import json, sys\n"
        "from wadispatch import enqueue, enqueue_many, EnqueueResult, MessageValidationError\n"
        f"print(json.dumps([name for name in {NOT_FOR_ENQUEUE!r} if name in sys.modules]))\n"
    )
    assert loaded == []


def test_importing_the_package_or_a_submodule_loads_no_producer() -> None:
    loaded = run_python(
        "import json, sys\n"
        "import wadispatch, wadispatch.errors\n"
        "print(json.dumps([name for name in ('wadispatch.producer', 'wadispatch.celery', 'sqlalchemy')"
        " if name in sys.modules]))\n"
    )
    assert loaded == []


def test_celery_dash_a_wadispatch_finds_the_app() -> None:
    found = run_python(
        "import json\n"
        "from celery.app.utils import find_app\n"
        "app = find_app('wadispatch')\n"
        "from wadispatch.celery import app as wadispatch_app\n"
        "print(json.dumps(app is wadispatch_app))\n"
    )
    assert found is True


def test_the_public_names() -> None:
    from wadispatch.errors import MessageValidationError
    from wadispatch.producer import EnqueueResult, enqueue, enqueue_many

    public = {"EnqueueResult": EnqueueResult, "MessageValidationError": MessageValidationError}
    public |= {"enqueue": enqueue, "enqueue_many": enqueue_many}
    assert sorted(wadispatch.__all__) == sorted(public)
    for name, value in public.items():
        assert getattr(wadispatch, name) is value, name
    assert set(wadispatch.__all__) <= set(dir(wadispatch))
    assert not hasattr(wadispatch, "app")


def test_the_campaign_api_is_importable_from_its_package() -> None:
    from wadispatch.campaigns import api

    assert set(wadispatch.campaigns.__all__) == set(api.__all__)
    for name in api.__all__:
        assert getattr(wadispatch.campaigns, name) is getattr(api, name), name


def test_a_broken_celery_setting_fails_enqueue_before_anything_is_recorded(tmp_path) -> None:
    """Not a broker outage to wait out: the caller is told, and no message is left pending that
    no job could ever carry."""
    from tests.support import button_request

    database = tmp_path / "ledger.sqlite3"
    env = {
        "PATH": "/usr/bin:/bin",
        "WADISPATCH_DATABASE_URL": f"sqlite:///{database}",
        "WADISPATCH_CELERY_CONFIG": str(tmp_path / "missing_celeryconfig.py"),
    }
    code = (
        "import json, sys\n"
        "from wadispatch import enqueue\n"
        "from wadispatch.errors import ConfigurationError\n"
        "try:\n"
        f"    enqueue({button_request()!r})\n"
        "except ConfigurationError as exc:\n"
        "    print(json.dumps(str(exc)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    message = json.loads(done.stdout)
    assert message.startswith("WADISPATCH_CELERY_CONFIG=") and "missing_celeryconfig.py" in message
    assert not database.exists()  # the ledger was never opened
