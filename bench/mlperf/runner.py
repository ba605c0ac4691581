"""Run MLPerf Tiny's official runner (mlcommons/tiny `benchmark/runner/main.py`, an upstream checkout kept outside this
repository) against firmware on QEMU, unchanged.

What the runner needs, and what this shim supplies (none of the runner's files is changed or copied):
- It finds its DUT only among USB serial ports (`serial.tools.list_ports.comports()`, an entry with the VID:PID of the
  `type: dut` device in its `--device_list`), and opens it as a serial port (`serial.Serial`). The shim gives QEMU's
  UART a pty (QEMU's TCP socket bridged to a pty of ours, which stays open when the runner closes and reopens it, and
  whose boot lines are read before the runner connects) and adds that pty, which has no VID:PID, to the port list with
  the DUT's VID:PID from the device list.
- Optional, a change of the runner's behaviour, off by default: `--reply-timeout S` makes it wait at least S seconds
  for each reply line instead of 5 (30 for infer), for a host whose cores are saturated (see wait_at_least).
- It also scans USB for energy monitors (`usb.core.find`, which needs pyusb and libusb): the shim makes that scan find
  nothing (no USB devices in an emulator; energy mode needs a real board and an energy monitor).

`<runner venv>/bin/python -m bench.mlperf.runner --runner <tiny>/benchmark/runner --elf firmware.elf [--machine
netduinoplus2] [--workdir build/mlperf-runner] -- <main.py options>` starts QEMU (`-icount shift=0`), runs main.py in
this process with the working directory `--workdir` (its sessions/<time>/ log.txt, results.txt, results.json land
there, and results.txt gets the timing note below; relative --dataset_path/--test_script/--device_list options are
taken from the caller's directory, and without --test_script the runner's own tests_<mode>.yaml is used, as main.py
does), then stops QEMU. Needs only the runner's own dependencies (pyserial, PyYAML, numpy, scikit-learn, matplotlib,
pyusb): run it with the runner's Python, from the repository root (`-m`: run as a script, bench/on_device/run.py would hide
pyserial).
Exit status: main.py's own when it finished; DEVICE (model.exit_codes) when QEMU did not start or the runner raised;
BAD_INPUT for a usage error.

Timing: the firmware's m-lap-us is QEMU virtual time, instruction-count time under -icount shift=0 (one instruction =
1 ns: 1 "us" = 1,000 instructions), not wall time and not a real board's microseconds. The runner's "Runtime", its
"Throughput" and "Median throughput ... inf./sec." are in that unit: inferences per 10^9 instructions.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import runpy
import shutil
import socket
import subprocess
import sys
import threading
import time
import tty
import types
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PATH_OPTIONS = ("--dataset_path", "-s", "--test_script", "-t", "--device_list", "-d")
TIMING_NOTE = (
    "mlperf_runner: m-lap-us on QEMU (-icount shift=0) is instruction-count time: 1 us = 1,000 guest instructions, "
    "not wall time; the runner's Runtime and Throughput (inf./sec.) are per 10^9 instructions"
)


def read_boot(sock: socket.socket, timeout_s: float) -> list[str]:
    """The firmware's start-up lines, up to the first m-ready."""
    data, deadline = b"", time.monotonic() + timeout_s
    while b"m-ready" not in data:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(4096)
        if not chunk or time.monotonic() > deadline:
            raise RuntimeError(f"no m-ready from the firmware at start-up (got {data[-200:]!r})")
        data += chunk
    return [line.strip("\r") for line in data.decode("ascii", "replace").split("\n") if line.strip("\r")]


def bridge(sock: socket.socket, master: int) -> None:
    """Copy bytes both ways between QEMU's UART socket and the pty's master side, until either closes."""

    def pump(read, write) -> None:
        try:
            while chunk := read():
                write(chunk)
        except OSError:
            pass

    def write_all(data: bytes) -> None:
        while data:
            data = data[os.write(master, data) :]

    sock.settimeout(None)
    threading.Thread(target=pump, args=(lambda: sock.recv(4096), write_all), daemon=True).start()
    threading.Thread(target=pump, args=(lambda: os.read(master, 4096), sock.sendall), daemon=True).start()


@dataclass
class EmulatedBoard:
    """QEMU running the firmware, its UART on `pty` (see start_qemu); `boot`: the firmware's start-up lines."""

    launcher: contextlib.ExitStack  # mcu/tools/qemu_launch.py, stopped (and QEMU with it) when this closes
    pty: str
    boot: list[str]
    channel: tuple  # the socket and the pty's two fds, open while QEMU runs

    def stop(self) -> None:
        self.launcher.close()
        sock, master, slave = self.channel
        sock.close()
        os.close(master)
        os.close(slave)


def start_qemu(qemu: str, machine: str, elf: Path, timeout_s: float = 30.0) -> EmulatedBoard:
    """QEMU running `elf`, its first UART on a pty.

    QEMU is started by the emulated boards' launcher, mcu/tools/qemu_launch.py (--nodelay: the runner waits on each
    short reply line), through bench.firmware.launch; its UART is a TCP socket (lossless, and QEMU waits for it before
    the CPU starts). The boot lines are read here, up to m-ready, so a port opened later starts clean; then threads copy
    bytes between the socket and a pty in raw mode whose slave stays open here (a client may close and reopen it, as
    the runner does). The launcher's and QEMU's console output goes to stderr."""
    # imported here: run as a script, the module must still load to say how to run it
    from bench.firmware.launch import launched, qemu_command, serial_url

    command = qemu_command(elf, machine, "--qemu", qemu, "--nodelay")
    with contextlib.ExitStack() as launcher:
        process, url = launcher.enter_context(
            launched(command, serial_url, what="serial URL", timeout_s=timeout_s, stdin=subprocess.DEVNULL)
        )

        def drain() -> None:
            for line in process.stdout:
                sys.__stderr__.write(f"qemu: {line}")

        threading.Thread(target=drain, daemon=True).start()
        where = urlsplit(url)
        sock = socket.create_connection((where.hostname, where.port), timeout=timeout_s)
        try:
            boot = read_boot(sock, timeout_s)
        except (OSError, RuntimeError):
            sock.close()
            raise
        master, slave = os.openpty()
        tty.setraw(slave)
        bridge(sock, master)
        return EmulatedBoard(launcher.pop_all(), os.ttyname(slave), boot, (sock, master, slave))


def dut_usb_id(device_list: Path) -> tuple[int, int]:
    """The (VID, PID) of the last `type: dut` entry of the runner's device list (the one main.py uses)."""
    import yaml

    devices = yaml.safe_load(device_list.read_text()) or []
    duts = [d for d in devices if isinstance(d, dict) and d.get("type") == "dut"]
    if not duts or not isinstance(duts[-1].get("usb"), dict) or not duts[-1]["usb"]:
        raise ValueError(f"{device_list}: needs a `type: dut` entry with `usb: {{<vid>: <pid>}}` (the id the pty is given)")
    vid, pid = next(iter(duts[-1]["usb"].items()))
    return int(vid), int(pid[0] if isinstance(pid, list) else pid)


def advertise_port(device: str, vid: int, pid: int, description: str) -> None:
    """Make serial.tools.list_ports.comports() also list `device` with this VID:PID, as the runner's scan expects."""
    from serial.tools import list_ports, list_ports_common

    info = list_ports_common.ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.description, info.serial_number = vid, pid, description, "qemu"
    info.hwid = f"USB VID:PID={vid:04X}:{pid:04X} SER=qemu (a pty, not USB)"
    original = list_ports.comports

    def comports(include_links: bool = False):
        return [p for p in original(include_links) if p.device != device] + [info]

    list_ports.comports = comports


def no_usb_devices() -> None:
    """usb.core.find finds nothing (and needs no libusb); a stand-in module when pyusb is not installed."""
    try:
        import usb.core
    except ImportError:
        usb = types.ModuleType("usb")
        usb.core = types.ModuleType("usb.core")
        sys.modules.update({"usb": usb, "usb.core": usb.core})
    sys.modules["usb.core"].find = lambda *args, **kwargs: iter(()) if kwargs.get("find_all") else None


def label_session(elf: Path, machine: str) -> Path | None:
    """Append what the timestamps mean and what ran to the session's results.txt (the runner's script module names the
    session's log file); returns the file, or None when the runner made no session."""
    log = getattr(sys.modules.get("script"), "log_filename", None)
    if not log or not Path(log).parent.is_dir():
        return None
    results = Path(log).parent / "results.txt"
    digest = hashlib.sha256(elf.read_bytes()).hexdigest()
    with results.open("a") as out:
        out.write(f"{TIMING_NOTE}\nmlperf_runner: DUT QEMU {machine} (-icount shift=0) running {elf} (SHA-256 {digest[:16]}...)\n")
    return results


def wait_at_least(seconds: float) -> None:
    """Opt-in (--reply-timeout): every wait of the runner's SerialDevice.read_line for a reply line lasts at least
    `seconds` (the runner waits 5 s, 30 s for infer). QEMU's USART takes one byte per round trip between QEMU's I/O
    thread and its CPU thread; with the host's cores saturated one 65-character command took up to 8 s here."""
    import serial_device  # the runner's module (its folder is on sys.path)

    read_line = serial_device.SerialDevice.read_line

    def patient_read_line(self, timeout=None):
        return read_line(self, max(self._timeout if timeout is None else timeout, seconds))

    serial_device.SerialDevice.read_line = patient_read_line


def option_value(args: list[str], names: tuple[str, ...]) -> str | None:
    for i, arg in enumerate(args):
        for name in names:
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def absolute_paths(args: list[str], base: Path) -> list[str]:
    """The runner's path options resolved against `base` (the caller's directory), other arguments as they are."""
    out = []
    for i, arg in enumerate(args):
        name, sep, value = arg.partition("=")
        if sep and name in PATH_OPTIONS and not os.path.isabs(value):
            arg = f"{name}={base / value}"
        elif i > 0 and args[i - 1] in PATH_OPTIONS and not os.path.isabs(arg):
            arg = str(base / arg)
        out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    from model import exit_codes

    argv = sys.argv[1:] if argv is None else argv
    ours, runner_args = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    parser = argparse.ArgumentParser(description="Run MLPerf Tiny's runner (main.py) against firmware on QEMU, through a pty.")
    parser.add_argument("--runner", required=True, type=Path, help="mlcommons/tiny benchmark/runner folder (holds main.py)")
    parser.add_argument("--elf", required=True, type=Path, help="MLPerf-mode firmware (pio run -e qemu_stm32f405_mlperf)")
    parser.add_argument("--machine", default="netduinoplus2", help="QEMU machine (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=Path("build/mlperf-runner"), help="where sessions/ go (default: %(default)s)")
    parser.add_argument("--qemu", default=os.environ.get("QEMU", "qemu-system-arm"))
    parser.add_argument(
        "--reply-timeout",
        type=float,
        default=0.0,
        help="wait at least this many seconds for each reply line (default: the runner's own waits)",
    )
    args = parser.parse_args(ours)
    base = Path.cwd()
    args.elf = args.elf.resolve()  # before the runner's working directory is entered
    runner_args = absolute_paths(runner_args, base)
    main_py = args.runner.resolve() / "main.py"
    device_list = option_value(runner_args, ("--device_list", "-d"))
    if option_value(runner_args, ("--test_script", "-t")) is None:  # main.py's default is relative to --workdir
        mode = option_value(runner_args, ("--mode", "-m")) or "a"
        script = {"a": "tests_accuracy.yaml", "p": "tests_performance.yaml", "e": "tests_energy.yaml"}.get(mode, "tests_accuracy.yaml")
        runner_args.append(f"--test_script={args.runner.resolve() / script}")
    if not main_py.is_file() or not args.elf.is_file() or not shutil.which(args.qemu):
        print(f"error: needs {main_py}, {args.elf} and {args.qemu}", file=sys.stderr)
        return 2
    if device_list is None:
        print("error: pass the runner a --device_list with the emulated DUT (bench/mlperf/devices_qemu.yaml)", file=sys.stderr)
        return 2
    try:
        vid, pid = dut_usb_id(Path(device_list))
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.BAD_INPUT
    try:
        board = start_qemu(args.qemu, args.machine, args.elf)
    except (OSError, RuntimeError) as error:  # QEMU did not start or print its pty
        print(f"error: {error}", file=sys.stderr)
        return exit_codes.DEVICE
    status = 0
    try:
        print(f"mlperf_runner: QEMU {args.machine} UART on {board.pty}, listed as USB {vid:04x}:{pid:04x}", flush=True)
        print(f"mlperf_runner: boot: {' | '.join(board.boot)}", flush=True)
        print(TIMING_NOTE, flush=True)
        advertise_port(board.pty, vid, pid, f"QEMU {args.machine} UART (pty)")
        no_usb_devices()
        args.workdir.mkdir(parents=True, exist_ok=True)
        os.chdir(args.workdir)
        sys.path.insert(0, str(main_py.parent))
        if args.reply_timeout > 0:
            wait_at_least(args.reply_timeout)
            print(f"mlperf_runner: the runner waits at least {args.reply_timeout:g} s for each reply line (--reply-timeout)", flush=True)
        sys.argv = [str(main_py), *runner_args]
        runpy.run_path(str(main_py), run_name="__main__")
    except SystemExit as stop:  # the third-party runner's main.py ends with sys.exit: its status is passed on
        status = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except Exception as error:  # the runner's own failures (RuntimeError "No response to command ..." and the like)
        sys.__stderr__.write(f"mlperf_runner: the runner failed: {type(error).__name__}: {error}\n")
        status = exit_codes.DEVICE
    finally:
        board.stop()
    labelled = label_session(args.elf, args.machine)
    sys.__stdout__.write(TIMING_NOTE + (f" (noted in {labelled})" if labelled else "") + "\n")
    return status


if __name__ == "__main__":
    if not __package__:
        print("error: run it as `python -m bench.mlperf.runner ...` from the repository root, so that `bench` can be imported")
        sys.exit(2)  # model.exit_codes.BAD_INPUT, which cannot be imported when run this way
    sys.exit(main())
