"""The one exception type for mistakes a user can cause and fix.

main() prints these as a single line and exits non-zero; anything else is a programming error
and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, files or flags. The message names the problem and the fix."""

    exit_code = 1
