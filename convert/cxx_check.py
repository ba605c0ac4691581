"""Compile the generated firmware package with the Arm cross compiler, warnings as errors.

`model_data.cc` and `model_settings.h` need no TFLM; `model_op_resolver.h` does, so it is compiled only
when a TFLM source tree is found (`convert.tflm_tree`: `$TFLM_ROOT`, else the tree the set-up made in the cache).
Either layout works: a tree exported by tflite-micro's create_tflm_tree.py (third_party/ beside tensorflow/) or a
source checkout after `make third_party_downloads` (tensorflow/lite/micro/tools/make/downloads/).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from convert import codegen, tflm_tree

COMPILER = "arm-none-eabi-g++"
FLAGS = ("-std=c++17", "-Wall", "-Wextra", "-Werror", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os")
_THIRD_PARTY = (
    "third_party/flatbuffers/include",
    "third_party/gemmlowp",
    "third_party/ruy",
    "third_party/kissfft",
    "tensorflow/lite/micro/tools/make/downloads/flatbuffers/include",
    "tensorflow/lite/micro/tools/make/downloads/gemmlowp",
    "tensorflow/lite/micro/tools/make/downloads/ruy",
    "tensorflow/lite/micro/tools/make/downloads/kissfft",
)


@dataclass(frozen=True)
class CompileResult:
    what: str
    ok: bool
    command: list[str]
    output: str


def compiler_available(compiler: str = COMPILER) -> bool:
    return shutil.which(compiler) is not None


def find_tflm_root() -> Path | None:
    """The TFLM tree to compile against (`convert.tflm_tree.find_tree`), or None. A $TFLM_ROOT that is not a tree
    raises `tflm_sources.TreeError` (a ValueError): a typo must not turn into a skip."""
    return tflm_tree.find_tree("tflm")


def tflm_include_flags(root: Path) -> list[str]:
    # -isystem: warnings inside TFLM's own headers are TFLM's business, not a failure of our code.
    dirs = [root] + [root / sub for sub in _THIRD_PARTY if (root / sub).is_dir()]
    return [flag for d in dirs for flag in ("-isystem", str(d))]


def _compile(what: str, source: Path, folder: Path, compiler: str, extra: list[str]) -> CompileResult:
    command = [compiler, *FLAGS, "-I", str(folder), *extra, "-c", str(source), "-o", os.devnull]
    done = subprocess.run(command, capture_output=True, text=True)
    return CompileResult(what, done.returncode == 0, command, (done.stdout + done.stderr).strip())


def compile_package(
    folder: Path, *, compiler: str = COMPILER, tflm_root: Path | None = None, defines: tuple[str, ...] = ()
) -> list[CompileResult]:
    """Compile model_data.cc, a translation unit including model_settings.h and, with `tflm_root`, one
    including model_op_resolver.h and calling RegisterModelOps. Returns one result per unit."""
    folder = Path(folder)
    extra = [f"-D{d}" for d in defines]
    results = [_compile(codegen.DATA_SOURCE, folder / codegen.DATA_SOURCE, folder, compiler, extra)]
    with tempfile.TemporaryDirectory(prefix="squeezenet-mcu-cxx-") as scratch:
        settings_unit = Path(scratch) / "settings_unit.cc"
        # Uses a few constants so that an ill-formed one (type, narrowing) cannot hide behind non-use.
        settings_unit.write_text(
            f'#include "{codegen.SETTINGS_HEADER}"\n#include "{codegen.DATA_HEADER}"\n'
            'static_assert(kInputBytes == kInputHeight * kInputWidth * kInputChannels, "input bytes");\n'
            'static_assert(sizeof(kLabels) / sizeof(kLabels[0]) == kOutputClasses, "one label per class");\n'
            'static_assert(kTensorArenaBytes >= kTensorArenaHostBytes, "arena margin");\n'
            "int settings_probe(int i) { return kLabels[i % kOutputClasses][0] + kInputZeroPoint + static_cast<int>(kInputScale); }\n"
        )
        results.append(_compile(codegen.SETTINGS_HEADER, settings_unit, folder, compiler, extra))
        if tflm_root is not None:
            resolver_unit = Path(scratch) / "resolver_unit.cc"
            resolver_unit.write_text(
                f'#include "{codegen.RESOLVER_HEADER}"\n'
                "TfLiteStatus resolver_probe() { static ModelOpResolver resolver; return RegisterModelOps(resolver); }\n"
            )
            tflm_flags = ["-DTF_LITE_STATIC_MEMORY", *tflm_include_flags(Path(tflm_root))]
            results.append(_compile(codegen.RESOLVER_HEADER, resolver_unit, folder, compiler, extra + tflm_flags))
    return results
