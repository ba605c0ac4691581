"""Host builds of the firmware's portable pieces that need no TFLM: the boot-time model integrity check
(SHA-256 against the generated digest) and the build configuration's refusal without a model package."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "mcu" / "src" / "app"
GXX = shutil.which("g++")


def model_package(folder: Path, model: bytes, digest: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_data.h").write_text(
        '#pragma once\n#define MODEL_SHA256_HEX "x"\nextern const unsigned char g_model_data[];\n'
        "extern const unsigned int g_model_data_size;\nextern const unsigned char g_model_sha256[32];\n"
    )
    rows = ", ".join(str(b) for b in model)
    (folder / "model_data.cc").write_text(
        f'#include "model_data.h"\nalignas(16) const unsigned char g_model_data[] = {{{rows}}};\n'
        f"const unsigned int g_model_data_size = {len(model)};\n"
        f"const unsigned char g_model_sha256[32] = {{{', '.join(str(b) for b in digest)}}};\n"
    )


def run_check(tmp_path: Path, model: bytes, digest: bytes) -> list[str]:
    package = tmp_path / "package"
    model_package(package, model, digest)
    binary = tmp_path / "model_check"
    sources = [APP / "model_check.cc", package / "model_data.cc", ROOT / "mcu/test/host/model_check_main.cc"]
    subprocess.run([GXX, "-O1", "-fsanitize=address,undefined", "-x", "c", str(APP / "sha256.c"), "-x", "none", *map(str, sources),
                    f"-I{APP}", f"-I{package}", f"-I{ROOT / 'mcu/src/protocol'}", "-o", str(binary)], check=True)  # fmt: skip
    return subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout.splitlines()


@pytest.mark.skipif(GXX is None, reason="needs a host C++ compiler (g++)")
@pytest.mark.parametrize("size", [0, 55, 64, 1000, 70_001])
def test_sha256_matches_hashlib_and_model_is_accepted(tmp_path, size):
    model = bytes((i * 31 + 7) & 0xFF for i in range(size))
    state, digest_hex = run_check(tmp_path, model, hashlib.sha256(model).digest())
    assert state == "0 ok" and digest_hex == hashlib.sha256(model).hexdigest()


@pytest.mark.skipif(GXX is None, reason="needs a host C++ compiler (g++)")
def test_corrupted_model_is_refused_with_a_reason(tmp_path):
    model = bytes(range(256)) * 4
    digest = hashlib.sha256(model).digest()
    corrupted = bytearray(model)
    corrupted[100] ^= 1
    state, _ = run_check(tmp_path, bytes(corrupted), digest)
    assert state.startswith("1 model corrupted: SHA-256 expected " + digest[:8].hex())


PIO = ROOT / ".venv" / "bin" / "pio"
SCONS = Path(os.environ.get("PLATFORMIO_CORE_DIR", Path.home() / ".platformio")) / "packages" / "tool-scons" / "scons.py"


@pytest.mark.skipif(not PIO.exists() or not SCONS.exists(), reason="needs PlatformIO and its tool-scons (scripts/setup.sh)")
def test_build_refuses_without_a_model_package(tmp_path):
    env = dict(os.environ, SQZ_MODEL_DIR=str(tmp_path / "nothing"))
    result = subprocess.run(
        [str(PIO), "run", "-d", str(ROOT / "mcu"), "-e", "qemu_stm32f405"], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode != 0
    assert "run python -m convert" in result.stdout + result.stderr
