"""User-facing errors. The CLI prints any of these as one line on stderr and exits non-zero (no traceback).

Raise a subclass of ZooError (or ValueError/FileNotFoundError with a self-contained message) for bad input:
the message must say what is wrong and, where it can, how to fix it.
"""


class ZooError(Exception):
    """Base class of the zoo's own user-facing errors."""

    exit_code = 1

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else self.__class__.__name__


class Interrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM. A KeyboardInterrupt (not an Exception), so no `except Exception` in
    between swallows it; the CLI prints its message as one line and exits with 128 + the signal number (130,
    143), as shells report a process killed by that signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum

    def __str__(self) -> str:
        return str(self.args[0])


class Stopped(ZooError):
    """An Interrupted run as the CLI reports it: an Exception, so click does not turn it into a bare 'Aborted!'
    (click catches every KeyboardInterrupt); one line, `exit_code` 130 or 143."""

    def __init__(self, interrupted: Interrupted):
        super().__init__(str(interrupted))
        self.exit_code = interrupted.exit_code
