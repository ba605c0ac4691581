"""The errors the conversion raises on purpose. `python -m convert` maps each to a message and exit code."""

from __future__ import annotations

import sys

from model import exit_codes


class ConversionError(Exception):
    """The conversion cannot go on; the message says what is wrong and what to do about it."""


class BadInputError(ConversionError):
    """An argument, model file, dataset or output path that cannot be used as given."""


class PreflightError(ConversionError):
    """The converted model must not go to a device. `failures` lists every failed check (name, message)."""

    def __init__(self, failures: list[tuple[str, str]]):
        self.failures = list(failures)
        lines = [f"  - [{name}] {message}" for name, message in self.failures]
        super().__init__(f"pre-flight check{'s' if len(lines) > 1 else ''} failed; the model must not be flashed:\n" + "\n".join(lines))


# The project's exit-code table (model.exit_codes), under the names the convert commands use.
EXIT_BAD_INPUT = exit_codes.BAD_INPUT
EXIT_PREFLIGHT = exit_codes.REFUSED
EXIT_FAILED = exit_codes.FAILED


def exit_code_of(error: Exception) -> int:
    """The exit status of a conversion error: bad input, pre-flight refused, or failed."""
    if isinstance(error, BadInputError):
        return EXIT_BAD_INPUT
    return EXIT_PREFLIGHT if isinstance(error, PreflightError) else EXIT_FAILED


def report(error: Exception) -> int:
    """Print `error` for a person (no traceback) and return its exit status (model.exit_codes): bad input,
    pre-flight refused, or the conversion or a file operation failed."""
    if isinstance(error, OSError):  # disk full, permissions: say which path
        print(f"error: {error.filename or ''}: {error.strerror or error}", file=sys.stderr)
        return EXIT_FAILED
    print(f"error: {error}", file=sys.stderr)
    return exit_code_of(error)
