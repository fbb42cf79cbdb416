"""User-facing errors.

Owns the one exception type that means "the input was wrong": the CLI turns it into a single
line on stderr and exit code 2. Programming errors stay ordinary exceptions (tracebacks).
"""


class ServesimError(ValueError):
    """Bad user input: the message names what was wrong, where, and what is allowed."""
