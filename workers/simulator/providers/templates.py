"""A minimal check of Meta's template send (``type: "template"``), as the simulator applies it.

Like :mod:`.interactive`, hand-written and independent of the project's own model: the name, the
language code, and the components (``body`` text parameters, ``quick_reply`` buttons with a
payload each). The quick-reply payloads are the choices a simulated user may tap.
"""

from __future__ import annotations

import re
from typing import Any

from wadispatch.simulator.providers.base import Choice, InvalidRequest, require_object, require_string

_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")


def check_template(value: Any, path: str = "template") -> tuple[Choice, ...]:
    """Check a template object; return its quick-reply buttons as choices (payload as id and title)."""
    template = require_object(value, path)
    name = require_string(template, "name", f"{path}.name")
    if not _NAME.fullmatch(name or ""):
        raise InvalidRequest(f"{path}.name", "must be lowercase letters, digits and _")
    language = require_object(template.get("language"), f"{path}.language")
    if not _LANGUAGE.fullmatch(require_string(language, "code", f"{path}.language.code") or ""):
        raise InvalidRequest(f"{path}.language.code", "must be a language code such as en_US")
    components = template.get("components", [])
    if not isinstance(components, list):
        raise InvalidRequest(f"{path}.components", "must be a list")
    choices: list[Choice] = []
    for index, item in enumerate(components):
        where = f"{path}.components[{index}]"
        component = require_object(item, where)
        kind = component.get("type")
        parameters = component.get("parameters", [])
        if not isinstance(parameters, list):
            raise InvalidRequest(f"{where}.parameters", "must be a list")
        if kind == "body":
            for number, parameter in enumerate(parameters):
                entry = require_object(parameter, f"{where}.parameters[{number}]")
                if entry.get("type") != "text":
                    raise InvalidRequest(f"{where}.parameters[{number}].type", "must be text")
                require_string(entry, "text", f"{where}.parameters[{number}].text", max_length=32768)
        elif kind == "button":
            if component.get("sub_type") != "quick_reply":
                raise InvalidRequest(f"{where}.sub_type", "must be quick_reply")
            if not isinstance(component.get("index"), str) or not component["index"].isdigit():
                raise InvalidRequest(f"{where}.index", "must be the button's position as a string")
            if len(parameters) != 1:
                raise InvalidRequest(f"{where}.parameters", "must hold one payload")
            entry = require_object(parameters[0], f"{where}.parameters[0]")
            payload = require_string(entry, "payload", f"{where}.parameters[0].payload") or ""
            choices.append(Choice(payload, payload))
        elif kind != "header":
            raise InvalidRequest(f"{where}.type", "must be header, body or button")
    return tuple(choices)
