"""Provider adapters: one module per provider, all keeping :class:`ProviderAdapter`."""

from __future__ import annotations

from wadispatch.providers.base import (
    Outcome,
    ProviderAdapter,
    ProviderAnswer,
    ProviderRequest,
    parse_retry_after,
)
from wadispatch.providers.bird import BirdAdapter
from wadispatch.providers.briq import BriqAdapter
from wadispatch.providers.meta import MetaAdapter
from wadispatch.providers.wacr import WacrAdapter
from wadispatch.providers.zixflow import ZixflowAdapter
from wadispatch.settings import ProviderName

ADAPTERS: dict[ProviderName, ProviderAdapter] = {
    "briq": BriqAdapter(),
    "bird": BirdAdapter(),
    "zixflow": ZixflowAdapter(),
    "wacr": WacrAdapter(),
    "meta": MetaAdapter(),
}


def adapter_for(name: ProviderName) -> ProviderAdapter:
    """The adapter registered under a provider name."""
    return ADAPTERS[name]


__all__ = [
    "ADAPTERS",
    "Outcome",
    "ProviderAdapter",
    "ProviderAnswer",
    "ProviderRequest",
    "adapter_for",
    "parse_retry_after",
]
