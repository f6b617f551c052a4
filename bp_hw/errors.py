"""The one exception type a user can cause.

Anything raised as :class:`BpHwError` is a problem with the user's input or
environment (a missing file, an impossible format, a network too large for a
board). The CLI prints its message on one line and exits with status 2; the
message must say what to change.
"""


class BpHwError(Exception):
    """A user-facing error: one line, exit status 2, no traceback."""
