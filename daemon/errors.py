"""Exceptions that the CLI maps to exit codes: bad usage or bad input is exit 2."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad usage or bad input (an unknown rule, a malformed time, a missing file). Exit code 2."""


class ConfigError(ValueError):
    """An invalid configuration; the message names the file and key, and what would be valid."""
