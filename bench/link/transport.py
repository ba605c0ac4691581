"""Remote serial transports: what a port URL goes through, and ser2net serving a board's UART as RFC 2217.

`describe(url)` names the transport of a `--port` URL for the report (scheme, host, what sits between the
host and the UART). `Ser2net` runs Debian's ser2net (4.x) on loopback with a generated YAML configuration:
each connection's accepter is `telnet(rfc2217),tcp,127.0.0.1,<port>` (or plain `tcp` with rfc2217=False,
a server that refuses RFC 2217's options) and its connector the board's UART: `tcp,127.0.0.1,<port>` for
QEMU's socket, `serialdev,/dev/ttyACM0,115200n81,local` for a board on this machine. It is how a lab machine
serves its boards (labgrid's exporter starts ser2net the same way).

    python -m bench.link.transport ser2net --connect /dev/ttyACM0      # or --elf firmware.elf: QEMU's pty

prints `serial: rfc2217://127.0.0.1:<port>` (the contract of bench.pipeline.main_job.serial_endpoint) and serves until
stopped. Standard library only (ser2net itself comes from scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from bench.firmware.launch import announced, serve_until_stopped, stop_process
from bench.firmware.mcu_tools import load_tool

SER2NET = "ser2net"
START_TIMEOUT_S = 10.0  # ser2net listens within a fraction of a second; this bounds a broken install
LOOPBACK = "127.0.0.1"
QEMU_LAUNCH = load_tool("qemu_launch")  # the emulated boards' QEMU command line, free ports, the LISTEN check


def describe(url: str) -> dict:
    """The transport of a port URL, for the report: `kind` is what the bytes go through."""
    parts = urlsplit(url) if "://" in url else None
    scheme = parts.scheme if parts else "tty"
    kinds = {
        "tty": "a local serial port",
        "socket": "a raw TCP socket (an emulator's UART, the virtual device)",
        "rfc2217": "RFC 2217 (telnet COM port control) to a serial server such as ser2net",
        "faulty": "a raw TCP socket with injected byte damage (bench.link.faults)",
        "loop": "a loopback port (tests)",
        "labgrid": "a labgrid place (its exporter's ser2net, RFC 2217)",
    }
    out = {"scheme": scheme, "kind": kinds.get(scheme, f"pyserial {scheme}:// handler")}
    if parts and parts.hostname:
        out["host"] = parts.hostname
    return out


def open_rfc2217(url: str, **kwargs):
    """An open rfc2217:// port (pyserial's client, see RFC2217Serial). No write timeout: pyserial's RFC 2217
    client refuses one (NotImplementedError); TCP's own timeouts bound a write."""
    kwargs.pop("write_timeout", None)
    port = RFC2217Serial(None, **kwargs)
    port.port = url
    port.open()
    return port


def _rfc2217_class():
    from serial import rfc2217

    class Serial(rfc2217.Serial):
        """pyserial's RFC 2217 client, negotiating line settings only when they change. pyserial renegotiates
        baud, data bits, parity and stop bits (a network round trip, up to 3 s) whenever any setting is assigned,
        the read timeout included, which bench.link.channel changes on every read: over ser2net that made HELLO time out."""

        _negotiated: tuple | None = None

        def _reconfigure_port(self):
            settings = (self._baudrate, self._bytesize, self._parity, self._stopbits)
            if settings != self._negotiated:
                super()._reconfigure_port()
                self._negotiated = settings

        def close(self):
            self._negotiated = None
            super().close()

    return Serial


RFC2217Serial = _rfc2217_class()


def rfc2217_refused(url: str, text: str) -> str:
    """The error for a server that does not negotiate RFC 2217 (pyserial's message is `text`), naming the fix."""
    if "waiting for option 'control'" in text:
        why = (
            "it did not acknowledge SET_CONTROL (flow control, DTR/RTS): its device has no modem lines (a pseudo-terminal, "
            "QEMU's -serial pty); add ?ign_set_control to the URL"
        )
    elif "parameter change" in text:
        why = (
            "it would not set baud rate, data bits, parity and stop bits: its device is not a serial port (a ser2net "
            "connector tcp,host,port); serve a serialdev (a tty or QEMU's -serial pty), or use socket:// to the device itself"
        )
    else:
        why = (
            "it is not an RFC 2217 server or serves the port raw: in ser2net the accepter must be "
            "telnet(rfc2217),tcp,<port> (use socket://host:port for a raw TCP accepter)"
        )
    return f"{url}: the server refused or ignored RFC 2217's options ({text}): {why}"


def connector_for(target: str) -> str:
    """ser2net's connector for a board's UART: socket://h:p (QEMU) or a device path (a real board)."""
    if target.startswith("socket://"):
        parts = urlsplit(target)
        return f"tcp,{parts.hostname},{parts.port}"
    if target.startswith("/dev/"):
        return f"serialdev,{target},115200n81,local"
    raise ValueError(f"a ser2net device must be socket://host:port or /dev/<tty>, not {target!r}")


@dataclass
class Connection:
    """One served UART: `name` (ser2net's connection name), `target` (socket://h:p or /dev/tty...), its port."""

    name: str
    target: str
    port: int = 0
    rfc2217: bool = True

    @property
    def url(self) -> str:
        if not self.rfc2217:
            return f"socket://{LOOPBACK}:{self.port}"
        # A pseudo-terminal (QEMU's -serial pty) has no modem lines: ser2net never acknowledges SET_CONTROL for it,
        # so pyserial is told not to wait for that answer (baud, data bits, parity, stop bits are still negotiated).
        return f"rfc2217://{LOOPBACK}:{self.port}" + ("?ign_set_control" if self.target.startswith("/dev/pts/") else "")


def config_text(connections: list[Connection]) -> str:
    """ser2net.yaml for `connections` (ports already chosen), loopback only."""
    lines = ["%YAML 1.1", "---"]
    for c in connections:
        accepter = f"{'telnet(rfc2217),' if c.rfc2217 else ''}tcp,{LOOPBACK},{c.port}"
        lines += [
            f"connection: &{c.name}",
            f"  accepter: {accepter}",
            f"  connector: {connector_for(c.target)}",
            "  options:",
            "    kickolduser: true",  # a benchmark that died leaves no stale client holding the board
            "    max-connections: 1",
            "",
        ]
    return "\n".join(lines)


def _listening(port: int) -> bool:
    """True once something listens on loopback `port`, checked without connecting where the system allows
    (qemu_launch.listening: a connection would open the board behind ser2net)."""
    state = QEMU_LAUNCH.listening(port)
    if state is not None:
        return state
    try:  # not Linux: connect after all (ser2net and QEMU survive a probe)
        with socket.create_connection((LOOPBACK, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Ser2net:
    """ser2net in the foreground (`-n`) serving `connections`; a context manager that stops it whatever happened."""

    connections: list[Connection]
    binary: str = SER2NET
    process: subprocess.Popen | None = None
    folder: Path | None = None
    log: list[str] = field(default_factory=list)

    def __enter__(self) -> Ser2net:
        if not shutil.which(self.binary):
            raise FileNotFoundError(f"{self.binary} not found: install Debian's ser2net (scripts/setup.sh does)")
        for c in self.connections:
            c.port = c.port or QEMU_LAUNCH.free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="ser2net-"))
        config = self.folder / "ser2net.yaml"
        config.write_text(config_text(self.connections))
        # -n: stay in the foreground; -d would also send its log to stdout. No control port, no pid file needed.
        command = [self.binary, "-n", "-c", str(config), "-P", str(self.folder / "ser2net.pid")]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        waiting = list(self.connections)
        while waiting and time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read()
                self.stop()
                status, text = self.process.returncode, config.read_text()
                raise RuntimeError(f"ser2net exited with status {status}: {output.strip()}\nconfiguration:\n{text}")
            waiting = [c for c in waiting if not _listening(c.port)]
            time.sleep(0.05)
        if waiting:
            self.stop()
            raise RuntimeError(f"ser2net did not listen on {[c.port for c in waiting]} within {START_TIMEOUT_S:.0f} s")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop_process(self.process)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def qemu_pty(elf: Path, machine: str = "netduinoplus2", qemu: str = "qemu-system-arm", timeout_s: float = 20.0):
    """Run `elf` on QEMU with its first UART on a pseudo-terminal (a serial-capable device for ser2net's serialdev
    connector) and mcu/tools/qemu_launch.py's command line otherwise (-icount shift=0); yield the pty's
    path, stop QEMU afterwards. Output before a reader opens the pty is lost (the BOOT banner): HELLO still works."""
    if not shutil.which(qemu):
        raise FileNotFoundError(f"{qemu} not found: install qemu-system-arm (scripts/setup.sh)")
    command = QEMU_LAUNCH.qemu_command(qemu, machine, elf, "pty")
    with announced(command, _pty_path, what="pseudo-terminal", timeout_s=timeout_s, stdin=subprocess.DEVNULL) as pty:
        yield pty


def _pty_path(line: str) -> str | None:
    """QEMU's "char device redirected to /dev/pts/N (label serial0)"."""
    return line.split("redirected to ", 1)[1].split()[0] if "redirected to /dev/" in line else None


@contextlib.contextmanager
def _served_uart(elf: Path | None, connect: str | None, port: int, rfc2217: bool):
    """Ser2net serving one UART: `connect` (a tty, socket://h:p), or `elf` run on QEMU with its UART on a pty."""
    with contextlib.ExitStack() as stack:
        target = stack.enter_context(qemu_pty(elf)) if elf else connect
        yield stack.enter_context(Ser2net([Connection("board", target, port, rfc2217=rfc2217)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.link.transport", description="Serve a board's UART as RFC 2217 with ser2net.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("ser2net", help="serve one UART on loopback; prints serial: rfc2217://127.0.0.1:<port>")
    uart = serve.add_mutually_exclusive_group(required=True)
    uart.add_argument("--connect", help="the UART: /dev/ttyACM0 (a board), socket://127.0.0.1:<port> (RFC 2217 refuses: no baud rate)")
    uart.add_argument("--elf", type=Path, help="instead: run this firmware on QEMU netduinoplus2, its UART on a pty, and serve that")
    serve.add_argument("--port", type=int, default=0, help="TCP port to accept on (default: a free one)")
    serve.add_argument("--raw", action="store_true", help="a raw TCP accepter (no RFC 2217): for testing the refusal")
    args = parser.parse_args(argv)

    def announce(server: Ser2net) -> subprocess.Popen:
        print(f"serial: {server.connections[0].url}", flush=True)
        return server.process

    starting = _served_uart(args.elf, args.connect, args.port, rfc2217=not args.raw)
    return serve_until_stopped(starting, announce, (FileNotFoundError, RuntimeError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
