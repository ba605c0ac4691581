"""The errors the conversion raises on purpose. `python -m convert` maps each to a message and exit code."""

from __future__ import annotations


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
