"""Start a program that announces where it serves (QEMU's launcher and the virtual device print `serial: <url>`, QEMU
with `-serial pty` names its pseudo-terminal), wait for that line, yield what it names, and stop the program
afterwards, whatever happened. The one launcher of the pipeline, the transports and the tests; `stop_process` stops one;
`serve_until_stopped` is the main loop of a command that serves until stopped."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

T = TypeVar("T")


class LaunchError(RuntimeError):
    """The program ended, or said nothing usable in time."""


def qemu_command(elf, machine: str = "netduinoplus2", *extra: str) -> list[str]:
    """The command that runs `elf` on QEMU `machine` through the emulated boards' one launcher,
    mcu/tools/qemu_launch.py (-icount shift=0; it prints `serial: <url>`); `extra`: more of its options."""
    from bench.firmware.mcu_tools import TOOLS

    return [sys.executable, str(TOOLS / "qemu_launch.py"), "--machine", machine, "--elf", str(elf), *extra]


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
        value, said = None, []
        while value is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            if line.strip():  # the program's own last words explain a failure best
                said = [*said[-4:], line.strip()]
            value = pick(line)
        if value is None:
            last = "; it said: " + " | ".join(said) if said else ""
            raise LaunchError(f"{' '.join(command)} gave no {what} within {timeout_s:.0f} s{last}")
        yield process, value
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen, grace_s: float = 10.0) -> int:
    """Terminate `process`, kill it if it has not ended after `grace_s`, and reap it; returns its exit status."""
    process.terminate()
    try:
        return process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


class StopRequest:
    """SIGTERM as a request to stop a command that serves until stopped (Ctrl-C stays KeyboardInterrupt). Made before
    anything starts: a SIGTERM during start-up then still leaves through the caller's `with`, which stops what started."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGTERM, self._request)

    def _request(self, *_) -> None:
        self.requested = True

    def wait(self, process: subprocess.Popen, poll_s: float = 0.2) -> None:
        """Until a stop is requested or `process` (what is being served) ends."""
        while not self.requested and process.poll() is None:
            time.sleep(poll_s)


def serve_until_stopped(starting: AbstractContextManager[T], announce: Callable[[T], subprocess.Popen], errors: tuple) -> int:
    """The body of a command that serves until stopped: enter `starting` (a context manager whose entry starts what is
    served), `announce` what it yields (print where it serves; return the process whose end ends the service), serve
    until SIGTERM, Ctrl-C or that end; leaving the `with` stops everything. Exit status 2 with `error: ...` on stderr
    for one of `errors` (a start-up failure), else 0."""
    stop = StopRequest()
    try:
        with starting as served:
            stop.wait(announce(served))
    except errors as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
