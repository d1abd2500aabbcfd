"""The five simulated providers, one dialect module each (see :mod:`.base` for the contract)."""

from __future__ import annotations

from wadispatch.settings import ProviderName
from wadispatch.simulator.providers.base import Dialect
from wadispatch.simulator.providers.bird import Bird
from wadispatch.simulator.providers.briq import Briq
from wadispatch.simulator.providers.meta import Meta
from wadispatch.simulator.providers.wacr import WaCr
from wadispatch.simulator.providers.zixflow import Zixflow


def make_dialects() -> dict[ProviderName, Dialect]:
    """A fresh dialect per provider (Briq and WA.cr keep a little state of their own)."""
    return {"briq": Briq(), "bird": Bird(), "zixflow": Zixflow(), "wacr": WaCr(), "meta": Meta()}


__all__ = ["Bird", "Briq", "Dialect", "Meta", "WaCr", "Zixflow", "make_dialects"]
