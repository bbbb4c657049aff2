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
import os
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
# A write that fails for one of these reasons is the user's to fix (space, quota, file size limit).
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
PERMISSION_ERRNOS = (errno.EACCES, errno.EPERM)


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
    a UserError, a Ctrl-C outside the training loop, and the OSErrors of os_error_line (a full disk,
    permissions, a read-only disk, a file where a folder belongs or the other way round).
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
        line = os_error_line(e)
        if line is None:
            raise  # not one of the mistakes below: a bug, whose traceback says where
        print('error: ' + line, file=sys.stderr)
        return 1


def os_error_line(e):
    """The line (without `error: `) for an OSError the user caused and can fix, naming the path and the
    fix; None for any other OSError. A missing file is not in the list: the code checks for the files a
    user must give, so one that vanishes later is a bug or a race worth its traceback."""
    path = e.filename if e.filename is not None else 'a file'
    if e.errno in DISK_ERRNOS:
        return ('cannot write %s (%s); free disk space or fix permissions, or choose another '
                '--logdir/--results, then rerun to resume' % (path, e.strerror))
    if e.errno in PERMISSION_ERRNOS:
        return ('permission denied for %s; fix its permissions (chmod, chown) or choose another path'
                % path)
    if e.errno == errno.EROFS:
        return '%s is on a read-only file system; choose a path on a writable disk' % path
    if e.errno == errno.EEXIST:
        if os.path.exists(path) and not os.path.isdir(path):
            return '%s is a file, not a folder; move it away or choose another path' % path
        return '%s already exists; move it away or choose another path' % path
    if e.errno == errno.ENOTDIR:
        blocker = file_in_the_way(path)
        return ('cannot use %s: %s is a file, not a folder; move that file away or choose another path'
                % (path, blocker or 'a part of it'))
    if e.errno == errno.EISDIR:
        return '%s is a folder, not a file; give a file name' % path
    return None


def file_in_the_way(path):
    """The first leading part of `path` that exists and is not a folder (what makes it unusable), or None."""
    parts = os.path.normpath(str(path)).split(os.sep)
    for k in range(1, len(parts) + 1):
        prefix = os.sep.join(parts[:k]) or os.sep
        if os.path.lexists(prefix) and not os.path.isdir(prefix):
            return prefix
    return None
