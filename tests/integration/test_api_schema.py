"""Schemathesis over the whole API, in process, on a real ledger publishing to the test Redis:
every operation's requests generated from the OpenAPI schema get an answer the schema documents
(status and body), never a 500; message bodies generated from the schema are accepted (202) and
so reach the send path. SQLite always, PostgreSQL when TEST_DATABASE_URL is set.

Bounded: a few dozen cases per operation and about a minute in all."""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance
from wadispatch.api.app import create_app
from wadispatch.api.auth import create_api_key
from wadispatch.ledger import Ledger
from wadispatch.window import NoWindows

from tests.api_support import WEBHOOK_SECRETS
from tests.support import make_settings

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 40
#: The message body gets more: it is what the schema most needs to get right.
MESSAGE_EXAMPLES = 200
TIME_BUDGET_SECONDS = 35.0
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
SEND = ("POST", "/v1/messages/interactive")
#: The rules JSON Schema cannot state (the schema says them in words): the only reasons a body
#: generated from the schema may be refused.
NOT_IN_SCHEMA = (
    "differs from the Idempotency-Key header",
    "button ids must be unique",
    "button titles must be unique",
    "row ids must be unique across sections",
    "at most 10 rows in total across sections",
    "at most 8192 bytes as JSON",
    # Said in words for metadata (free JSON); a pattern says it for every other text.
    "must not contain the NUL character",
)


@pytest.fixture
def app_and_key(ledger: Ledger, producer_app) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(
        make_settings(api_max_body_bytes=16_384, **WEBHOOK_SECRETS), ledger=ledger, windows=NoWindows()
    )
    _, key = create_api_key(ledger, "schemathesis")
    yield app, key


def test_schemathesis_finds_no_failure_and_schema_valid_messages_are_sent(
    app_and_key: tuple[FastAPI, str],
) -> None:
    app, key = app_and_key
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    started = time.monotonic()
    counts: Counter[str] = Counter()
    statuses: dict[tuple[str, str], Counter[int]] = {}
    failures: list[str] = []
    refusals: Counter[str] = Counter()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10

    for operation in operations:
        name = (operation.method.upper(), operation.path)
        seen = statuses.setdefault(name, Counter())
        budget = MESSAGE_EXAMPLES if name == SEND else MAX_EXAMPLES
        if time.monotonic() - started > TIME_BUDGET_SECONDS:
            counts["operations skipped (time)"] += 1
            continue

        fuzz(operation, name, budget, key, counts, seen, failures, refusals)

    counts["seconds"] = round(time.monotonic() - started)
    print("\nschemathesis:", dict(counts))
    for (method, path), by_status in statuses.items():
        print(f"  {method} {path}: {dict(sorted(by_status.items()))}")
    print("  refused message bodies' rules:", dict(refusals.most_common(30)))
    assert not failures, "\n".join(failures[:10])
    assert counts["message bodies accepted (202, queued for sending)"] > counts["message bodies"] // 2


def fuzz(
    operation: Any,
    name: tuple[str, str],
    budget: int,
    key: str,
    counts: Counter[str],
    seen: Counter[int],
    failures: list[str],
    refusals: Counter[str],
) -> None:
    """Run ``budget`` generated cases of one operation; count answers, collect failures."""

    @given(operation.as_strategy())
    @settings(
        max_examples=budget,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case: Any) -> None:
        counts["cases"] += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                response = case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)
        except Exception as exc:  # collected: one failing case must not hide the others
            failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:600]}")
            return
        seen[response.status_code] += 1
        if name == SEND:
            counts["message bodies"] += 1
            if response.status_code == 202:
                counts["message bodies accepted (202, queued for sending)"] += 1
            elif response.status_code == 422:
                counts["message bodies refused (422)"] += 1
                for error in response.json()["errors"]:
                    refusals[error["rule"].split(" (")[0]] += 1
                    if not error["rule"].startswith(NOT_IN_SCHEMA):
                        failures.append(f"{name}: a schema-valid body refused: {error}")

    run()
