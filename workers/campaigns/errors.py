"""The errors of campaigns (beside :mod:`wadispatch.errors`, whose tree they extend).

WadispatchError
├── CampaignInputError   the file, its columns, the region or the provider cannot be used
└── UnknownCampaign      no campaign with that id in the ledger
"""

from __future__ import annotations

from wadispatch.errors import WadispatchError


class CampaignInputError(WadispatchError, ValueError):
    """A campaign cannot start: nothing was recorded or queued. The message says what to fix."""


class UnknownCampaign(WadispatchError, LookupError):
    """No campaign with this id exists in the ledger."""
