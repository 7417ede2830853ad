"""User-facing errors. The CLI prints any of these as one line on stderr and exits non-zero (no traceback).

Raise a subclass of ZooError (or ValueError/FileNotFoundError with a self-contained message) for bad input:
the message must say what is wrong and, where it can, how to fix it.
"""


class ZooError(Exception):
    """Base class of the zoo's own user-facing errors."""

    exit_code = 1

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__
