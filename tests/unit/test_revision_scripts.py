"""The ledger's revisions as scripts (one chain from the baseline to the head, every file a Python
module of the package) and what the ledger's standing says to people. Databases are in
tests/integration/test_migrations.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from wadispatch.errors import ConfigurationError, LedgerBehind, UnknownLedgerSchema
from wadispatch.ledger import revisions
from wadispatch.ledger.migrations import SCRIPT_LOCATION
from wadispatch.ledger.revisions import LedgerStatus, Standing, UpgradeResult

HEAD = revisions.head_revision()


def test_the_revisions_are_one_chain_from_the_baseline_to_the_head() -> None:
    listed = revisions.history()
    assert listed[0].revision == revisions.BASELINE
    assert listed[0].down_revision is None
    assert [revision.down_revision for revision in listed[1:]] == [
        revision.revision for revision in listed[:-1]
    ]
    assert listed[-1].revision == HEAD
    assert ScriptDirectory.from_config(revisions.alembic_config()).get_heads() == [HEAD]


def test_every_revision_says_what_it_does_and_can_be_undone() -> None:
    for script in ScriptDirectory.from_config(revisions.alembic_config()).walk_revisions():
        assert script.doc, script.revision
        for step in (script.module.upgrade, script.module.downgrade):
            assert step.__doc__, f"{script.revision}.{step.__name__} has no docstring"


def test_the_scripts_are_python_modules_only() -> None:
    """The wheel ships the package's .py files; anything else there would need package data."""
    files = [
        path.relative_to(SCRIPT_LOCATION).as_posix()
        for path in SCRIPT_LOCATION.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    ]
    assert files and all(name.endswith(".py") for name in files), files
    assert (SCRIPT_LOCATION / "env.py").is_file()
    assert {Path(name).name for name in files} >= {"__init__.py", "env.py"}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (LedgerStatus(HEAD, HEAD, Standing.CURRENT), f"at {HEAD} (head): up to date"),
        (
            LedgerStatus(revisions.BASELINE, HEAD, Standing.BEHIND),
            f"at {revisions.BASELINE}; head is {HEAD}: behind, run `wadispatch db upgrade`",
        ),
        (
            LedgerStatus(None, HEAD, Standing.UNVERSIONED),
            "made by the release before migrations (no revision recorded); head is "
            f"{HEAD}: behind, run `wadispatch db upgrade`",
        ),
        (
            LedgerStatus(None, HEAD, Standing.EMPTY),
            f"empty: no ledger yet; `wadispatch db upgrade` (or the first start) creates it at {HEAD}",
        ),
        (
            LedgerStatus("9999_x", HEAD, Standing.UNKNOWN),
            "at 9999_x, a revision this release does not know (a newer release upgraded it)",
        ),
    ],
)
def test_a_ledgers_standing_in_words(status: LedgerStatus, expected: str) -> None:
    assert status.describe() == expected
    assert status.needs_upgrade is (
        status.standing in {Standing.EMPTY, Standing.UNVERSIONED, Standing.BEHIND}
    )


def test_an_upgrade_in_words() -> None:
    unversioned = UpgradeResult(LedgerStatus(None, HEAD, Standing.UNVERSIONED), HEAD)
    assert unversioned.describe() == (
        f"upgraded no revision ({revisions.BASELINE}, the release before migrations) → {HEAD}"
    )
    assert (
        UpgradeResult(LedgerStatus(None, HEAD, Standing.EMPTY), HEAD).describe() == f"upgraded empty → {HEAD}"
    )
    current = UpgradeResult(LedgerStatus(HEAD, HEAD, Standing.CURRENT), HEAD)
    assert current.describe() == f"already at {HEAD} (head): nothing to do"


def test_a_ledger_that_cannot_be_used_is_a_configuration_error() -> None:
    """The command line exits 2 with the message on any ConfigurationError."""
    assert issubclass(LedgerBehind, ConfigurationError)
    assert issubclass(UnknownLedgerSchema, ConfigurationError)
