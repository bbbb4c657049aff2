"""What every command does before TensorFlow loads: parse its flags (a bad one is a single line, exit 2),
print a --help whose defaults read right, and look at the folders it will write.

No TensorFlow here, so `--help` and a mistyped flag answer at once.
"""
import argparse
import os

from runtime.errors import ConfigError, UserError, file_in_the_way


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends `(default: X)` to a flag's help, unless the help already says what the default is or the
    default is None (nothing given: the help says what happens then)."""

    def _get_help_string(self, action):
        if action.default is None or 'default' in (action.help or ''):
            return action.help
        return super()._get_help_string(action)


class OneLineParser(argparse.ArgumentParser):
    """Reports a bad flag as a ConfigError (one `error: bad flag: ...` line, exit 2) instead of usage."""

    def __init__(self, description, command=None):
        super().__init__(description=description, formatter_class=HelpFormatter)
        self.command = command

    def error(self, message):
        raise ConfigError('bad flag: %s (see %s --help)' % (message, self.command or 'the command\'s'))


def command_parser(description, command=None):
    """The parser of a command other than main.py; `command` (e.g. 'python predict.py') is named in the
    line a bad flag gets."""
    return OneLineParser(description, command)


def check_output_folders(*folders_and_flags):
    """Refuses, before anything is created, a --logdir or --results that cannot be a folder: a file, or
    a path under a file. Checking them all first matters: a run that locked --logdir and then failed on
    --results would leave a run.lock (and a new folder) behind for nothing."""
    for folder, flag in folders_and_flags:
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise UserError('%s=%s is a file, not a folder; move it away or choose another %s'
                            % (flag, folder, flag))
        blocker = file_in_the_way(folder)
        if blocker:
            raise UserError('%s=%s cannot be a folder: %s is a file; move it away or choose another %s'
                            % (flag, folder, blocker, flag))


def check_output_file(path, flag):
    """Refuses a file to write that is a folder or lies under a file, before the work that fills it."""
    if os.path.isdir(path):
        raise UserError('%s=%s is a folder; give a file name' % (flag, path))
    blocker = file_in_the_way(os.path.dirname(path))
    if blocker:
        raise UserError('%s=%s cannot be written: %s is a file, not a folder; choose another %s'
                        % (flag, path, blocker, flag))
