"""One training run per folder: a lock file in the folder that names the run holding it.

Two runs writing the same logdir would overwrite each other's checkpoints and interleave their CSV
rows, so the second one refuses to start. The lock is an flock(2) on `<folder>/run.lock`: the
kernel drops it when its process ends, however it ends (SIGKILL and reboots included), so a lock
left behind by a dead run never blocks the next one. The file also holds the owner's pid, host and
start time, for the error message. On a file system without flock support (some network mounts) the
pid is checked instead: a lock whose process no longer exists on this host is taken over.

The file is never deleted, only emptied on release: deleting it would let a third run lock a fresh
file while a second one still holds the old, unlinked one.
"""
import errno
import fcntl
import os
import socket
import time

from runtime import files
from runtime.errors import FolderInUse

LOCK_NAME = 'run.lock'


class RunLock:
    """Context manager holding the lock of `folder`; `flag` names the option the user can change."""

    def __init__(self, folder, flag='--logdir'):
        self.folder = folder
        self.flag = flag
        self.path = os.path.join(folder, LOCK_NAME)
        self._fd = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc_info):
        self.release()

    def acquire(self):
        os.makedirs(self.folder, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            state = _try_flock(fd)
            if state == 'held' or (state == 'unsupported' and _recorded_owner_alive(_read(fd))):
                hint = '' if state == 'held' else ' (if that run is gone, delete %s)' % self.path
                raise FolderInUse('%s is in use by another run (%s); wait for it to end, stop it, or choose '
                                  'another %s%s' % (self.folder, _read(fd) or 'owner unknown', self.flag, hint))
            with files.naming_the_file(self.path):
                os.ftruncate(fd, 0)
                os.pwrite(fd, _owner_line().encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self):
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
        finally:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None


def _try_flock(fd):
    """'ours' once locked, 'held' when another process has it, 'unsupported' without flock."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return 'ours'
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return 'held'
        if e.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return 'unsupported'
        raise


def _recorded_owner_alive(owner_line):
    """Stale-lock check from the recorded pid, for file systems without flock."""
    fields = dict(item.split('=', 1) for item in owner_line.split() if '=' in item)
    if not fields:
        return False
    if fields.get('host') != socket.gethostname():
        return True  # a run on another machine: we cannot look at its processes, so trust the file
    try:
        pid = int(fields.get('pid', ''))
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # the process exists but belongs to another user
    return True


def _read(fd):
    return os.pread(fd, 4096, 0).decode(errors='replace').strip()


def _owner_line():
    return 'pid=%d host=%s started=%s\n' % (os.getpid(), socket.gethostname(),
                                            time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
