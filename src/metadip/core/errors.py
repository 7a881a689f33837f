"""The project's own input errors: a config, dataset, artifact, measurement or option that is
missing, malformed or out of bounds. Entry points report them as one line and exit 1; any other
exception is a bug and keeps its traceback."""

from __future__ import annotations


class InputError(ValueError):
    """Bad input named by file, option or config key, with the fix, in the message."""


class ResultError(InputError):
    """A computed result that must not be kept or read (a non-finite metric), named by its
    setting or file, with the fix."""
