"""The ``wadispatch`` command as a package: one module per command group, each registered the one
way (``register(app)``, listed once in the root), no group importing the root or another group (so
no import cycle), and ``python -m wadispatch`` running the command."""

from __future__ import annotations

import ast
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import typer
import wadispatch.cli
from wadispatch.cli import root

CLI = Path(wadispatch.cli.__file__).parent
MODULES = sorted(f"wadispatch.cli.{info.name}" for info in pkgutil.iter_modules([str(CLI)]))
#: The modules that are not command groups.
NOT_GROUPS = {"wadispatch.cli.__main__", "wadispatch.cli.common", "wadispatch.cli.root"}
#: Every command and command group, in the order ``wadispatch --help`` lists them.
COMMANDS = [
    "validate",
    "send",
    "status",
    "worker",
    "flower",
    "demo",
    "simulator",
    "api",
    "reconcile",
    "prune",
    "api-key",
    "dead-letters",
    "campaign",
    "suppress",
    "db",
]


def cli_imports(path: Path) -> list[str]:
    """The modules of wadispatch.cli that ``path`` imports (``wadispatch.cli`` itself included)."""
    found: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(["wadispatch.cli", base] if base else ["wadispatch.cli"])
            found += [base] if base != "wadispatch.cli" else [f"{base}.{a.name}" for a in node.names]
    return [name for name in found if name == "wadispatch.cli" or name.startswith("wadispatch.cli.")]


def test_the_root_registers_every_group_module_once() -> None:
    groups = [module.__name__ for module in root.GROUPS]
    assert len(groups) == len(set(groups))
    assert sorted(groups) == sorted(set(MODULES) - NOT_GROUPS)
    assert all(callable(getattr(module, "register", None)) for module in root.GROUPS)


def test_group_modules_import_only_the_shared_helpers() -> None:
    offenders = {
        f"{CLI.name}/{path.name}": imported
        for path in sorted(CLI.glob("*.py"))
        if path.stem not in {"__init__", "__main__", "root"}
        and (imported := [name for name in cli_imports(path) if name != "wadispatch.cli.common"])
    }
    assert offenders == {}, "a group module imports the root or another group (an import cycle)"


def test_the_scan_sees_an_import_of_the_root(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from wadispatch.cli import app\nfrom . import root\nimport wadispatch.cli.root\n"
        "from wadispatch.cli.common import err\nfrom wadispatch.settings import Settings\n"
    )
    assert cli_imports(sample) == [
        "wadispatch.cli.app",
        "wadispatch.cli.root",
        "wadispatch.cli.root",
        "wadispatch.cli.common",
    ]


def test_every_command_is_registered_in_order() -> None:
    group = typer.main.get_command(root.app)
    assert list(group.commands) == COMMANDS  # type: ignore[attr-defined]


def test_python_dash_m_wadispatch_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "wadispatch", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120", "TERM": "dumb"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # A row of the commands box starts "│ <name>"; a wrapped description starts with more spaces.
    listed = [match[1] for line in result.stdout.splitlines() if (match := re.match(r"│ (\S+)", line))]
    assert [name for name in listed if name in COMMANDS] == COMMANDS
