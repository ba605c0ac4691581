"""A labgrid farm on loopback: a labgrid coordinator, emulated boards, and one labgrid exporter serving them.

Each board is the firmware on QEMU (`-icount shift=0`) with its UART on a pseudo-terminal (bench.link.transport.qemu_pty).
The exporter's configuration gives each board a group: a `RawSerialPort` (the pty; the exporter runs ser2net for it
as RFC 2217 while the place is acquired, as it does for a USB UART on a lab machine) and a `BoardIdentity` (the
board's identity as resource metadata: board, MCU, how it is run). Each group gets a place matching its serial port.

    python -m bench.farm.loopback --elf mcu/.pio/build/qemu_stm32f405/firmware.elf --boards 2

prints `place: labgrid://127.0.0.1:<port>/<name>` per board (a bench.on_device.run --port) and serves until stopped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench.farm.place import WORKER, Tail, labgrid_bin, place_url
from bench.firmware.launch import LaunchError, launched, serve_until_stopped
from bench.link.transport import LOOPBACK, qemu_pty

EXPORTER_NAME = "loopback"
START_TIMEOUT_S = 30.0  # each labgrid program imports grpc first: a few seconds on a busy 2-core machine
IDENTITY = {"netduinoplus2": {"board": "netduinoplus2", "mcu": "STM32F405", "run_by": "qemu-system-arm -icount shift=0"}}


@dataclass
class Farm:
    coordinator: str
    places: list[str]
    exporter: subprocess.Popen
    logs: dict[str, Tail] = field(default_factory=dict)

    @property
    def urls(self) -> list[str]:
        return [place_url(self.coordinator, p) for p in self.places]

    def stop_exporter(self) -> None:
        """Stop the exporter and the ser2net it runs (its process group): a lab machine going away."""
        _stop_group(self.exporter)


def exporter_config(ptys: list[str], machine: str, extra_groups: dict | None = None) -> str:
    """The exporter's YAML: one group per board (RawSerialPort + BoardIdentity), then `extra_groups` as given."""
    groups = {}
    for k, pty in enumerate(ptys):
        identity = IDENTITY.get(machine, {"board": machine}) | {"instance": k}
        groups[f"board{k}"] = {"RawSerialPort": {"port": pty, "speed": 115200}, "BoardIdentity": identity}
    return json.dumps(groups | (extra_groups or {}), indent=2)  # JSON is YAML


def _stop_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):  # ser2net children, whether or not the exporter stopped them
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _after(prefix: str):
    return lambda line: line.split(prefix, 1)[1].strip() if prefix in line else None


@contextlib.contextmanager
def loopback_farm(elf: Path, boards: int = 2, machine: str = "netduinoplus2", extra_groups: dict | None = None):
    """Start the farm; yield a Farm; stop everything on the way out, whatever happened. `extra_groups`: more exporter
    groups, each holding a NetworkSerialPort (an existing ser2net), each given a place of its name."""
    folder = Path(tempfile.mkdtemp(prefix="labgrid-farm-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, True)
        # The coordinator keeps places.yaml and resources.yaml in its working directory: a folder of its own.
        command = [str(labgrid_bin("labgrid-coordinator")), "--listen", f"{LOOPBACK}:0"]
        coordinator, address = stack.enter_context(
            launched(command, _after("listening on "), what="listening address", timeout_s=START_TIMEOUT_S, cwd=folder)
        )
        logs = {"coordinator": Tail(coordinator.stdout)}
        ptys = [stack.enter_context(qemu_pty(elf, machine)) for _ in range(boards)]
        config = folder / "exporter.yaml"
        config.write_text(exporter_config(ptys, machine, extra_groups))
        command = [str(labgrid_bin("labgrid-exporter")), "--coordinator", address, "--name", EXPORTER_NAME, "--hostname", LOOPBACK]
        exporter, _ = stack.enter_context(
            launched(
                [*command, str(config)],
                _after("Exporter ready"),
                what="'Exporter ready'",
                timeout_s=START_TIMEOUT_S,
                start_new_session=True,
            )
        )
        stack.callback(_stop_group, exporter)
        logs["exporter"] = Tail(exporter.stdout)
        places = [f"board{k}" for k in range(boards)] + list(extra_groups or {})
        define = [f"{p}={EXPORTER_NAME}/{p}/NetworkSerialPort" for p in places]
        command = [str(labgrid_bin("python")), "-P", str(WORKER), "--coordinator", address]
        done = subprocess.run(
            command + [f"--define={d}" for d in define], capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            raise LaunchError(f"creating the places failed: {done.stdout.strip()} {done.stderr.strip()[-2000:]}")
        yield Farm(address, places, exporter, logs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.farm.loopback", description=__doc__.split("\n\n")[0])
    parser.add_argument("--elf", type=Path, required=True, help="the firmware, e.g. mcu/.pio/build/qemu_stm32f405/firmware.elf")
    parser.add_argument("--boards", type=int, default=2, help="emulated boards, one place each")
    parser.add_argument("--machine", default="netduinoplus2", help="QEMU machine")
    args = parser.parse_args(argv)
    if not args.elf.is_file() or args.boards < 1:
        parser.error(f"--elf must be a firmware file ({args.elf} is not) and --boards at least 1")

    def announce(farm: Farm) -> subprocess.Popen:
        print(f"coordinator: {farm.coordinator}", flush=True)
        for url in farm.urls:
            print(f"place: {url}", flush=True)
        return farm.exporter  # the farm serves while its exporter runs

    starting = loopback_farm(args.elf, args.boards, args.machine)
    return serve_until_stopped(starting, announce, (FileNotFoundError, LaunchError, subprocess.TimeoutExpired))


if __name__ == "__main__":
    sys.exit(main())
