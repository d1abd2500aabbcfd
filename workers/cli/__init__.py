"""The ``wadispatch`` command, one module per command group.

- :mod:`~wadispatch.cli.root` builds the command from the groups (``app``) and runs it (``main``);
- :mod:`~wadispatch.cli.common` holds what the groups share (consoles, settings, ledger, exits);
- ``messages`` (validate, send, status), ``worker`` (worker, flower), ``demo``, ``simulator``,
  ``api`` (api, api-key), ``recovery`` (reconcile, dead-letters), ``prune``, ``campaigns``
  (campaign, suppress), ``db`` (upgrade, current, history): each exposes ``register(app)``.
"""

from wadispatch.cli.root import app, main

__all__ = ["app", "main"]
