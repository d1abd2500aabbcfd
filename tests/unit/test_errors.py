"""Every error wadispatch raises derives from :class:`WadispatchError`, and the tree drawn in the
docstring of :mod:`wadispatch.errors` is the real one: it names every error, under its real parent,
with its module when that is not :mod:`wadispatch.errors`.

Skipped: :mod:`wadispatch.simulator`, the stand-in for the providers (its errors become a fake
provider's HTTP answers, never something wadispatch raises), and classes whose name starts with
``_``, private control flow that never leaves its module.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from types import ModuleType

import pytest
import wadispatch
from wadispatch import errors
from wadispatch.errors import WadispatchError

#: Packages whose modules are not searched for errors (see the module docstring).
SKIPPED = ("wadispatch.simulator",)
#: Errors that do not derive from the root yet, as ``module.Name``. The check is strict: once one
#: does, its test fails until it is taken off this list.
NOT_YET: set[str] = set()
#: One line of the tree: its indent (four characters a level), then ``├── `` or ``└── ``, the
#: class name, and what follows (a module's dotted name when the class lives elsewhere).
TREE_LINE = re.compile(r"^(?P<indent>(?:│   |    )*)[├└]── (?P<name>\w+)\s+(?P<text>.*)$")


def skipped(name: str) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in SKIPPED)


def modules() -> list[ModuleType]:
    """wadispatch and every module under it (tasks included, however the package is installed)."""
    found: dict[str, ModuleType] = {}

    def walk(package: ModuleType) -> None:
        found[package.__name__] = package
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if info.name in found or skipped(info.name):
                continue
            module = importlib.import_module(info.name)
            if info.ispkg:
                walk(module)
            else:
                found[info.name] = module

    walk(wadispatch)
    walk(importlib.import_module("wadispatch.tasks"))
    return list(found.values())


def defined_errors() -> list[type[BaseException]]:
    """Every public exception class defined (not merely imported) in a searched module."""
    classes = {
        cls
        for module in modules()
        for name, cls in vars(module).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == module.__name__
        and not name.startswith("_")
        and cls is not WadispatchError
    }
    return sorted(classes, key=lambda cls: (cls.__module__, cls.__name__))


def tree() -> dict[str, tuple[str, str]]:
    """The docstring's tree: each listed name → (its parent's name, the rest of its line)."""
    lines = (errors.__doc__ or "").splitlines()
    start = lines.index(WadispatchError.__name__)
    listed: dict[str, tuple[str, str]] = {}
    parents = [WadispatchError.__name__]
    for line in lines[start + 1 :]:
        match = TREE_LINE.match(line)
        if match is None:
            break
        depth = len(match["indent"]) // 4
        del parents[depth + 1 :]
        assert match["name"] not in listed, f"{match['name']} is listed twice"
        listed[match["name"]] = (parents[depth], match["text"])
        parents.append(match["name"])
    return listed


ERRORS = defined_errors()


def qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__name__}"


@pytest.mark.parametrize(
    "cls",
    [
        pytest.param(
            cls,
            id=qualified(cls),
            marks=[pytest.mark.xfail(strict=True, reason="not derived from the root yet")]
            if qualified(cls) in NOT_YET
            else [],
        )
        for cls in ERRORS
    ],
)
def test_every_error_derives_from_the_root_under_its_parent_in_the_tree(cls: type[BaseException]) -> None:
    assert issubclass(cls, WadispatchError), f"{qualified(cls)} does not derive from WadispatchError"
    parent, text = tree()[cls.__name__]
    assert parent in {base.__name__ for base in cls.__bases__}, (
        f"the tree puts {cls.__name__} under {parent}; its bases are {cls.__bases__}"
    )
    if cls.__module__ != errors.__name__:
        assert cls.__module__ in text.split(":")[0].split(), (
            f"the tree's line for {cls.__name__} must name its module, {cls.__module__}"
        )


def test_the_tree_lists_every_error_and_nothing_else() -> None:
    names = [cls.__name__ for cls in ERRORS]
    assert len(names) == len(set(names)), "two errors share a name: the tree cannot tell them apart"
    assert set(tree()) == set(names)


def test_the_search_sees_errors_in_every_part() -> None:
    found = {qualified(cls) for cls in ERRORS}
    for expected in (
        "wadispatch.errors.StaleState",
        "wadispatch.campaigns.errors.UnknownCampaign",
        "wadispatch.api.errors.ApiError",
        "wadispatch.tasks.send.SendDeferred",
    ):
        assert expected in found
    assert not any(skipped(cls.__module__) for cls in ERRORS)


@pytest.mark.parametrize("name", ["MessageValidationError", "MalformedWebhook", "CampaignInputError"])
def test_value_errors_stay_value_errors(name: str) -> None:
    cls = next(cls for cls in ERRORS if cls.__name__ == name)
    assert issubclass(cls, ValueError) and issubclass(cls, WadispatchError)


def test_the_webhook_errors_are_still_importable_where_they_were() -> None:
    from wadispatch.webhooks import MalformedWebhook, SignatureError
    from wadispatch.webhooks.signatures import SignatureError as FromSignatures

    assert SignatureError is FromSignatures is errors.SignatureError
    assert MalformedWebhook is errors.MalformedWebhook
