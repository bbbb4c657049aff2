"""Mistakes a user can cause and fix, and the one table of exit codes every command uses.

A UserError is printed as a single `error: ...` line and the process exits with its code; anything
else is a programming error and keeps its traceback.

    code  meaning
    0     done
    1     a problem with data, files, checkpoints or the disk (the line names the fix)
    2     a bad flag or argument
    3     the numbers went bad: a NaN/Inf loss, or NaN/Inf weights refused at a save
    4     the logdir or results folder is in use by another run
    5     a distributed run lost a peer (dist_version): restart the cluster to resume
    75    --time_limit reached: checkpoint saved; run the same command to continue
    130   interrupted (Ctrl-C or SIGTERM): checkpoint saved unless a second signal said "now"
"""
import errno
import sys

EXIT_CODES = {
    0: 'done',
    1: 'a problem with data, files, checkpoints or the disk',
    2: 'a bad flag or argument',
    3: 'a NaN/Inf loss or NaN/Inf weights',
    4: 'the logdir or results folder is in use by another run',
    5: 'a distributed run lost a peer',
    75: 'time limit reached; checkpoint saved',
    130: 'interrupted; checkpoint saved unless stopped at once',
}
# A write that fails for one of these reasons is the user's to fix (space, permissions), not a bug.
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM, errno.EROFS)


class UserError(Exception):
    """A problem with the user's input, files or flags. The message names the problem and the fix."""

    exit_code = 1
    prefix = 'error: '  # how run_cli starts the line


class ConfigError(UserError):
    exit_code = 2


class NonFiniteLoss(UserError):
    exit_code = 3


class FolderInUse(UserError):
    exit_code = 4


class PeerLost(UserError):
    exit_code = 5


class TimeLimitReached(UserError):
    """A planned stop, not a mistake: the line carries no `error:` (a scheduler's log reads it as done)."""
    exit_code = 75
    prefix = ''


class TrainingInterrupted(UserError):
    exit_code = 130


def warn(message):
    """A note or warning for the user: one line on stderr, the run goes on."""
    print(message, file=sys.stderr)


def run_cli(body):
    """Runs a command's body() and returns its exit status: body's int, or 0 when it returns None.

    Every command promises one `error: ...` line and a code of EXIT_CODES for what a user can fix:
    a UserError, a Ctrl-C outside the training loop, and a write refused by the disk or permissions.
    """
    try:
        return body() or 0
    except UserError as e:
        print(e.prefix + str(e), file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        # Outside the training loop (loading data, building the graph): nothing new to save.
        print('error: interrupted before training started; no checkpoint was needed', file=sys.stderr)
        return TrainingInterrupted.exit_code
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            raise
        print('error: cannot write %s (%s); free disk space or fix permissions, or choose another '
              '--logdir/--results, then rerun to resume' % (e.filename or 'a file', e.strerror), file=sys.stderr)
        return 1
