"""``python -m wadispatch.simulator``: serve the provider simulator in the foreground."""

from wadispatch.simulator.cli import main

if __name__ == "__main__":
    main()
