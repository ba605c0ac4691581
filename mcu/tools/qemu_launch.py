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


def qemu_command(qemu: str, machine: str, elf: str, port: int) -> list[str]:
    serial = f"tcp:127.0.0.1:{port},server=on,wait=on"
    return [qemu, "-M", machine, "-nographic", "-kernel", elf, "-serial", serial, "-monitor", "none", "-icount", "shift=0"]


def wait_listening(port: int, process: subprocess.Popen, timeout_s: float = 20.0) -> bool:
    """True once QEMU listens (checked without connecting: /proc/net/tcp), False if it died."""
    deadline = time.monotonic() + timeout_s
    needle = f":{port:04X} "
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with open("/proc/net/tcp") as table:
                if any(needle in line and line.split()[3] == "0A" for line in table):
                    return True
        except OSError:
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
    args = parser.parse_args(argv)
    if not shutil.which(args.qemu):
        print(f"{args.qemu} not found: install qemu-system-arm (scripts/setup.sh)", file=sys.stderr)
        return 2
    port = args.port or free_port()
    command = qemu_command(args.qemu, args.machine, args.elf, port)
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
