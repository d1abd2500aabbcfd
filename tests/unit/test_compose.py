"""docker-compose.yml, the Dockerfile and .env.example against the project they deploy (no Docker needed).

Every command a container runs must be an entry point that exists here (a ``wadispatch`` subcommand
of the Typer app, or a ``celery -A wadispatch.celery`` subcommand) and parse with the options it is given;
every variable compose fills in and every setting the project reads must be in .env.example.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import typer.main
import yaml
from celery import Celery
from celery.app.utils import find_app
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from celery.worker.control import Panel
from flower.command import is_flower_option
from pydantic import TypeAdapter
from wadispatch.cli import app as wadispatch_cli
from wadispatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
COMPOSE: dict[str, Any] = yaml.safe_load(COMPOSE_TEXT)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")

#: Services built from the project's Dockerfile (the others run a stock image).
OWN_SERVICES = sorted(name for name, service in SERVICES.items() if "build" in service)
#: Services that take every setting from .env.
ENV_FILE_SERVICES = ("worker", "beat", "flower", "api")
#: No meaningful healthcheck (docker-compose.yml says why beside each).
WITHOUT_HEALTHCHECK = {"beat": "serves no port and answers no ping; the restart policy covers its death"}
RESTART_POLICIES = {"always", "unless-stopped", "on-failure"}


# --- helpers ---------------------------------------------------------------------------------------


def argv_of(command: str | list[str]) -> list[str]:
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def shell_argv(test: list[str]) -> list[str]:
    """The argv of a healthcheck's ``test`` (CMD, or CMD-SHELL up to a redirection), ``$$`` unescaped."""
    kind, *rest = test
    if kind == "CMD":
        argv = rest
    elif kind == "CMD-SHELL":
        argv = shlex.split(rest[0])
        argv = argv[: next((i for i, word in enumerate(argv) if word.startswith(">")), len(argv))]
    else:
        raise AssertionError(f"unexpected healthcheck form {kind!r}")
    return [word.replace("$$", "$") for word in argv]


def celery_obj() -> CLIContext:
    module = importlib.import_module("wadispatch.celery")
    return CLIContext(app=module.app, no_color=True, workdir=None, quiet=True)


def check_entry_point(argv: list[str]) -> str:
    """Assert that ``argv`` runs an entry point of this project with options it accepts.

    Returns ``"wadispatch <sub>"`` or ``"celery <sub>"``.
    """
    assert argv, "empty command"
    program, *args = argv
    if program == "wadispatch":
        group = typer.main.get_command(wadispatch_cli)  # a click group (typer's vendored click)
        assert args, "wadispatch without a subcommand"
        sub, *options = args
        assert sub in group.commands, f"wadispatch has no subcommand {sub!r}: {sorted(group.commands)}"
        ctx = group.commands[sub].make_context(f"wadispatch {sub}", list(options))
        if sub == "worker":  # extra arguments go to `celery worker`
            celery_cli.commands["worker"].make_context("worker", list(ctx.args), obj=celery_obj())
        elif sub == "flower":  # extra arguments go to Flower
            unknown = [arg for arg in ctx.args if not is_flower_option(arg)]
            assert not unknown, f"not Flower options: {unknown}"
        else:
            assert not ctx.args, f"wadispatch {sub} does not take {ctx.args}"
        return f"wadispatch {sub}"
    if program == "celery":
        assert args[:2] == ["-A", "wadispatch"], f"celery must be pointed at wadispatch: {argv}"
        assert isinstance(find_app(args[1]), Celery)
        assert len(args) > 2, "celery without a subcommand"
        sub, *options = args[2:]
        assert sub in celery_cli.commands, f"celery has no subcommand {sub!r}: {sorted(celery_cli.commands)}"
        ctx = celery_cli.commands[sub].make_context(sub, list(options), obj=celery_obj())
        if sub in ("inspect", "control"):
            action = ctx.params["command"]
            assert action in Panel.meta and Panel.meta[action].type == sub, f"celery {sub} {action}?"
        return f"celery {sub}"
    raise AssertionError(f"{program!r} is not an entry point of this project")


def compose_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from compose_strings(key)
            yield from compose_strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from compose_strings(item)


def compose_variables() -> dict[str, str]:
    """Each ``${VAR…}``/``$VAR`` compose interpolates, with its modifier (``:?…``, ``:-…`` or ``""``)."""
    found: dict[str, str] = {}
    for text in compose_strings(COMPOSE):
        text = text.replace("$$", "")  # an escaped dollar, for the container's own shell
        for name, modifier in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}", text):
            found[name] = modifier
        for name in re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", text):
            found.setdefault(name, "")
    return found


def env_example_entries() -> dict[str, tuple[str, bool]]:
    """``NAME -> (value, active)`` for every ``NAME=value`` line of .env.example, commented or not.

    An active line wins over commented ones of the same name.
    """
    entries: dict[str, tuple[str, bool]] = {}
    for line in ENV_EXAMPLE.splitlines():
        match = re.fullmatch(r"\s*(#\s*)?([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            name, value, active = match.group(2), match.group(3), match.group(1) is None
            if active or name not in entries:
                entries[name] = (value, active)
    return entries


def setting_names() -> dict[str, str]:
    """``WADISPATCH_<FIELD> -> field`` for every field of the settings."""
    return {f"WADISPATCH_{name.upper()}": name for name in Settings.model_fields}


def environment_names() -> set[str]:
    """``WADISPATCH_*`` names the code reads straight from ``os.environ``, beside the settings."""
    sources = [*(ROOT / "workers").rglob("*.py"), *(ROOT / "tasks").rglob("*.py")]
    pattern = r"os\.(?:environ\.get\(|environ\[|getenv\()\s*[\"'](WADISPATCH_[A-Z0-9_]+)[\"']"
    return {name for path in sources for name in re.findall(pattern, path.read_text(encoding="utf-8"))}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            pairs.append((instruction.upper(), rest.strip()))
    return pairs


# --- the services ----------------------------------------------------------------------------------


def test_the_deployment_has_its_services() -> None:
    assert set(SERVICES) == {
        "redis", "postgres", "worker", "beat", "flower", "simulator", "api", "prometheus", "grafana"
    }  # fmt: skip
    assert OWN_SERVICES == ["api", "beat", "flower", "simulator", "worker"]
    assert SERVICES["simulator"]["profiles"] == ["dev"]
    assert {name: service["profiles"] for name, service in SERVICES.items() if "profiles" in service} == {
        "simulator": ["dev"],
        "prometheus": ["monitoring"],
        "grafana": ["monitoring"],
    }


def test_prometheus_scrapes_the_api_and_every_worker_and_grafana_has_the_dashboard() -> None:
    """The monitoring files compose mounts exist; Prometheus scrapes the ports the app serves."""
    mounts = {
        name: {volume.split(":")[0]: volume.split(":")[1] for volume in SERVICES[name]["volumes"]}
        for name in ("prometheus", "grafana")
    }
    for name, volumes in mounts.items():
        for source in volumes:
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts a missing {source}"
    config = yaml.safe_load((ROOT / "workers/monitoring/prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["wadispatch-api"]["static_configs"][0]["targets"] == ["api:8000"]
    worker = jobs["wadispatch-worker"]["dns_sd_configs"][0]
    port = SERVICES["worker"]["environment"]["WADISPATCH_METRICS_PORT"]
    assert (worker["names"], str(worker["port"])) == (["worker"], port)
    assert port in SERVICES["worker"]["expose"]
    dashboards = ROOT / "workers/monitoring/grafana/dashboards"
    assert mounts["grafana"]["./workers/monitoring/grafana/dashboards"] == "/var/lib/grafana/dashboards"
    assert list(dashboards.glob("*.json"))
    # Prometheus answers without a login: not published beyond the host.
    assert all(port.startswith("127.0.0.1:") for port in SERVICES["prometheus"]["ports"])


@pytest.mark.parametrize("name", OWN_SERVICES)
def test_each_command_is_an_entry_point_of_the_project(name: str) -> None:
    check_entry_point(argv_of(SERVICES[name]["command"]))


def test_the_commands_are_the_documented_ones() -> None:
    commands = {name: argv_of(SERVICES[name]["command"]) for name in OWN_SERVICES}
    assert {name: check_entry_point(argv) for name, argv in commands.items()} == {
        "worker": "wadispatch worker",
        "beat": "celery beat",
        "flower": "wadispatch flower",
        "simulator": "wadispatch simulator",
        "api": "wadispatch api",
    }
    assert commands["api"][2:] == ["--host", "0.0.0.0", "--port", "8000"]
    assert "8000:8000" in SERVICES["api"]["ports"]
    assert commands["flower"][2:] == ["--address=0.0.0.0", "--port=5555"]
    assert commands["simulator"][2:] == ["--host", "0.0.0.0", "--port", "8787"]


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_restarts(name: str) -> None:
    assert SERVICES[name].get("restart") in RESTART_POLICIES


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_has_a_healthcheck_unless_it_cannot(name: str) -> None:
    healthcheck = SERVICES[name].get("healthcheck")
    if name in WITHOUT_HEALTHCHECK:
        assert healthcheck is None
        return
    assert healthcheck and healthcheck["test"][0] in ("CMD", "CMD-SHELL"), healthcheck
    assert not healthcheck.get("disable", False)


def test_healthchecks_run_real_commands() -> None:
    def argv(name: str) -> list[str]:
        return shell_argv(SERVICES[name]["healthcheck"]["test"])

    assert argv("redis") == ["redis-cli", "ping"]
    assert argv("postgres")[0] == "pg_isready"
    # The worker is pinged by the node name its command gives it (%h is Celery's hostname).
    worker = argv("worker")
    assert check_entry_point(worker) == "celery inspect"
    assert worker[4:] == ["ping", "--destination", "worker@$HOSTNAME", "--timeout", "10"]
    assert "--hostname=worker@%h" in argv_of(SERVICES["worker"]["command"])
    # Flower and the simulator answer their health endpoints on the port they listen on.
    for name, url in (
        ("flower", "http://127.0.0.1:5555/healthcheck"),
        ("simulator", "http://127.0.0.1:8787/_sim/health"),
        ("api", "http://127.0.0.1:8000/health"),
    ):
        check = argv(name)
        assert check[:2] == ["python", "-c"] and url in check[2], check
        compile(check[2], f"{name} healthcheck", "exec")


@pytest.mark.parametrize("name", ENV_FILE_SERVICES)
def test_the_app_services_take_their_settings_from_dot_env(name: str) -> None:
    env_file = SERVICES[name]["env_file"]
    assert ".env" in ([env_file] if isinstance(env_file, str) else env_file)


def test_the_app_waits_for_healthy_databases() -> None:
    def waits_for(name: str) -> dict[str, str]:
        return {dep: spec["condition"] for dep, spec in SERVICES[name]["depends_on"].items()}

    assert waits_for("worker") == {"redis": "service_healthy", "postgres": "service_healthy"}
    assert waits_for("beat") == {"redis": "service_healthy"}
    assert waits_for("flower") == {"redis": "service_healthy"}
    assert waits_for("api") == {"redis": "service_healthy", "postgres": "service_healthy"}


def test_redis_and_postgres_keep_their_data() -> None:
    redis, postgres = SERVICES["redis"], SERVICES["postgres"]
    assert redis["image"] == "redis:7-alpine"
    command = argv_of(redis["command"])
    assert command[0] == "redis-server" and command[command.index("--appendonly") + 1] == "yes"
    assert postgres["image"] == "postgres:16-alpine"
    mounts = {
        name: [volume.split(":")[1] for volume in service.get("volumes", [])]
        for name, service in SERVICES.items()
    }
    assert "/data" in mounts["redis"]
    assert "/var/lib/postgresql/data" in mounts["postgres"]
    # Beat's schedule file sits on its volume, in the directory the image gives its user.
    assert "/var/lib/wadispatch" in mounts["beat"]
    assert "--schedule=/var/lib/wadispatch/celerybeat-schedule" in argv_of(SERVICES["beat"]["command"])
    assert "chown wadispatch:wadispatch /var/lib/wadispatch" in DOCKERFILE
    # Named volumes are declared (a ./path is a file of the repository: the monitoring's); the
    # databases publish no port.
    for name in SERVICES:
        for volume in SERVICES[name].get("volumes", []):
            source = volume.split(":")[0]
            assert source in COMPOSE["volumes"] or source.startswith("./workers/monitoring/"), volume
    assert "ports" not in redis and "ports" not in postgres


def test_flower_requires_basic_auth_and_listens_on_5555() -> None:
    flower = SERVICES["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert compose_variables()["FLOWER_BASIC_AUTH"].startswith(":?")
    assert "5555:5555" in flower["ports"]
    assert "FLOWER_UNAUTHENTICATED_API" not in COMPOSE_TEXT + ENV_EXAMPLE


# --- .env.example ----------------------------------------------------------------------------------


def test_every_compose_variable_is_in_the_env_example() -> None:
    variables = compose_variables()
    assert variables, "compose interpolates nothing?"
    entries = env_example_entries()
    missing = sorted(set(variables) - set(entries))
    assert not missing, f"used in docker-compose.yml, not in .env.example: {missing}"
    # A variable compose cannot do without (no default) is set, uncommented.
    for name, modifier in variables.items():
        if not modifier.startswith((":-", "-")):
            assert entries[name][1], f"{name} has no default in docker-compose.yml: set it in .env.example"


def test_every_setting_is_in_the_env_example() -> None:
    entries = env_example_entries()
    read = set(setting_names()) | environment_names()
    missing = sorted(read - set(entries))
    assert not missing, f"read by the project, not in .env.example: {missing}"
    unknown = sorted(
        name
        for name in entries
        if name.startswith("WADISPATCH_") and name not in read and not name.startswith("WADISPATCH_CELERY_")
    )
    assert not unknown, f"in .env.example, read by nothing: {unknown}"


def test_commented_out_settings_show_their_defaults() -> None:
    entries = env_example_entries()
    for env_name, field in setting_names().items():
        value, active = entries[env_name]
        info = Settings.model_fields[field]
        if active or info.default is None or info.default_factory is not None:
            continue
        parsed = TypeAdapter(info.annotation).validate_python(value)  # lax: "15" is 15.0
        assert parsed == info.default, f"# {env_name}={value}, but the default is {info.default!r}"


def test_the_env_example_holds_no_secret() -> None:
    entries = env_example_entries()
    for env_name, field in setting_names().items():
        if "SecretStr" in str(Settings.model_fields[field].annotation):
            value, active = entries[env_name]
            # Commented out: an empty value would count as set (an empty credential).
            assert not active, f"{env_name} must stay commented out in .env.example"
            assert value.startswith("your-"), f"{env_name}={value} is not a placeholder"
    assert entries["FLOWER_BASIC_AUTH"] == ("", True)  # compose refuses to start until it is filled
    assert "change-me" in entries["POSTGRES_PASSWORD"][0]


def test_the_env_example_is_valid_and_points_at_the_compose_services(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in list(os.environ):
        if name.startswith("WADISPATCH_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("WADISPATCH_CONFIG_FILE", str(tmp_path / "absent.toml"))
    settings = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    entries = env_example_entries()

    database = urlsplit(settings.database_url)
    assert (database.scheme, database.hostname, database.port) == ("postgresql", "postgres", 5432)
    assert database.username == entries["POSTGRES_USER"][0]
    assert database.password == entries["POSTGRES_PASSWORD"][0]
    assert database.path == "/" + entries["POSTGRES_DB"][0]
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.queue == "wadispatch"
    secrets = [name for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)]
    assert secrets and all(getattr(settings, name) is None for name in secrets)


# --- the Dockerfile --------------------------------------------------------------------------------


def test_the_dockerfile_installs_the_project_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.12-slim")
    runs = [args for instruction, args in instructions if instruction == "RUN"]
    assert any(re.search(r"\bpip install \"\.\[postgres\]\"", run) for run in runs), runs
    # Everything the package is built from is copied in before the install.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    needed = {
        "pyproject.toml",
        pyproject["project"]["readme"],
        *pyproject["tool"]["setuptools"]["package-dir"].values(),
    }
    copied = {
        Path(source).name
        for instruction, args in instructions
        if instruction == "COPY"
        for source in args.split()[:-1]
    }
    assert needed <= copied, f"not copied into the image: {sorted(needed - copied)}"
    assert ".env" not in copied and "." not in copied  # no local settings or secrets baked in
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")


def test_the_dockerfile_runs_a_known_entry_point() -> None:
    instructions = dict(dockerfile_instructions())
    assert "ENTRYPOINT" not in instructions  # compose's command is the whole command line
    cmd = json.loads(instructions["CMD"])  # exec form: signals reach the process
    assert check_entry_point(cmd) == "wadispatch worker"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["scripts"]["wadispatch"] == "wadispatch.cli:main"


def test_the_entry_point_check_rejects_what_does_not_exist() -> None:
    for argv in (
        ["wadispatch", "serve"],
        ["wadispatch", "api", "--listen", "0.0.0.0"],
        ["wadispatch", "simulator", "--listen", "0.0.0.0"],
        ["celery", "-A", "wadispatch", "scheduler"],
        ["celery", "-A", "wadispatch", "beat", "--no-such-option"],
        ["celery", "-A", "wadispatch", "inspect", "no_such_action"],
        ["celery", "-A", "wadispatch.nowhere", "beat"],
        ["gunicorn", "app:app"],
    ):
        with pytest.raises(Exception) as raised:
            check_entry_point(argv)
        assert isinstance(raised.value, AssertionError | ImportError) or "ClickException" in {
            cls.__name__ for cls in type(raised.value).__mro__
        }, repr(raised.value)
