"""Errors that no retry can fix.

A nightly run on a GPU pool retries a stage that failed for a passing reason (an out-of-memory
kill, a network blip, a preempted machine). Retrying a typo in a profile, a missing input path or
a missing local model only delays the one clear line the user needs, by minutes of retry delay.
Raising (a subclass of) :class:`PermanentError` tells the orchestrator not to retry.
"""

from __future__ import annotations


class PermanentError(Exception):
    """A failure that the same inputs will reproduce: bad configuration, missing input, missing model."""


class InputNotFound(PermanentError, FileNotFoundError):
    """A path the profile names (raw data, a local base model, an evaluation folder) does not exist."""


class InputNotAFile(PermanentError, ValueError):
    """A path the profile or command names is neither a regular file nor a folder (a FIFO, a device):
    reading it could wait forever."""
