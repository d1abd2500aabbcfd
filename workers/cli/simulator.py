"""``wadispatch simulator``: the provider simulator, whose command lives in :mod:`wadispatch.simulator.cli`.

That module also runs alone (``python -m wadispatch.simulator``), so it knows nothing of this
package; this module only adds its command to the ``wadispatch`` command.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``simulator`` to the ``wadispatch`` command."""
    from wadispatch.simulator.cli import simulator_command

    app.command("simulator", help="Run the provider simulator: all five provider APIs on one local server.")(
        simulator_command
    )
