"""``python -m nbaprops.cli``: the ``nbaprops`` console script."""

from nbaprops.cli.app import main

main()
