"""``python -m wadispatch.cli``: the ``wadispatch`` command."""

from wadispatch.cli.root import main

if __name__ == "__main__":
    main()
