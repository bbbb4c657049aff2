"""Where a figure came from: the commit of the code and the machine, as one short string each."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def commit():
    """'abc1234', with '+uncommitted' when tracked files differ from it; '?' outside a git checkout."""
    def git(*args):
        return subprocess.run(['git', '-C', ROOT] + list(args), capture_output=True, text=True, timeout=30)
    try:
        head = git('rev-parse', '--short', 'HEAD')
        if head.returncode:
            return '?'
        dirty = git('diff', '--quiet', 'HEAD', '--').returncode != 0
    except (OSError, subprocess.SubprocessError):
        return '?'
    return head.stdout.strip() + ('+uncommitted' if dirty else '')


def hardware():
    """'CPU model x cores' from /proc/cpuinfo (the processor field elsewhere)."""
    model = None
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    if model is None:
        import platform
        model = platform.processor() or platform.machine() or 'unknown CPU'
    return '%s x %d' % (model, os.cpu_count() or 1)
