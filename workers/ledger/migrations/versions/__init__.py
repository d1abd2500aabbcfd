"""The ledger's revisions, oldest first: each module's ``down_revision`` is the one before."""
