"""Alembic's environment for the ledger: migrations run on the connection wadispatch hands over.

:mod:`wadispatch.ledger.revisions` opens the connection (and its transaction, holding the lock that
keeps two processes from upgrading at once) and puts it in ``config.attributes["connection"]``.
"""

from alembic import context
from wadispatch.errors import ConfigurationError
from wadispatch.ledger.schema import metadata


def run_migrations() -> None:
    """Run what alembic was asked for (upgrade, stamp) on the connection wadispatch handed over."""
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise ConfigurationError("the ledger's migrations run through `wadispatch db upgrade`, not `alembic`")
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


# alembic runs this file by its path, under a name of its own; imported as a module of the package
# (a scan of every module), it does nothing.
if not __name__.startswith("wadispatch."):
    run_migrations()
