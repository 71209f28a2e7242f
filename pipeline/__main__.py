"""``python -m pipeline`` is the ``pipeline`` command."""

from .cli import main

main()
