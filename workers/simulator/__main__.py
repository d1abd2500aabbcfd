"""``python -m workers.simulator``: serve the provider simulator in the foreground."""

from workers.simulator.cli import main

if __name__ == "__main__":
    main()
