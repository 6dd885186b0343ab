"""Errors of the harness itself (not of the script under test)."""

# Exit codes of the harness when the script's own status is not available.
EXIT_TIMEOUT = 124
EXIT_HARNESS = 125
EXIT_INTERRUPTED = 130


class HarnessError(Exception):
    """The harness cannot get what the test needs: the run fails with this reason."""
