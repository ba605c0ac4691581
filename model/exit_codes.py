"""The exit statuses every command of this project returns: one table, so a script can act on `$?` the same
way after `python -m convert`, `python -m bench.on_device` or `python -m model.train`. README.md lists it, with
the commands that return each code. It lives in model/ because that is the lowest layer (bench and convert
import model, never the reverse). The detail behind a code (which board, which gate, which check) goes to
stderr and into the command's report, not into more codes."""

from __future__ import annotations

OK = 0  # done, and every check held
CHECK_FAILED = 1  # it ran to the end, and the result failed its check: a parity gate, outputs that differ, a finding
BAD_INPUT = 2  # usage or input that cannot be used as given (argparse's own code): nothing was run
DEVICE = 3  # a device or port problem: unreachable, timeout, refused, crashed, protocol error (stderr says which)
REFUSED = 4  # the output was refused, nothing written: a pre-flight or lossless check, or nothing to compress
FAILED = 5  # a step of the work itself failed: conversion, training, firmware build, writing a file
INCOMPLETE = 6  # it ran, but part of what was asked could not be evaluated (an engine unavailable)
INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, the shell's convention)

MEANINGS = {
    OK: "ok",
    CHECK_FAILED: "the result failed its check",
    BAD_INPUT: "bad input or usage",
    DEVICE: "device or port problem",
    REFUSED: "refused to write the output",
    FAILED: "a step failed",
    INCOMPLETE: "incomplete: part could not be evaluated",
    INTERRUPTED: "interrupted",
}


def run_command(work, bad_input: tuple[type[BaseException], ...], interrupted: str = "nothing was written") -> int:
    """A training command's outer handler: run `work()`; `bad_input` errors -> BAD_INPUT with `error: ...` on
    stderr, Ctrl-C -> INTERRUPTED with what was kept; OK otherwise. Library code raises, this one place answers."""
    import sys

    try:
        work()
    except bad_input as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        print(f"\ninterrupted: {interrupted}", file=sys.stderr)
        return INTERRUPTED
    return OK
