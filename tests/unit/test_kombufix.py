"""The guard on kombu's Redis transport: an ack on a collected connection is a connection error."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import redis.exceptions
from kombu.transport import redis as redis_transport
from wadispatch import kombufix


def orphaned_channel() -> redis_transport.Channel:
    """A channel as a lost connection leaves it: its transport's client dropped, its pools gone."""
    channel = object.__new__(redis_transport.Channel)
    channel.connection = SimpleNamespace(client=None, default_port=6379)
    channel._pool = channel._async_pool = None
    return channel


def test_the_guard_is_installed_by_the_app_and_only_once() -> None:
    import wadispatch.celery  # noqa: F401  (installs it)

    guarded = redis_transport.Channel._connparams
    assert getattr(guarded, "wadispatch_guard", False)
    assert kombufix.install()
    assert redis_transport.Channel._connparams is guarded


def test_an_orphaned_channel_raises_a_connection_error_kombu_knows() -> None:
    kombufix.install()
    channel = orphaned_channel()
    # Unguarded, this is AttributeError: 'NoneType' object has no attribute 'hostname'.
    original = redis_transport.Channel._connparams.__wrapped__
    with pytest.raises(AttributeError, match="hostname"):
        original(channel)
    with pytest.raises(redis.exceptions.ConnectionError) as caught:
        channel.pool  # noqa: B018  (what an ack reaches through conn_or_acquire)
    assert isinstance(caught.value, redis_transport.Transport.connection_errors)
