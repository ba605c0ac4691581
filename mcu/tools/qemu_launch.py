#!/usr/bin/env python3
"""Run a firmware ELF on qemu-system-arm with its first UART on a local TCP port (the `upload` of the
emulated boards). Contract: prints `serial: socket://127.0.0.1:<port>` (a pyserial URL) once QEMU listens,
then QEMU waits for that client before the CPU starts (no output is lost); timing is deterministic
(-icount shift=0: a fixed number of virtual nanoseconds per instruction). Ctrl-C, SIGTERM or --timeout stop
QEMU cleanly; the exit status is QEMU's (0 after a requested stop). Standard library only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tcp_server(port: int, nodelay: bool = False) -> str:
    """QEMU's -serial for a TCP server on loopback that waits for its client before the CPU starts (no output is lost).
    nodelay: TCP_NODELAY, for a client that waits on each short reply line (bench.mlperf.runner)."""
    return f"tcp:127.0.0.1:{port},server=on,wait=on" + (",nodelay=on" if nodelay else "")


def qemu_command(qemu: str, machine: str, elf: str, serial: str) -> list[str]:
    """The one QEMU command line of the emulated boards: first UART on `serial` (QEMU's -serial: tcp_server(port),
    pty), no monitor, deterministic timing (-icount shift=0)."""
    return [qemu, "-M", machine, "-nographic", "-kernel", str(elf), "-serial", serial, "-monitor", "none", "-icount", "shift=0"]


def listening(port: int) -> bool | None:
    """Whether something listens on TCP `port`, checked without connecting (a connection would start QEMU's CPU, or open
    the board behind a ser2net): /proc/net/tcp, state 0A (LISTEN). None where that table cannot be read (not Linux)."""
    needle = f":{port:04X} "
    try:
        with open("/proc/net/tcp") as table:
            return any(needle in line and line.split()[3] == "0A" for line in table)
    except OSError:
        return None


def wait_listening(port: int, process: subprocess.Popen, timeout_s: float = 20.0) -> bool:
    """True once QEMU listens, False if it died."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        state = listening(port)
        if state:
            return True
        if state is None:
            time.sleep(0.5)
            return process.poll() is None
        time.sleep(0.05)
    return process.poll() is None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run firmware on qemu-system-arm with the UART on socket://127.0.0.1:<port>.")
    parser.add_argument("--machine", required=True, help="QEMU machine, e.g. netduinoplus2, mps2-an500")
    parser.add_argument("--elf", required=True, help="firmware ELF")
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("SQZ_QEMU_PORT", "0")), help="TCP port (default: $SQZ_QEMU_PORT or a free one)"
    )
    parser.add_argument(
        "--timeout", type=float, default=float(os.environ.get("SQZ_QEMU_TIMEOUT", "0")), help="stop after this many seconds (0: never)"
    )
    parser.add_argument("--qemu", default=os.environ.get("QEMU", "qemu-system-arm"), help="QEMU binary (default: %(default)s)")
    parser.add_argument("--nodelay", action="store_true", help="TCP_NODELAY on the UART's socket (a client waiting on short lines)")
    args = parser.parse_args(argv)
    if not shutil.which(args.qemu):
        print(f"{args.qemu} not found: install qemu-system-arm (scripts/setup.sh)", file=sys.stderr)
        return 2
    port = args.port or free_port()
    command = qemu_command(args.qemu, args.machine, args.elf, tcp_server(port, args.nodelay))
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    stopping = []

    def stop(*_):
        stopping.append(True)
        if process.poll() is None:
            process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if wait_listening(port, process):
        print(f"QEMU {args.machine} running {args.elf} (icount shift=0); stop with Ctrl-C", flush=True)
        print(f"serial: socket://127.0.0.1:{port}", flush=True)
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while process.poll() is None:
        if deadline and time.monotonic() > deadline:
            stop()
        try:
            process.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
    try:
        code = process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    return 0 if stopping else code


if __name__ == "__main__":
    sys.exit(main())
