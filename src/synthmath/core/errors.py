"""Errors every layer raises; each message names the key, file or field at fault."""

from __future__ import annotations

import signal
from pathlib import Path


class ConfigError(ValueError):
    """A configuration value is wrong; the message names the key and what is allowed."""


class DecodeError(ValueError):
    """A token sequence does not decode to a well-formed answer (scored as wrong)."""


class NotSupported(ConfigError):
    """A task does not offer an optional capability (see ``Task.capabilities``)."""


class DataError(ValueError):
    """A data file (a dataset shard, a problem file) is not what it should be; the message
    names the file."""


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be read; the message names the file."""


class TrainingInterrupted(Exception):
    """Training stopped on a signal after saving its checkpoint; rerun the same command to resume.

    Callers should exit with :attr:`exit_code` (75, EX_TEMPFAIL: "try again later").
    """

    exit_code = 75

    def __init__(self, signum: int, checkpoint: Path):
        self.signum, self.checkpoint = signum, checkpoint
        super().__init__(
            f"training stopped by {signal.Signals(signum).name}; checkpoint saved to {checkpoint}"
        )
