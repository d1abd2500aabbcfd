"""The fallback template's request, through the adapters that document a template send. Pure.

An adapter that can send a template has ``build_template_request(request, template, settings,
message_id)``; the others cannot (a fallback for their provider is refused at validation, see
:attr:`wadispatch.capabilities.Capabilities.fallback_templates`).
"""

from __future__ import annotations

from wadispatch.errors import ConfigurationError
from wadispatch.messages import SendRequest
from wadispatch.providers.base import ProviderAdapter, ProviderRequest
from wadispatch.settings import Settings
from wadispatch.templates import FallbackTemplate


def build_template_request(
    adapter: ProviderAdapter,
    request: SendRequest,
    template: FallbackTemplate,
    settings: Settings,
    message_id: str,
) -> ProviderRequest:
    """The provider request that sends ``template`` instead of the request's interactive message;
    :class:`ConfigurationError` when the adapter's provider documents no template send."""
    build = getattr(adapter, "build_template_request", None)
    if build is None:
        raise ConfigurationError(f"{adapter.name} documents no template send")
    request_for_template: ProviderRequest = build(request, template, settings, message_id)
    return request_for_template
