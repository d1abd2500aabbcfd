"""``python -m wadispatch``: the ``wadispatch`` command."""

from wadispatch.cli import main

if __name__ == "__main__":
    main()
