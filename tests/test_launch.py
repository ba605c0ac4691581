"""bench.firmware.launch: a program's announced value, its last words when it announces nothing, and the main loop of a
command that serves until stopped (SIGTERM stops what it started, exit 0; a start-up error exits 2). Seconds, no QEMU."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench.firmware.launch import LaunchError, launched, serial_url

ROOT = Path(__file__).resolve().parents[1]  # the serving program imports bench from here


def test_launched_yields_the_announced_url_and_stops_the_program():
    program = "import time; print('booting', flush=True); print('serial: socket://127.0.0.1:9', flush=True); time.sleep(60)"
    with launched([sys.executable, "-c", program], serial_url, what="serial URL", timeout_s=30) as (process, url):
        assert url == "socket://127.0.0.1:9" and process.poll() is None
    assert process.returncode is not None


def test_a_program_that_announces_nothing_is_reported_with_its_last_words():
    program = "import sys; print('qemu-x not found: install it', file=sys.stderr); sys.exit(2)"
    with pytest.raises(LaunchError, match=r"gave no serial URL .*; it said: qemu-x not found: install it$"):
        with launched([sys.executable, "-c", program], serial_url, what="serial URL", timeout_s=30):
            pass


SERVER = textwrap.dedent(
    """
    import contextlib, subprocess, sys
    from bench.firmware.launch import serve_until_stopped, stop_process

    @contextlib.contextmanager
    def starting():
        if sys.argv[1] == "fail":
            raise FileNotFoundError("no such board: plug it in")
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            yield child
        finally:
            stop_process(child)
            print(f"stopped child {child.returncode}", flush=True)

    def announce(child):
        print("serving", flush=True)
        return child

    sys.exit(serve_until_stopped(starting(), announce, (FileNotFoundError,)))
    """
)


def test_sigterm_stops_what_a_serving_command_started():
    server = subprocess.Popen([sys.executable, "-c", SERVER, "ok"], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert server.stdout.readline() == "serving\n"
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    assert server.stdout.read().startswith("stopped child -15")  # terminated by stop_process, not left running


def test_a_start_up_error_exits_2_naming_it():
    done = subprocess.run([sys.executable, "-c", SERVER, "fail"], capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 2 and done.stderr == "error: no such board: plug it in\n"
