"""The errors of campaigns as a whole; they appear in :mod:`wadispatch.errors`' tree.

The errors of one part (a file, a row, a phone number) live beside the part that raises them.
"""

from __future__ import annotations

from wadispatch.errors import WadispatchError


class CampaignInputError(WadispatchError, ValueError):
    """A campaign cannot start: nothing was recorded or queued. The message says what to fix."""


class UnknownCampaign(WadispatchError, LookupError):
    """No campaign with this id exists in the ledger."""
