"""RFC 2217 for real: Debian's ser2net (bench.link.transport.Ser2net, a generated loopback configuration) serves the
emulated STM32F405's UART (QEMU netduinoplus2's socket as ser2net's connector), and bench.on_device.run over
rfc2217:// must give what the direct socket gives, bit for bit; a server that refuses RFC 2217 fails fast."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import test_serial_qemu
from conftest import in_ci
from test_serial_qemu import ARTIFACT, CIFAR

from bench.firmware.launch import qemu_command
from bench.link import transport
from bench.link.errors import PortUnavailable
from bench.link.ports import open_port
from bench.on_device import run as bench_serial

# The firmware tests/test_mcu_qemu.py builds; SQZ_TEST_ELF names another build of it (PLATFORMIO_BUILD_DIR's).
ELF = Path(os.environ.get("SQZ_TEST_ELF", test_serial_qemu.ELF))


def _require_ser2net() -> None:
    if not shutil.which(transport.SER2NET):
        message = "needs Debian's ser2net (scripts/setup.sh installs it)"
        if in_ci():
            pytest.fail(f"CI=true: {message}")
        pytest.skip(message)


def _qemu() -> tuple[subprocess.Popen, str]:
    command = qemu_command(ELF)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("serial: socket://"):
            return process, line.split(": ", 1)[1].strip()
        if not line and process.poll() is not None:
            break
    os.killpg(process.pid, signal.SIGTERM)
    raise AssertionError("QEMU did not start")


def test_config_is_loopback_rfc2217_with_the_uart_as_connector():
    boards = [transport.Connection("b0", "socket://127.0.0.1:5555", 4000), transport.Connection("b1", "/dev/ttyACM0", 4001)]
    text = transport.config_text(boards)
    assert "accepter: telnet(rfc2217),tcp,127.0.0.1,4000" in text and "connector: tcp,127.0.0.1,5555" in text
    assert "connector: serialdev,/dev/ttyACM0,115200n81,local" in text and text.startswith("%YAML 1.1\n---")
    assert transport.describe("rfc2217://127.0.0.1:4000")["scheme"] == "rfc2217"
    assert transport.describe("/dev/ttyUSB0")["scheme"] == "tty"
    with pytest.raises(ValueError, match="socket://host:port or /dev/"):
        transport.connector_for("rfc2217://x:1")


@pytest.mark.parametrize(
    "rfc2217, says",
    [
        (False, r"not an RFC 2217 server.*telnet\(rfc2217\)"),  # a raw TCP accepter: no telnet option is answered
        (True, r"would not set baud rate.*not a serial port"),  # RFC 2217 to a tcp connector: no baud rate to set
    ],
    ids=["raw-accepter", "tcp-connector"],
)
def test_a_server_that_refuses_rfc2217_fails_fast_and_says_so(rfc2217, says):
    """ser2net refusing RFC 2217's options: the port is refused within pyserial's negotiation timeout (3 s),
    naming the fix; nothing hangs, and ser2net stops on leaving the block."""
    _require_ser2net()
    with socket.socket() as uart:  # a stand-in UART that accepts and stays silent
        uart.bind(("127.0.0.1", 0))
        uart.listen()
        held: list = []  # accepted connections kept open: a closed one would make ser2net drop its client
        threading.Thread(target=lambda: held.append(uart.accept()), daemon=True).start()
        target = f"socket://127.0.0.1:{uart.getsockname()[1]}"
        with transport.Ser2net([transport.Connection("uart", target, rfc2217=rfc2217)]) as server:
            url = f"rfc2217://127.0.0.1:{server.connections[0].port}"
            started = time.monotonic()
            with pytest.raises(PortUnavailable, match=r"refused or ignored RFC 2217's options.*" + says):
                open_port(url)
            assert time.monotonic() - started < 10
        assert server.process.poll() is not None


@pytest.mark.qemu
@pytest.mark.tflm
@pytest.mark.data
@pytest.mark.slow
def test_rfc2217_through_ser2net_is_bit_identical_to_the_direct_socket(tmp_path, capsys):
    """Two emulated boards in one run: one on QEMU's socket, one on QEMU's pty served by ser2net as RFC 2217
    (serialdev connector: baud, data bits, parity, stop bits negotiated). Outputs and the instruction counts
    (QEMU's -icount is deterministic) must be equal image for image."""
    if reason := test_serial_qemu._skip_reason() if ELF == test_serial_qemu.ELF else None:
        pytest.skip(reason)
    assert ELF.is_file(), f"SQZ_TEST_ELF={ELF}: no such file"
    _require_ser2net()
    direct, direct_url = _qemu()
    try:
        with transport.qemu_pty(ELF) as pty, transport.Ser2net([transport.Connection("board", pty)]) as server:
            url = server.connections[0].url
            assert url.startswith("rfc2217://127.0.0.1:") and url.endswith("?ign_set_control")
            out = tmp_path / "report"
            argv = ["--port", direct_url, "--port", url, "--artifacts", str(ARTIFACT), "--data", str(CIFAR), "--limit", "8"]
            code = bench_serial.main(argv + ["--warmup", "1", "--no-keras", "--no-progress", "--out", str(out)])
        summary = json.loads((out / "serial.json").read_text())
        socket_board, rfc_board = summary["boards"]
        if rfc_board["status"] == "refused" and "model SHA-256" in (rfc_board["error"] or ""):
            pytest.skip(f"the built firmware carries another model than {ARTIFACT}: rebuild it (tests/test_mcu_qemu.py)")
        assert code == 0, capsys.readouterr()
        assert socket_board["transport"]["scheme"] == "socket" and rfc_board["transport"]["scheme"] == "rfc2217"
        assert rfc_board["host_lsb"]["bit_identical"] == 8 == socket_board["host_lsb"]["bit_identical"]
        # Bit-identical outputs (both equal the TFLM host's, image for image); the instruction counts agree to the
        # SysTick reads' granularity (start and end, one tick each): where an inference starts within a tick depends
        # on when its input arrived.
        pairs = zip(rfc_board["ticks"], socket_board["ticks"], strict=True)
        assert len(rfc_board["ticks"]) == 8 and max(abs(a - b) for a, b in pairs) <= 2
        assert [r["tag"] for r in rfc_board["profile"]] == [r["tag"] for r in socket_board["profile"]]
        assert rfc_board["upload"]["bytes_per_s"] > 0 and rfc_board["upload"]["line_bytes_per_s"] == 115_200 // 10
        assert "over RFC 2217" in (out / "serial.md").read_text()
    finally:
        os.killpg(direct.pid, signal.SIGTERM)
        direct.wait(timeout=20)
