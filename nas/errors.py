"""The exception root of unetmm: every user-facing mistake raises a subclass of ``UnetmmError``.

The CLI turns these into a one-line ``error: ...`` message and a non-zero exit code; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class UnetmmError(Exception):
    """Base class of all errors unetmm raises on purpose."""


class ConfigError(UnetmmError, ValueError):
    """A configuration value is wrong; the message names the field and how to fix it."""


class UnknownNameError(UnetmmError, KeyError):
    """A registry lookup failed; the message lists the names that exist."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class InternalError(RuntimeError):
    """A bug in unetmm (an invariant broke), never a user mistake: the CLI keeps its traceback."""
