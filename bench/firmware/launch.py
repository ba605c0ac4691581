"""Start a program that announces where it serves (QEMU's launcher and the virtual device print `serial: <url>`, QEMU
with `-serial pty` names its pseudo-terminal), wait for that line, yield what it names, and stop the program
afterwards, whatever happened. The one launcher of the pipeline, the transports and the tests."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable


class LaunchError(RuntimeError):
    """The program ended, or said nothing usable in time."""


def serial_url(line: str) -> str | None:
    """The URL of a `serial: <url>` line (the contract of mcu/tools/qemu_launch.py and bench.virtual.device)."""
    return line.split(None, 1)[1].strip() if line.startswith("serial: ") else None


@contextlib.contextmanager
def announced(command: list[str], pick: Callable[[str], str | None], *, what: str, timeout_s: float = 60.0, **popen):
    """Run `command`; yield the first `pick(line)` of its output that is not None; terminate it (kill after 10 s) on
    the way out. Raises LaunchError when it exits, or gives no such line within `timeout_s`."""
    with launched(command, pick, what=what, timeout_s=timeout_s, **popen) as (_, value):
        yield value


@contextlib.contextmanager
def launched(command: list[str], pick: Callable[[str], str | None], *, what: str, timeout_s: float = 60.0, **popen):
    """announced(), yielding (process, value): for a caller that keeps reading its output or stops it itself."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen)
    try:
        deadline = time.monotonic() + timeout_s
        value = None
        while value is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            value = pick(line)
        if value is None:
            raise LaunchError(f"{' '.join(command)} gave no {what} within {timeout_s:.0f} s")
        yield process, value
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
