"""The one exception type for mistakes a user can cause and fix.

main() prints these as a single line and exits non-zero; anything else is a programming error
and keeps its traceback.
"""
import sys


class UserError(Exception):
    """A problem with the user's input, files or flags. The message names the problem and the fix."""

    exit_code = 1


def run_cli(body):
    """Runs a command's body() and returns its exit status: body's int, or 0 when it returns None.

    A UserError becomes one `error: ...` line on stderr and the error's exit code, which is what
    every command of this project promises for mistakes a user can fix.
    """
    try:
        return body() or 0
    except UserError as e:
        print('error: %s' % e, file=sys.stderr)
        return e.exit_code
