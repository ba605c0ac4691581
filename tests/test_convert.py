"""convert/: the artifact contract, the firmware package and its round trip, the report, an artifact replaced whole.

One small SqueezeNet, trained for an epoch on the synthetic dataset, is converted once per session
(tests/convert_fixtures.py); these tests read that artifact. Pre-flight checks, the pieces and bad input are in
tests/test_convert_checks.py. Nothing here needs the CIFAR-10 folder or the pretrained model.
"""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest
from conftest import require_tflm_tree
from convert_fixtures import leftovers

from convert import artifact as artifact_module
from convert import boards, codegen, cxx_check, quantize
from convert import inspect_tflite as inspect
from convert.tflm_ops import resolver_method
from model import preprocessing

pytest_plugins = ["convert_fixtures"]  # tiny_keras, tiny_artifact: made once per session


# --- the artifact contract -------------------------------------------------------------------------------


def test_artifact_folder_has_every_file(tiny_artifact):
    for name in ("model.tflite", "model.json", "calibration_indices.json", "report.md", "report.json"):
        assert (tiny_artifact / name).is_file(), name
    for name in codegen.FILES:
        assert (tiny_artifact / "firmware" / name).is_file(), name
    assert not list(tiny_artifact.parent.glob(".tiny.*")), "temporary folders left behind"


def test_model_json_follows_the_contract(tiny_artifact):
    a = artifact_module.load_artifact(tiny_artifact)  # also checks the SHA-256 of model.tflite
    data = (tiny_artifact / "model.tflite").read_bytes()
    assert a["format"] == "squeezenet-mcu/artifact/1" and a["name"] == "tiny" and a["tflite_file"] == "model.tflite"
    assert a["sha256"] == hashlib.sha256(data).hexdigest() and a["tflite_bytes"] == len(data)
    assert a["converter"]["tensorflow"] and a["converter"]["keras"] and a["converter"]["settings"]["per_channel_weights"]
    for kind in ("input", "output"):
        assert set(a[kind]) == {"name", "shape", "dtype", "scale", "zero_point"} and a[kind]["dtype"] == "int8"
    assert a["input"]["shape"] == [1, 32, 32, 3] and a["output"]["shape"] == [1, 10]
    assert a["labels"] == [f"class{i}" for i in range(10)] and a["preprocessing"] == preprocessing.SPEC
    assert {op["name"] for op in a["ops"]} >= {"CONV_2D", "CONCATENATION", "MAX_POOL_2D", "SOFTMAX"}
    assert all(isinstance(op["version"], int) for op in a["ops"])
    assert a["parameters"] == sum(row["params"] for row in a["layers"]) and a["macs"] == sum(row["macs"] for row in a["layers"])
    assert [row["block"] for row in a["layers"]][:3] == ["conv1", "maxpool1", "fire2"]
    arena = a["arena"]
    assert arena["total"] == arena["head"] + arena["tail"] > 0 and arena["measured_by"] == "tflite-micro host interpreter"
    assert a["arena_bytes_for_firmware"] == boards.arena_for_firmware(arena["total"]) > arena["total"]
    assert a["arena_bytes_for_firmware"] % 16 == 0
    cal = a["calibration"]
    assert cal["split"] == "train" and cal["count"] == 100 and cal["seed"] == 0 and cal["indices_file"] == "calibration_indices.json"
    assert cal["dataset"]["name"] == "synthetic" and len(cal["dataset"]["fingerprint"]) == 64
    stored = json.loads((tiny_artifact / "calibration_indices.json").read_text())
    assert stored["indices"] == quantize.calibration_indices(480, 100, 0)
    assert a["source_model"]["sha256"] and a["source_model"]["path"].endswith("tiny.keras")
    assert a["board"]["chosen"] is None and {v["board"] for v in a["board"]["verdicts"]} == set(boards.BOARDS)
    assert all(check["passed"] for check in a["checks"])
    assert a["created"] and a["git_sha"]


def test_quantisation_is_read_from_the_model_and_matches_litert(tiny_artifact):
    """model.json's scale and zero point are the flatbuffer's, as an independent reader (LiteRT) sees them."""
    from ai_edge_litert.interpreter import Interpreter

    a = json.loads((tiny_artifact / "model.json").read_text())
    interpreter = Interpreter(model_path=str(tiny_artifact / "model.tflite"))
    for kind, details in (("input", interpreter.get_input_details()[0]), ("output", interpreter.get_output_details()[0])):
        scale, zero_point = details["quantization"]
        assert a[kind]["scale"] == pytest.approx(scale, rel=0, abs=0) and a[kind]["zero_point"] == zero_point
        assert details["dtype"] == np.int8 and a[kind]["shape"] == list(details["shape"])


def test_every_weight_is_int8_per_channel(tiny_artifact):
    info = inspect.read(tiny_artifact / "model.tflite")
    convs = [op for op in info.operators if op.op == "CONV_2D"]
    assert convs
    for op in convs:
        weights = info.tensors[op.inputs[1]]
        assert weights.dtype == "int8" and len(weights.scales) == weights.shape[0] > 1
    assert not {t.dtype for t in info.tensors} & {"float32", "float16"}


# --- the firmware package ------------------------------------------------------------------------------------


def test_generated_array_round_trips_to_the_exact_tflite(tiny_artifact):
    data = (tiny_artifact / "model.tflite").read_bytes()
    source = (tiny_artifact / "firmware" / "model_data.cc").read_text()
    header = (tiny_artifact / "firmware" / "model_data.h").read_text()
    parsed = codegen.parse_model_data(source)
    assert parsed == data
    digest = hashlib.sha256(parsed).hexdigest()
    assert codegen.parse_sha256_define(header) == digest == json.loads((tiny_artifact / "model.json").read_text())["sha256"]
    sha_bytes = re.search(r"g_model_sha256\[32\] = \{([^}]*)\}", source).group(1)
    assert bytes(int(t, 0) for t in sha_bytes.replace(",", " ").split()).hex() == digest


def test_model_data_is_aligned_const_with_a_section_macro(tiny_artifact):
    source = (tiny_artifact / "firmware" / "model_data.cc").read_text()
    header = (tiny_artifact / "firmware" / "model_data.h").read_text()
    assert "alignas(16) const unsigned char g_model_data[] MODEL_DATA_SECTION = {" in source
    assert "const unsigned int g_model_data_size" in source
    assert "#ifndef MODEL_DATA_SECTION\n#define MODEL_DATA_SECTION\n#endif" in header
    assert header.count("#ifndef SQUEEZENET_MCU_MODEL_DATA_H_") == 1 and "#endif  // SQUEEZENET_MCU_MODEL_DATA_H_" in header
    assert source.startswith("// Generated by `python -m convert`") and "SHA-256" in source.splitlines()[1]


def test_settings_carry_the_model_quantisation_and_labels(tiny_artifact):
    a = json.loads((tiny_artifact / "model.json").read_text())
    text = (tiny_artifact / "firmware" / "model_settings.h").read_text()

    def constant(name):
        return re.search(rf"\b{name} = ([^;]+);", text).group(1)

    assert np.float32(constant("kInputScale").rstrip("f")) == np.float32(a["input"]["scale"])
    assert int(constant("kInputZeroPoint")) == a["input"]["zero_point"]
    assert np.float32(constant("kOutputScale").rstrip("f")) == np.float32(a["output"]["scale"])
    assert int(constant("kOutputZeroPoint")) == a["output"]["zero_point"]
    assert int(constant("kTensorArenaBytes")) == a["arena_bytes_for_firmware"]
    assert (int(constant("kInputHeight")), int(constant("kInputWidth")), int(constant("kOutputClasses"))) == (32, 32, 10)
    assert re.findall(r'^\s+"([^"]*)",$', text, re.M) == a["labels"]


def test_op_resolver_registers_exactly_the_model_ops(tiny_artifact):
    a = json.loads((tiny_artifact / "model.json").read_text())
    text = (tiny_artifact / "firmware" / "model_op_resolver.h").read_text()
    registered = re.findall(r"resolver\.(Add\w+)\(\)", text.split("#else")[-1])  # the generic branch
    assert registered == [resolver_method(op["name"]) for op in a["ops"]]
    assert f"constexpr int kModelOpCount = {len(a['ops'])};" in text
    assert '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"' in text


@pytest.mark.skipif(not cxx_check.compiler_available(), reason=f"{cxx_check.COMPILER} is not installed (apt install gcc-arm-none-eabi)")
def test_generated_cpp_compiles_with_warnings_as_errors(tiny_artifact):
    firmware = tiny_artifact / "firmware"
    for defines in ((), ('MODEL_DATA_SECTION=__attribute__((section(".rodata.model")))',)):
        results = cxx_check.compile_package(firmware, defines=defines)
        assert [r.what for r in results] == ["model_data.cc", "model_settings.h"]
        for result in results:
            assert result.ok, f"{result.what} {defines}:\n{' '.join(result.command)}\n{result.output}"


@pytest.mark.tflm
@pytest.mark.skipif(not cxx_check.compiler_available(), reason=f"{cxx_check.COMPILER} is not installed (apt install gcc-arm-none-eabi)")
def test_op_resolver_compiles_against_tflm(tiny_artifact):
    root = require_tflm_tree()
    result = cxx_check.compile_package(tiny_artifact / "firmware", tflm_root=root)[-1]
    assert result.what == "model_op_resolver.h" and result.ok, f"{' '.join(result.command)}\n{result.output}"


def test_codegen_literals():
    assert codegen.c_string('a"b\\c') == '"a\\"b\\\\c"'
    assert codegen.c_string("café\n") == '"caf\\303\\251\\012"'
    for value in (1.0, 0.00390625, 1 / 127.5, 0.0123456789, 3e-9):
        literal = codegen.c_float(value)
        assert literal.endswith("f") and np.float32(literal[:-1]) == np.float32(value)
    with pytest.raises(ValueError, match="no g_model_data"):
        codegen.parse_model_data("int x = 1;")


# --- the report ------------------------------------------------------------------------------------------------


def test_report_reads_well(tiny_artifact):
    text = (tiny_artifact / "report.md").read_text()
    for heading in (
        "# Conversion report: tiny",
        "## Model",
        "## Parameters and MACs per layer",
        "## Ops",
        "## Tensor arena",
        "## Boards",
        "## Pre-flight checks",
    ):
        assert heading in text
    for board in boards.BOARDS.values():
        assert board.name in text
    assert "fire9" in text and "CONV_2D" in text and "head" in text and "tail" in text and "FAILED" not in text
    report = json.loads((tiny_artifact / "report.json").read_text())
    a = json.loads((tiny_artifact / "model.json").read_text())
    assert report["tflite_bytes"] == a["tflite_bytes"] and report["arena"]["head"] == a["arena"]["head"]
    assert report["op_histogram"]["CONV_2D"] == 26 and len(report["boards"]["verdicts"]) == len(boards.BOARDS)
    assert report["layers"] == a["layers"]


# --- an artifact replaced whole ---------------------------------------------------------------------------------


def test_an_existing_artifact_is_replaced_whole_from_stored_indices(tiny_artifact, tiny_keras, tmp_path):
    import shutil

    out = tmp_path / "tiny"
    shutil.copytree(tiny_artifact, out)
    (out / "stale.txt").write_text("from an older conversion")
    previous = json.loads((out / "model.json").read_text())
    stored = tmp_path / "indices.json"
    shutil.copy(tiny_artifact / "calibration_indices.json", stored)
    result = artifact_module.convert_model(tiny_keras, "synthetic", out, calibration_indices=stored, progress=False)
    assert not (out / "stale.txt").exists() and (out / "model.json").is_file()
    assert result["calibration"]["count"] == 100
    assert json.loads((out / "calibration_indices.json").read_text())["indices"] == json.loads(stored.read_text())["indices"]
    # Same model, same calibration images: the converter is deterministic, so are the bytes.
    assert result["sha256"] == previous["sha256"]
    assert not leftovers(tmp_path)
