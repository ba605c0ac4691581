"""A host build of firmware code (the C protocol core, the MLPerf text mode) run as a process under ASan/UBSan, its UART
on stdin/stdout pipes: one helper for the tests that talk to such a build."""

from __future__ import annotations

import os
import select
import subprocess


class HostProcess:
    def __init__(self, binary, *args):
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", UBSAN_OPTIONS="halt_on_error=1")
        self.process = subprocess.Popen([str(binary), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)

    def write(self, data: bytes) -> None:
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def read(self, timeout_s: float) -> bytes:
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        return os.read(self.process.stdout.fileno(), 4096) if ready else b""

    def close(self) -> int:
        """Exit status: 0 unless the build crashed or a sanitizer fired."""
        self.process.stdin.close()
        return self.process.wait(timeout=10)
