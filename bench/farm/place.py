"""A labgrid place as a bench.on_device.run port: `labgrid://<coordinator-host>[:<port>]/<place>`.

`PlaceLease(url).acquire()` acquires the place from its labgrid coordinator (port 20408 unless the URL names one),
waits until the place's exporter serves its serial port (the exporter starts ser2net as RFC 2217 once the place
is acquired) and returns that port's pyserial URL (rfc2217://host:port); `release()` gives the place back, and
runs whatever happened (bench.on_device.run calls it in a `finally`). The place is held by bench/farm/worker.py,
run by labgrid's own Python (.venv/labgrid, see requirements-labgrid.txt: labgrid's pyserial-labgrid and
PlatformIO's pyserial cannot share an environment); the worker releases the place as soon as its stdin closes,
so a benchmark that is killed does not keep the board either.

Errors are PlaceUnavailable (a PortUnavailable: bench.on_device.run's exit status 3) naming the fix: a coordinator that is
down, a place that does not exist or is taken by someone else, an exporter that serves nothing; `explain()` turns a
port failure mid-run into "the exporter went away" when the coordinator says so.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.link.errors import PortUnavailable

ROOT = Path(__file__).resolve().parents[2]
SCHEME = "labgrid"
DEFAULT_COORDINATOR_PORT = 20408  # labgrid-coordinator's default
ACQUIRE_TIMEOUT_S = 40.0  # session start (about 1 s of imports), acquire, and the exporter starting ser2net
REPLY_TIMEOUT_S = 10.0
EXPORTER_GONE_S = 3.0  # how long a port failure waits for the coordinator to report the exporter gone
WORKER = Path(__file__).with_name("worker.py")  # run with -P: the script folder must not come first on sys.path


class PlaceUnavailable(PortUnavailable):
    """The place could not be acquired or served (coordinator down, no such place, taken, no exporter)."""


def labgrid_venv() -> Path:
    return Path(os.environ.get("SQZ_LABGRID_VENV", ROOT / ".venv" / "labgrid"))


def labgrid_bin(name: str) -> Path:
    """A program of labgrid's environment (python, labgrid-coordinator, labgrid-exporter, labgrid-client)."""
    path = labgrid_venv() / "bin" / name
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: labgrid lives in its own environment; run scripts/setup.sh (it makes .venv/labgrid from "
            "requirements-labgrid.txt) or point SQZ_LABGRID_VENV at one"
        )
    return path


def place_url(coordinator: str, place: str) -> str:
    """The --port URL of `place` on `coordinator` (HOST or HOST:PORT)."""
    if not place or "/" in place:
        raise ValueError(f"a labgrid place name has no '/': {place!r}")
    return f"{SCHEME}://{coordinator}/{place}"


def parse(url: str) -> tuple[str, str]:
    """(coordinator HOST:PORT, place) of a labgrid:// URL; ValueError naming the form otherwise."""
    parts = urlsplit(url)
    place = parts.path.strip("/")
    if parts.scheme != SCHEME or not parts.hostname or not place or "/" in place:
        raise ValueError(f"expected labgrid://<coordinator-host>[:<port>]/<place>, not {url!r}")
    return f"{parts.hostname}:{parts.port or DEFAULT_COORDINATOR_PORT}", place


class Tail:
    """The last lines of a stream, read by a daemon thread (so a chatty program never blocks on a full pipe)."""

    def __init__(self, stream, lines: int = 40, into: queue.Queue | None = None):
        self.lines: collections.deque[str] = collections.deque(maxlen=lines)
        self._into = into
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            if self._into is not None:
                self._into.put(line)
            else:
                self.lines.append(line.rstrip())
        if self._into is not None:
            self._into.put(None)

    def text(self) -> str:
        return "\n".join(self.lines)


class PlaceLease:
    """One place, acquired by a worker process and released on release() (see the module docstring)."""

    def __init__(self, url: str, *, acquire_timeout_s: float = ACQUIRE_TIMEOUT_S):
        self.url = url
        self.coordinator, self.place = parse(url)
        self.acquire_timeout_s = acquire_timeout_s
        self.process: subprocess.Popen | None = None
        self.info: dict = {}
        self.timing: dict = {}
        self._replies: queue.Queue = queue.Queue()
        self._stderr: Tail | None = None

    # ---- the worker's JSON lines ----------------------------------------------------------------------
    def _reply(self, timeout_s: float) -> dict | None:
        """The worker's next JSON line (None: it ended or said nothing in time); stray output is skipped."""
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._replies.get(timeout=left)
            except queue.Empty:
                return None
            if line is None:
                return None
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
        return None

    def _send(self, command: str) -> bool:
        try:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
            return True
        except (BrokenPipeError, OSError, ValueError):
            return False

    def _stop_worker(self) -> None:
        if self.process is None:
            return
        try:
            self.process.stdin.close()  # the worker releases the place on EOF
        except OSError:
            pass
        try:
            self.process.wait(timeout=REPLY_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    # ---- the lease --------------------------------------------------------------------------------------
    def acquire(self) -> str:
        """Acquire the place; the pyserial URL of its serial port. Raises PlaceUnavailable."""
        started = time.monotonic()
        try:
            command = [str(labgrid_bin("python")), "-P", str(WORKER), "--coordinator", self.coordinator, "--place", self.place]
        except FileNotFoundError as error:
            raise PlaceUnavailable(f"{self.url}: {error}") from error
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        Tail(self.process.stdout, into=self._replies)
        self._stderr = Tail(self.process.stderr)
        reply = self._reply(self.acquire_timeout_s)
        if reply is None or reply.get("event") != "acquired":
            self._stop_worker()
            raise PlaceUnavailable(self._refusal(reply), busy=bool(reply and reply.get("kind") == "taken"))
        self.info = reply
        self.timing["acquire_s"] = round(time.monotonic() - started, 2)
        serial = reply["serial"]
        if serial["protocol"] == "raw":
            return f"socket://{serial['host']}:{serial['port']}"
        # A pseudo-terminal (an emulated board's UART) has no modem lines: ser2net never acknowledges SET_CONTROL.
        ignore = "?ign_set_control" if (reply.get("device_path") or "").startswith("/dev/pts/") else ""
        return f"rfc2217://{serial['host']}:{serial['port']}{ignore}"

    def _refusal(self, reply: dict | None) -> str:
        if reply is None:
            tail = self._stderr.text() if self._stderr else ""
            return (
                f"{self.url}: labgrid's worker gave no answer within {self.acquire_timeout_s:.0f} s "
                f"(is the coordinator {self.coordinator} reachable?){': ' + tail if tail else ''}"
            )
        fixes = {
            "coordinator": f"start labgrid-coordinator there, or name the right one (labgrid://<host>:<port>/{self.place}, --coordinator)",
            "place": "create it (labgrid-client -p NAME create; add-match <exporter>/<group>/NetworkSerialPort) or pick one that exists",
            "taken": f"wait for its holder to release it (labgrid-client -p {self.place} who/show), or take another place",
            "exporter": "start the place's labgrid-exporter on its lab machine (and ser2net there)",
        }
        return f"{self.url}: {reply.get('message')}; {fixes.get(reply.get('kind'), 'see labgrid-client -p ' + self.place + ' show')}"

    def status(self) -> dict | None:
        """The coordinator's view of the place now (None when the worker is gone)."""
        if self.process is None or self.process.poll() is not None or not self._send("status"):
            return None
        reply = self._reply(REPLY_TIMEOUT_S)
        return reply if reply and reply.get("event") == "status" else None

    def _served(self, status: dict) -> bool:
        serial = next((r for r in status["resources"] if r["path"] == self.info.get("resource")), None)
        return serial is not None and serial["cls"] is not None and serial["avail"]

    def explain(self, error: str, *, mid_run: bool = True) -> str:
        """A port failure, with what the coordinator says about the place (an exporter that went away mid-run)."""
        where = f"place {self.place} (exporter {self.info.get('exporter')}, coordinator {self.coordinator})"
        if not mid_run:  # the port refused to open: its server's answer says why
            return f"{error} (on {where})"
        deadline = time.monotonic() + EXPORTER_GONE_S
        status = self.status()
        # The serial connection can drop a moment before the coordinator tells the worker the exporter left.
        while status and status.get("coordinator_connected") and self._served(status) and time.monotonic() < deadline:
            time.sleep(0.25)
            status = self.status()
        if status is None or not status.get("coordinator_connected"):
            return f"{error}; and the coordinator {self.coordinator} no longer answers for {where}"
        if not self._served(status):
            return (
                f"the exporter of {where} went away mid-run ({self.info.get('resource')} is no longer served): "
                f"restart labgrid-exporter on its lab machine and run again ({error})"
            )
        return f"{error} (on {where}; the coordinator still lists its serial port)"

    def release(self) -> bool:
        """Give the place back (idempotent); True when the coordinator confirmed it."""
        if self.process is None:
            return False
        started = time.monotonic()
        ok = False
        if self.process.poll() is None and self._send("release"):
            reply = self._reply(REPLY_TIMEOUT_S)
            while reply is not None and reply.get("event") != "released":
                reply = self._reply(REPLY_TIMEOUT_S)
            ok = bool(reply and reply.get("ok"))
        self._stop_worker()
        self.process = None
        self.timing["release_s"] = round(time.monotonic() - started, 2)
        return ok

    def agrees(self, device_board: str) -> bool | None:
        """Whether the board the place declares (its BoardIdentity `board`) is the one the device says it is (HELLO);
        None when the place declares none."""
        declared = str((self.info.get("identity") or {}).get("board") or "")
        return declared.lower() in device_board.lower() if declared else None

    def describe(self) -> dict:
        """The transport, for the report: the coordinator, the place and who holds it, the exporter, the identity."""
        i = self.info
        out = {
            "scheme": SCHEME,
            "kind": "a labgrid place (its exporter's ser2net, RFC 2217)",
            "host": self.coordinator.rsplit(":", 1)[0],
            "coordinator": self.coordinator,
            "place": self.place,
        }
        if i:
            out |= {
                "acquired_by": i.get("acquired_by"),
                "exporter": i.get("exporter"),
                "resource": i.get("resource"),
                "serial": i.get("serial"),
                "identity": i.get("identity") or {},
                "tags": i.get("tags") or {},
                "labgrid": i.get("labgrid"),
            }
        return out | self.timing
