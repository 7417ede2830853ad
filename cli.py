"""The repository's `python cli.py ...` and `import cli`: the command line lives in zoo/cli.py (the installed
`zoo` command is its `main`); this file only re-exports it, and is not part of the wheel."""

import sys

from zoo.cli import *  # noqa: F401,F403
from zoo.cli import cli, main, one_line  # noqa: F401

if __name__ == "__main__":
    sys.exit(main())
