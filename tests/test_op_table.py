"""The one op table (convert/tflm_ops.py OPS) against the TFLM trees it was transcribed from, and what the code
generator and the firmware build make of it (issue 12 item 3).

The tree checks parse tensorflow/lite/micro/micro_mutable_op_resolver.h (every builtin `AddXxx()` method and the
operator it registers) and kernels/*.h (where `Register_<OP>_INT8()` is a kernel of its own and where an alias of
the generic one), so a tree update that adds, renames or moves a registration fails here, not in a firmware link.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import require_tflm_tree

from convert import codegen, cxx_check, tflm_ops
from convert.tflm_ops import OPS

ROOT = Path(__file__).resolve().parents[1]
MICRO = Path("tensorflow") / "lite" / "micro"
# the macro each kernel set's build defines, which the kernel headers test (mcu/scripts/tflm.py)
SET_MACROS = {tflm_ops.CMSIS_NN_SET: "CMSIS_NN", tflm_ops.ESP_NN: "ESP_NN"}
# the trees that hold each optimised kernel set (custom_tflm_tree in mcu/platformio.ini)
SET_TREES = {tflm_ops.CMSIS_NN_SET: "tflm", tflm_ops.ESP_NN: "esp-tflite-micro"}
SQUEEZENET_OPS = [{"name": n, "version": 2} for n in ("MUL", "ADD", "CONV_2D", "MAX_POOL_2D", "CONCATENATION", "MEAN", "SOFTMAX")]

_METHOD = re.compile(r"^  TfLiteStatus (Add\w+)\((.*?)\)\s*\{\n(.*?)^  \}", re.M | re.S)


def resolver_methods(root: Path) -> dict[str, tuple[str, bool]]:
    """{op name: (method, takes a registration argument)} for every method of micro_mutable_op_resolver.h that
    registers a builtin (AddBuiltin) or TFLM_DECODE; other custom registrations (signal, vendor) are left out."""
    text = (root / MICRO / "micro_mutable_op_resolver.h").read_text()
    found = {}
    for method, params, body in _METHOD.findall(text):
        builtin = re.search(r"AddBuiltin\(\s*BuiltinOperator_(\w+)", body)
        name = builtin.group(1) if builtin else ("CUSTOM:TFLM_DECODE" if 'AddCustom("TFLM_DECODE"' in body else None)
        if name:
            assert name not in found, f"{name} registered by both {found[name][0]} and {method}"
            found[name] = (method, "TFLMRegistration& registration" in params)
    return found


def declarations_in(header: Path) -> list[str]:
    return re.findall(r"^TFLMRegistration (Register_\w+_INT8)\(\);", header.read_text(), re.M)


def int8_declarations(root: Path) -> dict[str, list[str]]:
    """{Register_X_INT8: [the #if conditions it is declared (not defined inline) under]} from kernels/*.h."""
    found: dict[str, list[str]] = {}
    for header in sorted((root / MICRO / "kernels").glob("*.h")):
        stack: list[str] = []
        for line in header.read_text().splitlines():
            directive = re.match(r"\s*#\s*(if|ifdef|ifndef|elif|else|endif)\b(.*)", line)
            if directive:
                kind, rest = directive.groups()
                if kind in ("if", "ifdef", "ifndef"):
                    stack.append(f"{kind} {rest.strip()}")
                elif kind == "endif":
                    stack.pop()
                else:
                    stack[-1] = f"{kind} {rest.strip()} (after {stack[-1]})"
                continue
            declared = re.match(r"\s*TFLMRegistration (Register_\w+_INT8)\(\);", line)
            if declared:
                found.setdefault(declared.group(1), []).append(" / ".join(stack))
    return found


def defined_in(folder: Path, function: str) -> bool:
    pattern = re.compile(rf"^TFLMRegistration {function}\(\)\s*\{{", re.M)
    return any(pattern.search(p.read_text()) for p in folder.glob("*.cc"))


# ---- the table against the trees (tflm) --------------------------------------------------------------------------


@pytest.mark.tflm
def test_every_resolver_method_and_only_those():
    header = resolver_methods(require_tflm_tree("tflm"))
    assert {name: op.method for name, op in OPS.items()} == {name: method for name, (method, _) in header.items()}


@pytest.mark.tflm
def test_int8_registrations_are_declared_where_the_table_says():
    root = require_tflm_tree("tflm")
    header, declared = resolver_methods(root), int8_declarations(root)
    table = {op.int8 for op in OPS.values() if op.int8}
    assert table == set(declared), "Register_*_INT8 declared in kernels/*.h but not in the table, or the reverse"
    for name, op in OPS.items():
        if not op.int8:
            continue
        assert header[name][1], f"{op.method} takes no registration, so {op.int8}() cannot be passed to it"
        assert op.int8 in declarations_in(root / MICRO / "kernels" / f"{op.int8_header}.h"), f"{op.int8} not in {op.int8_header}.h"
        conditions = " ".join(declared[op.int8])
        for kernel_set, macro in SET_MACROS.items():
            assert (macro in conditions) == (kernel_set in op.int8_sets), f"{op.int8}: declared under {conditions!r}"


@pytest.mark.tflm
@pytest.mark.parametrize("kernel_set", sorted(SET_MACROS))
def test_int8_kernels_exist_in_the_kernel_sets_the_table_names(kernel_set):
    """An optimised set's folder defines each int8-only kernel the table gives it, and no other."""
    folder = require_tflm_tree(SET_TREES[kernel_set]) / MICRO / "kernels" / kernel_set
    assert folder.is_dir(), f"{folder} missing"
    for op in OPS.values():
        if op.int8:
            assert defined_in(folder, op.int8) == (kernel_set in op.int8_sets), f"{op.int8} in {folder}"


@pytest.mark.tflm
@pytest.mark.parametrize("tree", ["tflm", "esp-tflite-micro"])
def test_kernel_stems_are_sources_of_the_trees(tree):
    kernels = require_tflm_tree(tree) / MICRO / "kernels"
    stems = {s for name, op in OPS.items() for s in op.kernels if not (tree == "esp-tflite-micro" and name == "CUSTOM:TFLM_DECODE")}
    missing = [s for s in sorted(stems | set(tflm_ops.ALWAYS_KERNEL_STEMS)) if not (kernels / f"{s}.cc").is_file()]
    assert not missing, f"no kernels/<stem>.cc in {tree} for {missing}"


@pytest.mark.tflm
@pytest.mark.skipif(not cxx_check.compiler_available(), reason=f"{cxx_check.COMPILER} is not installed (apt install gcc-arm-none-eabi)")
def test_a_header_registering_every_op_compiles(tmp_path):
    """The int8-only branch of a RegisterModelOps holding every table entry compiles against the tree as the
    cmsis_nn build compiles it: each method exists and takes the int8-only registration the table gives it (the
    generic branch calls the same methods without arguments; test_convert compiles one of those)."""
    root = require_tflm_tree("tflm")
    ops = [{"name": name, "version": 1} for name in OPS]
    (tmp_path / codegen.RESOLVER_HEADER).write_text(codegen.op_resolver_header(ops, {}))
    unit = tmp_path / "unit.cc"
    unit.write_text(
        f'#include "{codegen.RESOLVER_HEADER}"\n'
        "TfLiteStatus probe() { static ModelOpResolver resolver; return RegisterModelOps(resolver); }\n"
    )
    flags = [f"-D{d}" for d in ("TF_LITE_STATIC_MEMORY", "CMSIS_NN", codegen.INT8_MACRO)] + cxx_check.tflm_include_flags(root)
    command = [cxx_check.COMPILER, *cxx_check.FLAGS, "-I", str(tmp_path), *flags, "-fsyntax-only", str(unit)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# ---- what the generator writes from it ---------------------------------------------------------------------------


def branches(text: str) -> tuple[list[str], list[str]]:
    """(int8-only branch, generic branch) registrations of a generated RegisterModelOps."""
    int8, generic = re.search(r"#if defined\(SQZ_INT8_ONLY_KERNELS\)\n(.*?)#else\n(.*?)#endif", text, re.S).groups()
    return int8.splitlines(), generic.splitlines()


def test_header_states_both_registrations_from_the_table():
    text = codegen.op_resolver_header(SQUEEZENET_OPS, {"model": "m"})
    assert text == codegen.op_resolver_header(SQUEEZENET_OPS, {"model": "m"})
    int8, generic = branches(text)
    assert [re.search(r"resolver\.(\w+)\(\)\);", line).group(1) for line in generic] == [OPS[o["name"]].method for o in SQUEEZENET_OPS]
    for op, line in zip(SQUEEZENET_OPS, int8, strict=True):
        entry = OPS[op["name"]]
        argument = f"tflite::{entry.int8}()" if entry.int8 else ""
        assert f"resolver.{entry.method}({argument}));  // {op['name']} v2" in line
    assert '#define SQZ_MODEL_OPS "MUL ADD CONV_2D MAX_POOL_2D CONCATENATION MEAN SOFTMAX"' in text


def test_header_without_int8_only_ops_has_one_branch():
    text = codegen.op_resolver_header([{"name": "CONCATENATION", "version": 1}, {"name": "CUSTOM:TFLM_DECODE", "version": 1}], {})
    assert "#if" not in text.split("RegisterModelOps")[1]
    assert "resolver.AddConcatenation());" in text and "resolver.AddDecode());" in text
    assert '#define SQZ_MODEL_OPS "CONCATENATION CUSTOM:TFLM_DECODE"' in text


def test_header_refuses_an_op_tflm_lacks():
    with pytest.raises(ValueError, match="no TFLM resolver method for CUSTOM:Frobnicate"):
        codegen.op_resolver_header([{"name": "CUSTOM:Frobnicate", "version": 1}], {})


def test_kernel_stems():
    assert tflm_ops.kernel_stems(["CONV_2D", "CONCATENATION"]) == [
        "concatenation",
        "conv",
        "conv_common",
        "kernel_util",
        "micro_tensor_utils",
    ]
    assert tflm_ops.kernel_stems(["CONV_2D", "ABS"]) is None  # ABS's kernels not transcribed: compile every kernel
    with pytest.raises(KeyError):
        tflm_ops.kernel_stems(["CUSTOM:Frobnicate"])
    assert tflm_ops.int8_only_kernel_sets() == (tflm_ops.CMSIS_NN_SET,)


# ---- the firmware build reads it ---------------------------------------------------------------------------------

OLD_RESOLVER_HEADER = """// Generated by `python -m convert` before the op table.
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
constexpr int kModelOpCount = 1;
using ModelOpResolver = tflite::MicroMutableOpResolver<kModelOpCount>;
inline TfLiteStatus RegisterModelOps(ModelOpResolver& resolver) {
  TF_LITE_ENSURE_STATUS(resolver.AddConv2D());  // CONV_2D v3
  return kTfLiteOk;
}
"""


@pytest.mark.tflm
def test_a_package_from_before_the_op_table_stops_the_build_naming_the_fix(tmp_path):
    """mcu/scripts/tflm.py refuses a model_op_resolver.h without SQZ_MODEL_OPS before compiling anything, rather
    than building it without its int8-only kernels."""
    pio = ROOT / ".venv" / "bin" / "pio"
    if not pio.is_file():
        pytest.skip("needs PlatformIO in .venv: run scripts/setup.sh")
    require_tflm_tree("tflm")
    package = tmp_path / "firmware"
    package.mkdir()
    for name in (codegen.DATA_HEADER, codegen.DATA_SOURCE, codegen.SETTINGS_HEADER):
        (package / name).write_text("// not compiled: the build stops first\n")
    (package / codegen.RESOLVER_HEADER).write_text(OLD_RESOLVER_HEADER)
    environ = dict(os.environ, SQZ_MODEL_DIR=str(package), PLATFORMIO_BUILD_DIR=str(tmp_path / "build"))
    command = [str(pio), "run", "-d", str(ROOT / "mcu"), "-e", "qemu_stm32f405"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=environ)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output[-3000:]
    assert "has no SQZ_MODEL_OPS" in output and "re-run python -m convert" in output, output[-3000:]
    assert not list((tmp_path / "build").rglob("*.o"))
