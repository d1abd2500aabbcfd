"""A campaign's fallback template: its texts filled from each row like the interactive template. Pure.

The body parameters and quick-reply payloads may carry ``{column}`` placeholders, parsed as the
interactive template's are (:func:`wadispatch.campaigns.template.parse_text`). The template is
checked once when the campaign is created, with one stand-in character per placeholder (the same
for the interactive template, so a payload ``{code}`` matches a button id ``{code}``); each row's
filled template is checked again, its payloads against that row's reply ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from wadispatch.campaigns.template import Part, RowError, Template, parse_text
from wadispatch.errors import FieldError, MessageValidationError
from wadispatch.settings import ProviderName
from wadispatch.templates import FallbackTemplate, fallback_field_errors, template_errors

_FILLED = ("body_parameters", "quick_replies")


class CampaignFallback:
    """A checked fallback template, ready to be filled for each recipient."""

    def __init__(self, template: dict[str, Any], parts: dict[str, list[list[Part]]], provider: ProviderName):
        self.template = template
        self._parts = parts
        self._provider = provider
        self.columns = frozenset(
            part[0] for texts in parts.values() for text in texts for part in text if isinstance(part, tuple)
        )
        self._fixed: str | None = None

    @classmethod
    def parse(cls, template: Any, interactive: Template, *, provider: ProviderName) -> CampaignFallback:
        """Check a campaign's fallback; :class:`MessageValidationError` naming every broken rule."""
        if not isinstance(template, dict):
            raise MessageValidationError([FieldError("fallback", "must be an object")])
        errors: list[FieldError] = []
        parts: dict[str, list[list[Part]]] = {}
        for key in _FILLED:
            texts = template.get(key, [])
            if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
                continue  # the model names this error below
            parts[key] = []
            for index, text in enumerate(texts):
                try:
                    parts[key].append(parse_text(text))
                except ValueError as exc:
                    errors.append(FieldError(f"fallback.{key}[{index}]", str(exc)))
        if errors:
            raise MessageValidationError(errors)
        checked = cls(template, parts, provider)
        columns = sorted(checked.columns | interactive.columns)
        sample = {column: chr(0xE000 + index) for index, column in enumerate(columns)}
        filled_interactive = interactive.filled([slot.fill(sample) for slot in interactive.slots])
        try:
            model = FallbackTemplate.model_validate(checked._filled(sample))
        except ValidationError as exc:
            raise MessageValidationError(fallback_field_errors(exc)) from None
        errors = template_errors(model, provider=provider, reply_ids=reply_ids(filled_interactive))
        if errors:
            raise MessageValidationError(errors)
        if not checked.columns and not _ids_vary(interactive):
            checked._fixed = model.model_dump_json()
        return checked

    def text(self, row: Mapping[str, str], interactive: dict[str, Any] | None) -> str:
        """The row's fallback as JSON text (``messages.fallback``); :class:`RowError` when a filled
        text breaks a rule. ``interactive``: the row's filled interactive object (its reply ids)."""
        if self._fixed is not None:
            return self._fixed
        try:
            model = FallbackTemplate.model_validate(self._filled(row))
        except ValidationError as exc:
            raise RowError(f"{fallback_field_errors(exc)[0]} once filled") from None
        errors = template_errors(model, provider=self._provider, reply_ids=reply_ids(interactive or {}))
        if errors:
            raise RowError(f"{errors[0]} once filled")
        return model.model_dump_json()

    @property
    def needs_interactive(self) -> bool:
        """Whether :meth:`text` needs the row's filled interactive object."""
        return self._fixed is None

    def _filled(self, row: Mapping[str, str]) -> dict[str, Any]:
        filled = dict(self.template)
        for key, texts in self._parts.items():
            filled[key] = ["".join(p if isinstance(p, str) else row[p[0]] for p in text) for text in texts]
        return filled


def reply_ids(interactive: Mapping[str, Any]) -> list[str]:
    """The reply ids of an interactive object as JSON: its buttons' or its list rows'."""
    action = interactive.get("action") or {}
    buttons = action.get("buttons") or []
    if buttons:
        return [str((button.get("reply") or {}).get("id")) for button in buttons]
    return [
        str(row.get("id")) for section in action.get("sections") or [] for row in section.get("rows") or []
    ]


def _ids_vary(interactive: Template) -> bool:
    return any(slot.is_id for slot in interactive.slots)
