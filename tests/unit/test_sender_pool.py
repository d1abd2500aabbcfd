"""Sender pools, the pure part: which senders a campaign may take, which sender each recipient gets."""

from __future__ import annotations

import pytest
from wadispatch.campaigns.pool import MAX_POOL_SIZE, assign_senders, check_senders
from wadispatch.errors import MessageValidationError

from tests.support import CAMPAIGN_TEMPLATE

POOL = ("A", "B", "C")


def test_new_recipients_go_round_the_pool_in_order() -> None:
    load = [0, 0, 0]
    assigned = assign_senders([f"+2557{i:08d}" for i in range(7)], {}, POOL, load)
    assert assigned == ["A", "B", "C", "A", "B", "C", "A"]
    assert load == [3, 2, 2]


def test_a_sticky_sender_in_the_pool_is_kept_and_counts_towards_its_load() -> None:
    load = [0, 0, 0]
    sticky = {"+1": "C", "+2": "C", "+3": "C"}
    assigned = assign_senders(["+1", "+2", "+3", "+4", "+5", "+6"], sticky, POOL, load)
    assert assigned == ["C", "C", "C", "A", "B", "A"]
    assert load == [2, 1, 3]


def test_a_sticky_sender_outside_the_pool_is_replaced_by_the_least_loaded() -> None:
    load = [5, 1, 3]
    assert assign_senders(["+1", "+2"], {"+1": "Z", "+2": "B"}, POOL, load) == ["B", "B"]
    assert load == [5, 3, 3]
    assert assign_senders(["+3", "+4"], {}, POOL, load) == ["B", "C"]  # ties: the earlier sender


def test_load_carries_over_from_batch_to_batch() -> None:
    load = [0, 0]
    first = assign_senders(["+1"], {}, ("A", "B"), load)
    second = assign_senders(["+2", "+3"], {}, ("A", "B"), load)
    assert first + second == ["A", "B", "A"]


def test_a_single_sender_stays_a_single_sender_campaign() -> None:
    _, sender, pool = check_senders(CAMPAIGN_TEMPLATE, provider="meta", sender="111", senders=None)
    assert (sender, pool) == ("111", None)
    _, sender, pool = check_senders(CAMPAIGN_TEMPLATE, provider="meta", sender=None, senders=[" 111 "])
    assert (sender, pool) == ("111", None)


def test_a_pool_is_checked_and_stripped() -> None:
    _, sender, pool = check_senders(
        CAMPAIGN_TEMPLATE, provider="meta", sender=None, senders=["1", " 2", "3 "]
    )
    assert (sender, pool) == ("1", ("1", "2", "3"))


def errors_of(template: object = CAMPAIGN_TEMPLATE, **kwargs: object) -> list[tuple[str, str]]:
    with pytest.raises(MessageValidationError) as caught:
        check_senders(template, provider="meta", **kwargs)  # type: ignore[arg-type]
    return [(error.path, error.rule) for error in caught.value.errors]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"sender": "1", "senders": ["2"]}, [("senders", "give sender or senders, not both")]),
        ({"sender": None, "senders": []}, [("senders", "must list at least one sender")]),
        ({"sender": None, "senders": "1,2"}, [("senders", "must be a list of sender handles")]),
        (
            {"sender": None, "senders": [str(i) for i in range(MAX_POOL_SIZE + 1)]},
            [("senders", f"at most {MAX_POOL_SIZE} senders (got {MAX_POOL_SIZE + 1})")],
        ),
        (
            {"sender": None, "senders": ["1", "2", " 1", ""]},
            [("senders[2]", "repeats senders[0] (1)"), ("senders[3]", "must be a non-empty string")],
        ),
    ],
)
def test_bad_pools_name_the_field_and_the_rule(
    kwargs: dict[str, object], expected: list[tuple[str, str]]
) -> None:
    assert errors_of(**kwargs) == expected


def test_each_sender_gets_the_check_a_single_sender_gets() -> None:
    too_long = "9" * 300
    single = errors_of(sender=too_long, senders=None)
    assert [path for path, _ in single] == ["sender"]
    pooled = errors_of(sender=None, senders=["1", too_long])
    assert pooled == [("senders[1]", single[0][1])]


def test_template_errors_are_reported_once_beside_the_senders() -> None:
    template = {**CAMPAIGN_TEMPLATE, "body": {"text": ""}}
    errors = errors_of(sender=None, senders=["1", "2"], template=template)
    assert errors and all(path.startswith("interactive") for path, _ in errors)
    assert len(errors) == len({path for path, _ in errors})
