"""Errors the user can act on.

Every failure caused by input (a config key, a file, a device) is raised as a
:class:`DanceError` whose message names the key or the file. The CLI prints that message
and exits non-zero without a traceback; anything else is a bug and keeps its traceback.
"""


class DanceError(Exception):
    """An error caused by the user's input; the message says what to fix."""


class ConfigError(DanceError):
    """An invalid configuration: the message names the key and what is allowed."""


class DataError(DanceError):
    """A missing, unreadable or corrupt data file; the message names the path."""


class CheckpointError(DanceError):
    """A missing, corrupt or mismatched checkpoint; the message names the path."""


class TrainingError(DanceError):
    """Training that cannot go on (its loss is no longer finite); names the step and key."""


class DeviceError(DanceError):
    """A device run or log that cannot be used (unreachable device, truncated or malformed
    log); the message names the device or the file."""
