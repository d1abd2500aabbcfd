"""One writer of the record: only ``wadispatch.ledger.writer`` inserts transitions or sets a
message's state or attempts. A static check over every module of the product."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITER = ROOT / "workers" / "ledger" / "writer.py"
STATE_TABLES = {"messages", "transitions"}
WRITE_SQL = re.compile(r"\b(INSERT\s+INTO|UPDATE|COPY)\b", re.IGNORECASE)
RAW_WRITE = re.compile(r"\b(INSERT\s+INTO|UPDATE)\s+(messages|transitions)\b", re.IGNORECASE)


def _names_table(node: ast.AST) -> str | None:
    """``messages`` / ``transitions`` when the expression is that table (or its ``.name``)."""
    if isinstance(node, ast.Attribute) and node.attr in ("name", "c"):
        node = node.value
    if isinstance(node, ast.Name) and node.id in STATE_TABLES:
        return node.id
    if isinstance(node, ast.Attribute) and node.attr in STATE_TABLES:
        return node.attr
    return None


def state_writes(source: str) -> list[str]:
    """Where this source writes message states or transitions outside the writer: ``line: what``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call):
            func = node.func
            name = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if name == "insert" and node.args and _names_table(node.args[0]):
                found.append(f"{node.lineno}: insert({_names_table(node.args[0])})")
            if name == "values" and any(kw.arg in ("state", "attempts") for kw in node.keywords):
                found.append(f"{node.lineno}: .values(state=/attempts=)")
        elif isinstance(node, ast.JoinedStr):
            text = "".join(part.value for part in node.values if isinstance(part, ast.Constant))
            tables = {
                _names_table(part.value) for part in node.values if isinstance(part, ast.FormattedValue)
            }
            if WRITE_SQL.search(text) and tables & STATE_TABLES:
                found.append(f"{node.lineno}: SQL writing {sorted(tables & STATE_TABLES)}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_WRITE.search(node.value):
            found.append(f"{node.lineno}: SQL text writing messages or transitions")
    return found


def product_sources() -> list[Path]:
    return sorted([*(ROOT / "workers").rglob("*.py"), *(ROOT / "tasks").rglob("*.py")])


def test_only_the_ledger_writer_writes_states_and_transitions() -> None:
    offenders = {
        str(path.relative_to(ROOT)): writes
        for path in product_sources()
        if path != WRITER and (writes := state_writes(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}


def test_the_check_sees_the_writer_itself() -> None:
    writes = state_writes(WRITER.read_text(encoding="utf-8"))
    assert any("insert(messages)" in write for write in writes)
    assert any("insert(transitions)" in write for write in writes)
    assert any("SQL writing" in write for write in writes)


def test_the_check_catches_each_way_of_writing_a_state() -> None:
    samples = {
        "conn.execute(insert(transitions), rows)": "insert(transitions)",
        "conn.execute(insert(ledger.messages).values(id=1))": "insert(messages)",
        "update(messages).where(messages.c.id == 1).values(state='sent')": ".values(state=",
        "update(messages).values(attempts=messages.c.attempts + 1)": ".values(state=",
        "cursor.execute(f'INSERT INTO {transitions.name} (message_id) VALUES (?)')": "SQL writing",
        "cursor.execute(f'UPDATE {messages.name} SET state = ?')": "SQL writing",
        "conn.execute(text('update messages set state = 1'))": "SQL text",
    }
    for source, expected in samples.items():
        assert any(expected in write for write in state_writes(source)), source
    assert state_writes("update(messages).values(reply_id='b1')") == []
    assert state_writes("select(transitions).where(transitions.c.message_id == 'x')") == []
    # Deleting history is not writing a state: the prune deletes the transitions of settled
    # messages (wadispatch.ledger.pruning) and leaves every message's state as it is.
    assert state_writes("delete(transitions).where(transitions.c.id.in_(batch))") == []
