"""A host build of firmware code (the C protocol core, the MLPerf text mode) run as a process under ASan/UBSan, its UART
on stdin/stdout pipes: one helper for the tests that talk to such a build. `port` is that UART as the pyserial-like
object bench.link.device.Device drives (the production client, so the host build is tested through it)."""

from __future__ import annotations

import os
import select
import subprocess


class PipePort:
    """The few pyserial `Serial` members bench.link.device.Device uses (read, write, timeout, close, portstr), over the
    process's pipes. `read(n)` waits up to `timeout` seconds (None: forever) for the first byte, then returns what has
    arrived, at most `n` bytes: Device reads 1 byte with a timeout, then the rest with timeout 0."""

    def __init__(self, process: subprocess.Popen, name: str):
        self.process = process
        self.portstr = f"pipe://{name}"
        self.timeout: float | None = None

    def read(self, size: int = 1) -> bytes:
        ready, _, _ = select.select([self.process.stdout], [], [], self.timeout)
        return os.read(self.process.stdout.fileno(), size) if ready else b""

    def write(self, data: bytes) -> int:
        self.process.stdin.write(data)
        self.process.stdin.flush()
        return len(data)

    def close(self) -> None:
        """Closing its input ends the host build (it exits at end of input), as unplugging ends a board's session."""
        if not self.process.stdin.closed:
            self.process.stdin.close()


class HostProcess:
    def __init__(self, binary, *args):
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", UBSAN_OPTIONS="halt_on_error=1")
        self.process = subprocess.Popen([str(binary), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.port = PipePort(self.process, os.path.basename(str(binary)))

    def write(self, data: bytes) -> None:
        self.port.write(data)

    def read(self, timeout_s: float) -> bytes:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        return os.read(self.process.stdout.fileno(), 4096) if ready else b""

    def close(self) -> int:
        """Exit status: 0 unless the build crashed or a sanitizer fired."""
        self.port.close()
        return self.process.wait(timeout=10)
