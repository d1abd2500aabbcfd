"""Masking of personal data for logs and task arguments. Pure."""

from __future__ import annotations

from wadispatch.recipients import looks_like_bsuid


def mask_recipient(recipient: str | None) -> str:
    """A phone number or a BSUID masked for logs: enough to tell recipients apart, not to reach one.

    ``+255712345678`` → ``+2557*****678``; ``US.13491208655302741918`` → ``US.*****************918``
    (the country code, and ``ENT.`` of a parent BSUID, are kept).
    """
    if recipient and looks_like_bsuid(recipient):
        head, _, rest = recipient.strip().partition(".")
        if rest.startswith("ENT."):
            head, rest = head + ".ENT", rest[4:]
        keep_tail = 3 if len(rest) > 6 else 0
        return f"{head}." + "*" * (len(rest) - keep_tail) + rest[len(rest) - keep_tail :]
    return mask_phone(recipient)


def mask_phone(phone: str | None) -> str:
    """``+255712345678`` → ``+2557*****678``: enough to tell numbers apart, not to dial one.

    A BSUID is masked as :func:`mask_recipient` masks it (callers log whatever ``to`` holds).
    """
    if not phone:
        return "-"
    if looks_like_bsuid(phone):
        return mask_recipient(phone)
    keep_head = 5 if phone.startswith("+") else 4
    if len(phone) <= keep_head + 3:
        return "*" * len(phone)
    return phone[:keep_head] + "*" * (len(phone) - keep_head - 3) + phone[-3:]


REDACTED = "[redacted]"


def scrub_secrets(text: str | None, secrets: list[str]) -> str | None:
    """``text`` with every occurrence of these secrets replaced (a provider may echo a key back)."""
    if not text:
        return text
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text
