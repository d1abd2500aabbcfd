"""The ledger package: its public names stay what they say once every module is loaded."""

from __future__ import annotations

import importlib
import pkgutil

import wadispatch.ledger as ledger_package
from sqlalchemy import Table
from wadispatch.ledger import schema


def test_every_table_the_package_exports_is_the_table_even_after_all_its_modules_load() -> None:
    # A submodule named like a table would replace that table on the package once imported.
    for module in pkgutil.iter_modules(ledger_package.__path__):
        importlib.import_module(f"wadispatch.ledger.{module.name}")
    tables = {name: value for name, value in vars(schema).items() if isinstance(value, Table)}
    assert {"messages", "transitions", "webhook_events", "api_keys", "dead_letters"} <= set(tables)
    for name, table in tables.items():
        if name in ledger_package.__all__:
            assert getattr(ledger_package, name) is table, name


def test_every_table_is_declared_in_the_schema_module() -> None:
    assert set(schema.metadata.tables) == {
        table.name for table in vars(schema).values() if isinstance(table, Table)
    }
