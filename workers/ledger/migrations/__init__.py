"""Alembic's scripts for the ledger: ``env.py`` and one module a revision in ``versions/``.

They are run by :mod:`wadispatch.ledger.revisions` (and so by ``wadispatch db``) through alembic's
command API, with :data:`SCRIPT_LOCATION` as the script location: no ``alembic.ini`` is needed.
A schema change is a new module in ``versions/``, written by hand like the last one (its
``down_revision`` the last one's ``revision``), next to the change in :mod:`wadispatch.ledger.schema`;
the tests compare the upgraded schema with that module's tables.
"""

from pathlib import Path

#: Where alembic finds ``env.py`` and ``versions/``, wherever the package is installed.
SCRIPT_LOCATION = Path(__file__).resolve().parent
