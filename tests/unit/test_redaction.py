from __future__ import annotations

import pytest
from wadispatch.redaction import mask_phone


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+255712345678", "+2557*****678"),
        ("255712345678", "2557*****678"),
        ("+1234567", "********"),
        (None, "-"),
        ("", "-"),
    ],
)
def test_mask_phone(phone: str | None, masked: str) -> None:
    assert mask_phone(phone) == masked


def test_masked_number_does_not_contain_the_middle_digits() -> None:
    assert "71234" not in mask_phone("+255712345678")
