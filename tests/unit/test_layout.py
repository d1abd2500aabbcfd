"""The layout: the repository's folders install as one import package, ``wadispatch``.

workers/ is the package and tasks/ its ``wadispatch.tasks`` (pyproject's package-dir), so nothing
may import the folder names; the explicit package list must name every folder; the Celery app reads
wadispatch's own settings, a deployment's module only when WADISPATCH_CELERY_CONFIG names it, and
never a ``celeryconfig`` that merely lies in the current folder.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from celery.app.defaults import DEFAULTS as CELERY_SETTINGS
from celery.app.utils import find_app
from wadispatch.celery_settings import DEPLOYMENT_MODULE_VARIABLE, celery_config, defaults
from wadispatch.errors import ConfigurationError

from tests.support import make_settings

REPO = Path(__file__).resolve().parents[2]
#: The repository folders that are installed, and the import package each one becomes.
SOURCE_FOLDERS = {"workers": "wadispatch", "tasks": "wadispatch.tasks"}
#: Top-level names that exist only in the repository: importing them works from a checkout and
#: breaks (or picks up a web app's own module of that name) once installed.
REPOSITORY_ONLY_NAMES = {"workers", "tasks", "celeryconfig"}
#: A string naming a module (or ``module:attribute``) under a repository-only folder, e.g. the
#: ``"tasks.poison:DeadLetteringConsumer"`` Celery settings or ``-A workers.app`` took before.
DOTTED_PATH = re.compile(r"^(workers|tasks)(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?$")


def python_files() -> list[Path]:
    files = [REPO / "celeryconfig.py"]
    for folder in ("workers", "tasks", "tests"):
        files += sorted(path for path in (REPO / folder).rglob("*.py") if "__pycache__" not in path.parts)
    return files


def repository_only_imports(path: Path, shown: str | None = None) -> list[str]:
    """``file:line: names`` for every import of a repository-only top-level name, and every
    string that names a module under workers/ or tasks/ (Celery settings, ``-m`` arguments)."""
    found: list[str] = []
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and DOTTED_PATH.match(node.value)
            and not node.value.endswith(".py")
        ):
            names = [node.value]
        if any(name.split(".")[0].split(":")[0] in REPOSITORY_ONLY_NAMES for name in names):
            found.append(f"{shown or path.relative_to(REPO)}:{node.lineno}: {', '.join(names)}")
    return found


def test_nothing_imports_the_repository_folder_names() -> None:
    offenders = [line for path in python_files() for line in repository_only_imports(path)]
    assert offenders == [], "import wadispatch... instead:\n" + "\n".join(offenders)


def test_the_scan_sees_the_imports_it_forbids(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import workers.cli\nfrom tasks.send import x\nimport celeryconfig\nfrom workers import y\n"
        "from . import fine\nimport wadispatch.tasks\nfrom tests.support import wait_for\n"
        "A = 'tasks.poison:DeadLetteringConsumer'\nB = 'tasks.py'\nC = 'wadispatch.tasks.send'\n"
    )
    lines = [line.split(":", 1)[1] for line in repository_only_imports(sample, "sample.py")]
    assert lines == [
        "1: workers.cli",
        "2: tasks.send",
        "3: celeryconfig",
        "4: workers",
        "8: tasks.poison:DeadLetteringConsumer",
    ]


# --- pyproject's explicit package list ---------------------------------------------------------


def pyproject_setuptools() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_package_dir_maps_the_folders_onto_one_package() -> None:
    assert pyproject_setuptools()["package-dir"] == {value: key for key, value in SOURCE_FOLDERS.items()}


def source_packages() -> dict[str, Path]:
    """Every folder under workers/ and tasks/ holding an ``__init__.py``, by its installed name."""
    found: dict[str, Path] = {}
    for folder, package in SOURCE_FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / folder).parts
            name = ".".join((package, *parts))
            assert name not in found, f"{name} is both {found[name]} and {init.parent}"
            found[name] = init.parent
    return found


def test_the_package_list_names_exactly_the_folders_with_an_init() -> None:
    listed = pyproject_setuptools()["packages"]
    assert len(listed) == len(set(listed)), listed
    assert set(listed) == set(source_packages())


def test_every_folder_holding_python_files_is_a_package() -> None:
    """A folder of modules without ``__init__.py`` would be left out of the wheel unnoticed."""
    missing = []
    for folder in SOURCE_FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            if "__pycache__" in path.parts:
                continue
            for parent in path.relative_to(REPO).parents:
                if parent != Path(".") and not (REPO / parent / "__init__.py").is_file():
                    missing.append(str(parent))
    assert sorted(set(missing)) == []


def test_the_console_script_is_in_the_package() -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"wadispatch": "wadispatch.cli:main"}


# --- Celery settings: defaults, a deployment's module, WADISPATCH_CELERY_* ----------------------


@pytest.fixture
def settings():
    return make_settings(redis_url="redis://broker.example:6379/3", queue="dispatch-q")


@pytest.fixture
def fresh_modules() -> Iterator[list[str]]:
    """Module names a test imports; removed from ``sys.modules`` afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        for loaded in [module for module in sys.modules if module == name or module.startswith(f"{name}.")]:
            del sys.modules[loaded]


DEPLOYMENT = """
import os                      # a module: not a setting
from datetime import timedelta  # a class: not a setting

worker_prefetch_multiplier = 4
task_default_queue = "deployment-q"
broker_transport_options = {"visibility_timeout": 7200}
_private = "not a setting"
UPPER = "not a setting"


def helper():                  # a function: not a setting
    return 1
"""


def test_defaults_are_wadispatchs_own(settings) -> None:
    config = celery_config(settings, {})
    assert config == defaults(settings)
    assert config["broker_url"] == "redis://broker.example:6379/3"
    assert config["task_default_queue"] == "dispatch-q"
    assert config["task_routes"] == {"wadispatch.*": {"queue": "dispatch-q"}}
    assert config["task_serializer"] == "json"
    assert config["accept_content"] == ["json"]
    assert config["worker_consumer"] == "wadispatch.tasks.poison:DeadLetteringConsumer"
    unknown = set(config) - set(CELERY_SETTINGS)
    assert unknown == set(), f"not Celery settings: {unknown}"


def assert_deployment_applied(config: dict, settings) -> None:
    assert config["worker_prefetch_multiplier"] == 4
    assert config["task_default_queue"] == "deployment-q"
    assert config["broker_transport_options"] == {"visibility_timeout": 7200}
    assert config["broker_url"] == settings.redis_url  # what the module leaves alone stays
    assert config["task_serializer"] == "json"
    assert not {"os", "timedelta", "helper", "_private", "UPPER"} & set(config)


def test_a_deployment_module_given_as_a_path_overrides_the_defaults(settings, tmp_path: Path) -> None:
    path = tmp_path / "deployment_settings.py"
    path.write_text(DEPLOYMENT)
    assert_deployment_applied(celery_config(settings, {DEPLOYMENT_MODULE_VARIABLE: str(path)}), settings)


def test_a_deployment_module_given_by_its_dotted_name_overrides_the_defaults(
    settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_modules: list[str]
) -> None:
    package = f"deploy_{uuid.uuid4().hex[:8]}"
    fresh_modules.append(package)
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / package / "celerysettings.py").write_text(DEPLOYMENT)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = celery_config(settings, {DEPLOYMENT_MODULE_VARIABLE: f"{package}.celerysettings"})
    assert_deployment_applied(config, settings)


def test_a_dotted_name_finds_the_module_in_the_current_folder(
    settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_modules: list[str]
) -> None:
    """``WADISPATCH_CELERY_CONFIG=celeryconfig wadispatch worker`` in the folder holding it: a
    console script's ``sys.path`` does not hold the current folder."""
    name = f"deployment_{uuid.uuid4().hex[:8]}"
    fresh_modules.append(name)
    (tmp_path / f"{name}.py").write_text(DEPLOYMENT)
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    assert_deployment_applied(celery_config(settings, {DEPLOYMENT_MODULE_VARIABLE: name}), settings)
    assert sys.path == path_before


def test_celery_a_wadispatch_reads_the_module_named_from_the_folder_it_starts_in(tmp_path: Path) -> None:
    (tmp_path / "celeryconfig.py").write_text(HOST_CELERYCONFIG)  # named by nothing: not read
    (tmp_path / "dispatch_settings.py").write_text(DEPLOYMENT)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WADISPATCH_", "CELERY_", "PYTHON")) and key != "REDIS_URL"
    }
    env |= {
        "WADISPATCH_REDIS_URL": "redis://wadispatch.example:6379/0",
        DEPLOYMENT_MODULE_VARIABLE: "dispatch_settings",
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("celery")), "-A", "wadispatch", "report"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "task_default_queue: 'deployment-q'" in result.stdout
    assert "worker_prefetch_multiplier: 4" in result.stdout
    assert "pickle" not in result.stdout and "host-app.example" not in result.stdout


def test_a_wadispatch_celery_variable_wins_over_the_module_and_the_defaults(settings, tmp_path: Path) -> None:
    path = tmp_path / "deployment_settings.py"
    path.write_text(DEPLOYMENT)
    environ = {
        DEPLOYMENT_MODULE_VARIABLE: str(path),
        "WADISPATCH_CELERY_WORKER_PREFETCH_MULTIPLIER": "8",  # the module says 4
        "WADISPATCH_CELERY_TASK_DEFAULT_QUEUE": "env-q",  # the module says deployment-q
        "WADISPATCH_CELERY_TASK_ACKS_LATE": "false",  # a default only
        "WADISPATCH_CELERY_BROKER_TRANSPORT_OPTIONS": json.dumps({"visibility_timeout": 60}),
    }
    config = celery_config(settings, environ)
    assert config["worker_prefetch_multiplier"] == 8
    assert config["task_default_queue"] == "env-q"
    assert config["task_acks_late"] is False
    assert config["broker_transport_options"] == {"visibility_timeout": 60}
    assert (
        celery_config(settings, {"WADISPATCH_CELERY_WORKER_PREFETCH_MULTIPLIER": "8"})[
            "worker_prefetch_multiplier"
        ]
        == 8
    )


def test_a_bad_override_value_names_its_variable(settings) -> None:
    with pytest.raises(ConfigurationError, match="WADISPATCH_CELERY_WORKER_PREFETCH_MULTIPLIER"):
        celery_config(settings, {"WADISPATCH_CELERY_WORKER_PREFETCH_MULTIPLIER": "many"})


@pytest.mark.parametrize(
    "name",
    [
        "no_such_module_for_wadispatch",
        "/nonexistent/folder/celeryconfig.py",
        "{broken}",  # written to a .py file that does not compile
        "{raises}",  # written to a .py file that raises on import
    ],
)
def test_a_bad_deployment_module_raises_a_configuration_error_naming_the_variable(
    settings, tmp_path: Path, name: str
) -> None:
    if name == "{broken}":
        (tmp_path / "broken.py").write_text("broker_url = (\n")
        name = str(tmp_path / "broken.py")
    elif name == "{raises}":
        (tmp_path / "raises.py").write_text("raise RuntimeError('no broker for you')\n")
        name = str(tmp_path / "raises.py")
    with pytest.raises(ConfigurationError) as caught:
        celery_config(settings, {DEPLOYMENT_MODULE_VARIABLE: name})
    assert DEPLOYMENT_MODULE_VARIABLE in str(caught.value)
    assert name in str(caught.value)


HOST_CELERYCONFIG = """
broker_url = "redis://host-app.example:6379/7"
task_default_queue = "hostapp"
task_serializer = "pickle"
accept_content = ["pickle", "json"]
"""


def test_a_celeryconfig_in_the_current_folder_is_not_read(
    settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_modules: list[str]
) -> None:
    (tmp_path / "celeryconfig.py").write_text(HOST_CELERYCONFIG)
    fresh_modules.append("celeryconfig")
    sys.modules.pop("celeryconfig", None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(DEPLOYMENT_MODULE_VARIABLE, raising=False)
    assert celery_config(settings, {}) == defaults(settings)
    assert celery_config(settings) == celery_config(settings, dict(os.environ))
    assert celery_config(settings)["task_serializer"] == "json"
    assert "celeryconfig" not in sys.modules


def test_the_app_of_a_fresh_process_ignores_a_celeryconfig_in_its_folder(tmp_path: Path) -> None:
    """``celery -A wadispatch`` run where a web app keeps its own ``celeryconfig.py``."""
    (tmp_path / "celeryconfig.py").write_text(HOST_CELERYCONFIG)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WADISPATCH_", "CELERY_")) and key != "REDIS_URL"
    }
    env |= {
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)]),
        "WADISPATCH_REDIS_URL": "redis://wadispatch.example:6379/0",
        "WADISPATCH_QUEUE": "wadispatch-q",
    }
    script = (
        "import json, sys\n"
        "from celery.app.utils import find_app\n"
        "app = find_app('wadispatch')\n"
        "conf = app.conf\n"
        "print(json.dumps({key: conf[key] for key in"
        " ('broker_url', 'task_default_queue', 'task_serializer', 'accept_content')}\n"
        "    | {'celeryconfig imported': 'celeryconfig' in sys.modules}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "broker_url": "redis://wadispatch.example:6379/0",
        "task_default_queue": "wadispatch-q",
        "task_serializer": "json",
        "accept_content": ["json"],
        "celeryconfig imported": False,
    }


COMMENTED_SETTING = re.compile(r"^# ([a-z_]+ = .*)$", re.MULTILINE)


def test_the_repositorys_celeryconfig_loads_as_a_deployment_module(settings, tmp_path: Path) -> None:
    example = REPO / "celeryconfig.py"
    config = celery_config(settings, {DEPLOYMENT_MODULE_VARIABLE: str(example)})
    assert set(config) == set(defaults(settings))
    # The settings it shows commented out are Celery's, and load once uncommented.
    uncommented = COMMENTED_SETTING.sub(r"\1", example.read_text())
    shown = dict(line.split(" = ", 1) for line in COMMENTED_SETTING.findall(example.read_text()))
    assert shown, "the example shows no setting"
    assert set(shown) <= set(CELERY_SETTINGS)
    (tmp_path / "uncommented.py").write_text(uncommented)
    config = celery_config(settings, {DEPLOYMENT_MODULE_VARIABLE: str(tmp_path / "uncommented.py")})
    for name, value in shown.items():
        assert config[name] == ast.literal_eval(value), name


def test_the_repositorys_celeryconfig_loads_by_its_dotted_name(
    settings, monkeypatch: pytest.MonkeyPatch, fresh_modules: list[str]
) -> None:
    fresh_modules.append("celeryconfig")
    sys.modules.pop("celeryconfig", None)
    monkeypatch.syspath_prepend(str(REPO))
    config = celery_config(settings, {DEPLOYMENT_MODULE_VARIABLE: "celeryconfig"})
    assert sys.modules["celeryconfig"].__file__ == str(REPO / "celeryconfig.py")
    assert set(config) == set(defaults(settings))


# --- celery -A wadispatch ----------------------------------------------------------------------


def test_celery_finds_the_app_by_the_package_name() -> None:
    from wadispatch.celery import app

    found = find_app("wadispatch")
    assert isinstance(found, Celery)
    assert found is app
    assert found.main == "wadispatch"


# --- the tests themselves ----------------------------------------------------------------------


def test_test_modules_have_names_of_their_own() -> None:
    """pytest imports test modules by their file name (the test folders are not packages), so two
    files of the same name in tests/unit and tests/integration stop the whole run at collection."""
    names = Counter(path.name for path in (REPO / "tests").rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
