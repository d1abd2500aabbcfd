"""wadispatch: a provider-neutral queue for WhatsApp interactive messages."""
