"""Campaign templates: an interactive object whose texts carry ``{column}`` placeholders. Pure.

A template is checked once, in full, by the project's own validator (:mod:`wadispatch.messages`),
with every placeholder standing in as one character. Per recipient only the texts that carry a
placeholder are filled and checked again, against the same limits (:mod:`wadispatch.rules`): a
filled button title can be longer than 20 characters even when the template's is not.

Placeholders: ``{first_name}`` is replaced by the row's ``first_name`` value; ``{{`` and ``}}``
stand for literal braces. They are allowed in the body, footer and text header, button ids and
titles, the list's button label, section titles and row ids, titles and descriptions; anywhere
else (a media link, a type) is an error.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from wadispatch import rules
from wadispatch.errors import FieldError, MessageValidationError, WadispatchError
from wadispatch.messages import validate_send_request

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_COLUMN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SAMPLE_RECIPIENT = "+255712345678"

#: (path pattern, limit): the texts a placeholder may appear in, with WhatsApp's limits.
_LIMITS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(pattern), limit)
    for pattern, limit in (
        (r"body\.text", rules.BODY_MAX),
        (r"footer\.text", rules.FOOTER_MAX),
        (r"header\.text", rules.HEADER_TEXT_MAX),
        (r"action\.buttons\[\d+\]\.reply\.id", rules.BUTTON_ID_MAX),
        (r"action\.buttons\[\d+\]\.reply\.title", rules.BUTTON_TITLE_MAX),
        (r"action\.button", rules.LIST_BUTTON_MAX),
        (r"action\.sections\[\d+\]\.title", rules.SECTION_TITLE_MAX),
        (r"action\.sections\[\d+\]\.rows\[\d+\]\.id", rules.ROW_ID_MAX),
        (r"action\.sections\[\d+\]\.rows\[\d+\]\.title", rules.ROW_TITLE_MAX),
        (r"action\.sections\[\d+\]\.rows\[\d+\]\.description", rules.ROW_DESCRIPTION_MAX),
    )
)
#: Texts that must differ from their siblings once filled: (path pattern, the rule's words).
_UNIQUE = (
    (re.compile(r"action\.buttons\[\d+\]\.reply\.id"), "button ids must be unique"),
    (re.compile(r"action\.buttons\[\d+\]\.reply\.title"), "button titles must be unique"),
    (re.compile(r"action\.sections\[\d+\]\.rows\[\d+\]\.id"), "row ids must be unique across sections"),
)

_ID = re.compile(r"action\.buttons\[\d+\]\.reply\.id|action\.sections\[\d+\]\.rows\[\d+\]\.id")

Part = str | tuple[str]
"""A literal piece of text, or ``(column,)``: the value of that column."""


@dataclass(frozen=True)
class Slot:
    """One text of the template that carries a placeholder."""

    path: str
    """Where it sits, as the validator names it, e.g. ``interactive.action.buttons[0].reply.title``."""
    keys: tuple[str | int, ...]
    parts: tuple[Part, ...]
    limit: int
    unique: str | None
    """The uniqueness rule of its kind of text, when there is one."""
    is_id: bool = False
    """A button or row id: WhatsApp's rules on ids apply once filled (no surrounding spaces)."""

    def fill(self, row: Mapping[str, str]) -> str:
        return "".join(part if isinstance(part, str) else row[part[0]] for part in self.parts)


class Template:
    """A checked template, ready to be filled for each recipient."""

    def __init__(self, interactive: dict[str, Any], slots: tuple[Slot, ...], uniques: dict[str, list[str]]):
        self.interactive = interactive
        self.slots = slots
        self.columns = frozenset(part[0] for slot in slots for part in slot.parts if isinstance(part, tuple))
        self._uniques = uniques
        """Per uniqueness rule, every path of that kind (with or without a placeholder)."""
        self._texts = {"interactive" + _format(keys): text for keys, text in _strings(interactive)}
        # What filling needs per row, worked out once: each slot as a format string, and each
        # uniqueness rule's texts as (path, the slot's index or None, the fixed text).
        self._formats = tuple(_format_string(slot.parts) for slot in slots)
        index = {slot.path: position for position, slot in enumerate(slots)}
        self._unique_texts = tuple(
            (rule, tuple((path, index.get(path), self._texts[path]) for path in paths))
            for rule, paths in uniques.items()
        )

    @classmethod
    def parse(cls, interactive: Any, *, provider: str, sender: str | None) -> Template:
        """Check a template; raise :class:`MessageValidationError` naming every broken rule.

        The template is checked as the message it would be with one character per placeholder:
        structure, WhatsApp's limits on the fixed text, and the provider's capabilities.
        """
        if not isinstance(interactive, dict):
            raise MessageValidationError([FieldError("interactive", "must be an object")])
        errors: list[FieldError] = []
        slots: list[Slot] = []
        all_texts: list[tuple[str, tuple[str | int, ...]]] = []
        for keys, text in _strings(interactive):
            path = "interactive" + _format(keys)
            all_texts.append((path, keys))
            try:
                parts = parse_text(text)
            except ValueError as exc:
                errors.append(FieldError(path, str(exc)))
                continue
            if all(isinstance(part, str) for part in parts):
                continue
            limit = _limit(path)
            if limit is None:
                errors.append(FieldError(path, "placeholders are allowed only in texts and ids"))
                continue
            slots.append(Slot(path, keys, tuple(parts), limit, _unique_rule(path), _is_id(path)))
        if errors:
            raise MessageValidationError(errors)
        sample = copy.deepcopy(interactive)
        columns = sorted({part[0] for slot in slots for part in slot.parts if isinstance(part, tuple)})
        stand_ins = {column: chr(0xE000 + index) for index, column in enumerate(columns)}
        for slot in slots:
            _set(sample, slot.keys, slot.fill(stand_ins))
        request = {"provider": provider, "sender": sender, "to": _SAMPLE_RECIPIENT, "interactive": sample}
        validate_send_request({key: value for key, value in request.items() if value is not None})
        uniques: dict[str, list[str]] = {}
        for slot in slots:
            if slot.unique is not None and slot.unique not in uniques:
                pattern = next(pattern for pattern, rule in _UNIQUE if rule == slot.unique)
                uniques[slot.unique] = [
                    path for path, _ in all_texts if pattern.fullmatch(path.removeprefix("interactive."))
                ]
        return cls(interactive, tuple(slots), uniques)

    def fill(self, row: Mapping[str, str]) -> dict[str, Any]:
        """The interactive object for one recipient; :class:`RowError` when a filled text breaks a rule.

        ``row`` must hold every column of :attr:`columns`.
        """
        if not self.slots:
            return self.interactive
        return self.filled(self.texts(row))

    def texts(self, row: Mapping[str, str]) -> list[str]:
        """The texts of :attr:`slots` filled from ``row``, in their order, each checked as
        :meth:`fill` checks it (the same :class:`RowError`).

        ``row`` must hold every column of :attr:`columns`, as strings.
        """
        texts = [text.format_map(row) for text in self._formats]
        for slot, text in zip(self.slots, texts, strict=True):
            if not text.strip():
                raise RowError(f"{slot.path}: must not be empty once filled")
            if len(text) > slot.limit:
                raise RowError(f"{slot.path}: at most {slot.limit} characters once filled (has {len(text)})")
            rule = rules.id_rule(text) if slot.is_id else None
            if rule is not None:
                raise RowError(f"{slot.path}: {rule} once filled")
        for slot, text in zip(self.slots, texts, strict=True):
            if "\x00" in text:
                raise RowError(f"{slot.path}: must not contain the NUL character (U+0000) once filled")
        for rule, members in self._unique_texts:
            seen: dict[str, str] = {}
            for path, position, fixed in members:
                value = fixed if position is None else texts[position]
                if value in seen:
                    raise RowError(f"{path}: {rule} once filled (same as {seen[value]})")
                seen[value] = path
        return texts

    def filled(self, texts: list[str]) -> dict[str, Any]:
        """The interactive object with these texts in its :attr:`slots` (unchecked)."""
        return _replaced(
            self.interactive, [(slot.keys, text) for slot, text in zip(self.slots, texts, strict=True)]
        )


class RowError(WadispatchError, ValueError):
    """One recipient row cannot be sent; the message says why (the row number is the caller's)."""


def parse_text(text: str) -> list[Part]:
    """``"Hi {name}!"`` → ``["Hi ", ("name",), "!"]``; ``{{`` and ``}}`` are literal braces."""
    parts: list[Part] = []
    literal = ""
    position = 0
    for match in _TOKEN.finditer(text):
        literal += text[position : match.start()]
        position = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            literal += token[0]
            continue
        column = match.group(1)
        if column is None or not _COLUMN.fullmatch(column):
            raise ValueError(
                f"bad placeholder {token!r}: write {{column}} with a column name of letters, digits "
                "and _, or {{ and }} for literal braces"
            )
        if literal:
            parts.append(literal)
            literal = ""
        parts.append((column,))
    literal += text[position:]
    if literal:
        parts.append(literal)
    return parts


def _format_string(parts: tuple[Part, ...]) -> str:
    """``("Hi ", ("name",), " {x}")`` → ``"Hi {name} {{x}}"``: ``str.format_map`` fills it from a row
    as ``Slot.fill`` does (column names are identifiers: no attribute or index lookups)."""
    return "".join(
        part.replace("{", "{{").replace("}", "}}") if isinstance(part, str) else f"{{{part[0]}}}"
        for part in parts
    )


def _strings(value: Any, keys: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield keys, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*keys, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*keys, index))


def _format(keys: tuple[str | int, ...]) -> str:
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in keys)


def _set(target: Any, keys: tuple[str | int, ...], value: str) -> None:
    for key in keys[:-1]:
        target = target[key]
    target[keys[-1]] = value


def _replaced(root: dict[str, Any], changes: list[tuple[tuple[str | int, ...], str]]) -> dict[str, Any]:
    """A copy of ``root`` with these values set, copying only the containers on their way."""
    result = dict(root)
    copies: dict[tuple[str | int, ...], Any] = {(): result}
    for keys, value in changes:
        node: Any = result
        for depth in range(1, len(keys)):
            prefix = keys[:depth]
            child = copies.get(prefix)
            if child is None:
                original = node[keys[depth - 1]]
                child = copies[prefix] = list(original) if isinstance(original, list) else dict(original)
                node[keys[depth - 1]] = child
            node = child
        node[keys[-1]] = value
    return result


def _limit(path: str) -> int | None:
    relative = path.removeprefix("interactive.")
    return next((limit for pattern, limit in _LIMITS if pattern.fullmatch(relative)), None)


def _is_id(path: str) -> bool:
    return _ID.fullmatch(path.removeprefix("interactive.")) is not None


def _unique_rule(path: str) -> str | None:
    relative = path.removeprefix("interactive.")
    return next((rule for pattern, rule in _UNIQUE if pattern.fullmatch(relative)), None)
