"""convert/: the artifact contract, the firmware package and its round trip, pre-flight checks, bad input.

One small SqueezeNet, trained for an epoch on the synthetic dataset, is converted once per session;
most tests read that artifact. Nothing here needs the CIFAR-10 folder or the pretrained model.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import require_tflm_tree

from convert import artifact as artifact_module
from convert import boards, codegen, cxx_check, preflight, quantize, tflm_host
from convert import inspect_tflite as inspect
from convert.__main__ import main
from convert.errors import BadInputError, PreflightError
from convert.inspect_tflite import OperatorInfo, TensorInfo, TfliteInfo
from convert.tflm_ops import resolver_method
from model import exit_codes, preprocessing

TINY = dict(input_size=32, classes=10, base_e=16, incr_e=16, conv1_filters=8, batch_norm=True)
needs_tflm = pytest.mark.skipif(not tflm_host.available(), reason="tflite-micro is not installed (Linux x86_64 wheels only)")


def tiny_model(path: Path, *, train: bool = True, dead_logits: bool = False) -> Path:
    """A small SqueezeNet v1.1 saved to `path`; trained one epoch on synthetic data so its softmax scale is sane."""
    import keras

    from model.data import load_dataset
    from model.squeezenet import squeezenet

    keras.utils.set_random_seed(0)
    model = squeezenet("1.1", **TINY)
    if train:
        data = load_dataset("synthetic")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(data.train.images.astype("float32"), data.train.labels, epochs=1, batch_size=32, verbose=0)
    if dead_logits:  # constant logits: the calibrated softmax input scale collapses (TFLM aborts on it)
        conv10 = model.get_layer("conv10")
        conv10.set_weights([np.zeros_like(w) for w in conv10.get_weights()])
    model.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_keras(tmp_path_factory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("models") / "tiny.keras")


@pytest.fixture(scope="session")
def tiny_artifact(tiny_keras, tmp_path_factory) -> Path:
    if not tflm_host.available():
        pytest.skip("tflite-micro is not installed: the artifact needs the TFLM host arena")
    out = tmp_path_factory.mktemp("build") / "tiny"
    artifact_module.convert_model(tiny_keras, "synthetic", out, progress=False, calibration_count=100)
    return out


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


# --- pieces ----------------------------------------------------------------------------------------------------


def test_calibration_indices_are_seeded_distinct_and_sorted():
    a = quantize.calibration_indices(50_000, 500, 0)
    assert a == quantize.calibration_indices(50_000, 500, 0) != quantize.calibration_indices(50_000, 500, 1)
    assert len(set(a)) == 500 and a == sorted(a) and 0 <= a[0] and a[-1] < 50_000
    assert quantize.calibration_indices(10, 500, 0) == list(range(10))  # a small split is used whole
    with pytest.raises(BadInputError):
        quantize.calibration_indices(10, 0, 0)


def test_board_table_and_verdicts():
    assert list(boards.BOARDS) == ["netduinoplus2", "mps2-an500", "nucleo-h743zi", "nucleo-f767zi", "esp32", "esp32-s3"]
    assert boards.get("NUCLEO_H743ZI").key == "nucleo-h743zi" and boards.get("esp32s3").key == "esp32-s3"
    with pytest.raises(BadInputError, match="supported: netduinoplus2"):
        boards.get("arduino-uno")
    board = boards.get("netduinoplus2")
    assert boards.fit(board, board.model_budget, board.arena_budget)["fits"]
    verdict = boards.fit(board, board.model_budget + 1, board.arena_budget + 2)
    assert not verdict["fits_flash"] and not verdict["fits_ram"]
    assert boards.verdict_text(verdict) == "does not fit: flash short by 1 B, RAM short by 2 B"
    # The margin: 5 % with a 4 KiB floor, 16-byte aligned.
    assert boards.arena_for_firmware(102_816) == 107_968
    assert boards.arena_for_firmware(1000) == 5104


def _graph(ops: list[tuple[str, list[int], list[int], dict]], tensors: list[TensorInfo]) -> TfliteInfo:
    names = list(dict.fromkeys(op for op, *_ in ops))
    operators = [OperatorInfo(i, op, 1, tuple(ins), tuple(outs), opts) for i, (op, ins, outs, opts) in enumerate(ops)]
    return TfliteInfo([{"name": n, "version": 1} for n in names], operators, tensors, [0], [len(tensors) - 1], 1, "")


def _t(index, dtype="int8", scale=0.5, zero_point=-1, shape=(1, 4), constant=False) -> TensorInfo:
    return TensorInfo(index, f"model/t{index}", shape, dtype, (scale,), (zero_point,), 0, constant)


def test_preflight_catches_float_hybrid_unknown_ops_and_concat_mismatch():
    tensors = [_t(0), TensorInfo(1, "model/f1", (1, 4), "float32"), _t(2, constant=True), TensorInfo(3, "model/f3", (1, 4), "float32")]
    tensors += [_t(4), _t(5, scale=0.25), _t(6)]
    info = _graph(
        [
            ("DEQUANTIZE", [0], [1], {}),  # float op
            ("FULLY_CONNECTED", [1, 2], [3], {}),  # hybrid: float activations, int8 weights
            ("CUSTOM:Frobnicate", [0], [4], {}),  # no TFLM kernel
            ("CONCATENATION", [4, 5], [6], {}),  # input 5 has another scale
        ],
        tensors,
    )
    checks = {c.name: c for c in preflight.static_checks(info)}
    assert "#0 DEQUANTIZE (f1) is a float<->int8 conversion" in checks["no_float_ops"].detail
    assert "#1 FULLY_CONNECTED (f3) is a hybrid op" in checks["no_float_ops"].detail
    assert not checks["tflm_ops"].passed and "CUSTOM:Frobnicate" in checks["tflm_ops"].detail
    assert not checks["concat_quantization"].passed and "t5" in checks["concat_quantization"].detail
    with pytest.raises(PreflightError) as raised:
        preflight.require(list(checks.values()))
    assert {name for name, _ in raised.value.failures} == {"no_float_ops", "tflm_ops", "concat_quantization"}
    assert "must not be flashed" in str(raised.value)


def test_preflight_catches_softmax_scales_tflm_aborts_on():
    info = _graph([("SOFTMAX", [0], [1], {"beta": 1.0})], [_t(0, scale=7.8e-9), _t(1, scale=1 / 256, zero_point=-128)])
    check = preflight.check_softmax(info)
    assert not check.passed and "untrained" in check.detail
    fine = replace(info, tensors=[_t(0, scale=0.05), _t(1, scale=1 / 256, zero_point=-128)])
    assert preflight.check_softmax(fine).passed


def test_preflight_refuses_a_real_float_model(tmp_path):
    import tensorflow as tf

    from model.squeezenet import squeezenet

    model = squeezenet("1.1", **TINY)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)  # no quantisation at all
    checks = {c.name: c for c in preflight.static_checks(inspect.read(converter.convert()))}
    assert not checks["int8_io"].passed and not checks["no_float_ops"].passed
    assert "CONV_2D" in checks["no_float_ops"].detail


def test_inspect_refuses_what_is_not_tflite(tmp_path):
    with pytest.raises(ValueError, match="TFL3"):
        inspect.read(b"not a model at all")


# --- the CLI and bad input -------------------------------------------------------------------------------------


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert "--board" in text and "--calibration-count" in text and "netduinoplus2" in text


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(".")] if folder.exists() else []


def test_missing_model_file(tmp_path, capsys):
    assert main(["--model", str(tmp_path / "nope.keras"), "--data", "synthetic", "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "no such model file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_not_a_keras_file(tmp_path, capsys):
    fake = tmp_path / "model.keras"
    fake.write_text("hello")
    assert main(["--model", str(fake), "--data", "synthetic", "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "not a Keras 3 .keras archive" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and not _leftovers(tmp_path)


def test_output_path_that_is_a_file(tiny_keras, tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("precious")
    assert main(["--model", str(tiny_keras), "--data", "synthetic", "--out", str(out), "--quiet"]) == 2
    assert "output path is a file" in capsys.readouterr().err
    assert out.read_text() == "precious"


def test_output_folder_that_is_not_an_artifact(tiny_keras, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["--model", str(tiny_keras), "--data", "synthetic", "--out", str(out), "--quiet"]) == 2
    assert "not a conversion artifact" in capsys.readouterr().err and (out / "notes.txt").is_file()


def test_dataset_image_size_differs_from_the_model_input(tmp_path, capsys):
    import keras

    from model.squeezenet import squeezenet

    path = tmp_path / "m40.keras"
    squeezenet("1.1", **(TINY | {"input_size": 40})).save(path)
    keras.backend.clear_session()
    assert main(["--model", str(path), "--data", "synthetic", "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "32x32x3 images but the model takes 40x40x3" in err
    assert not (tmp_path / "out").exists() and not _leftovers(tmp_path)


def test_unknown_board_and_wrong_label_count(tiny_keras, tmp_path, capsys):
    assert main(["--model", str(tiny_keras), "--data", "synthetic", "--out", str(tmp_path / "a"), "--board", "uno", "--quiet"]) == 2
    assert "unknown board 'uno'" in capsys.readouterr().err
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    assert main(["--model", str(tiny_keras), "--data", "synthetic", "--out", str(tmp_path / "b"), "--labels", str(labels), "--quiet"]) == 2
    assert "2 labels from --labels but the model has 10 outputs" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@needs_tflm
def test_untrained_softmax_is_refused_before_tflm_runs(tmp_path, capsys):
    path = tiny_model(tmp_path / "dead.keras", train=False, dead_logits=True)
    out = tmp_path / "build" / "dead"
    code = main(["--model", str(path), "--data", "synthetic", "--out", str(out), "--calibration-count", "20", "--quiet"])
    assert code == exit_codes.REFUSED
    err = capsys.readouterr().err
    assert "softmax_quantization" in err and "TFLM would abort" in err
    assert not out.exists() and not _leftovers(out.parent)


@needs_tflm
def test_a_model_that_does_not_fit_the_chosen_board_is_refused(tiny_keras, tmp_path, monkeypatch):
    small = replace(boards.BOARDS["netduinoplus2"], flash=boards.BOARDS["netduinoplus2"].flash_reserved + 1000)
    monkeypatch.setitem(boards.BOARDS, "netduinoplus2", small)
    out = tmp_path / "build" / "tiny"
    with pytest.raises(PreflightError) as raised:
        artifact_module.convert_model(tiny_keras, "synthetic", out, board="netduinoplus2", calibration_count=20, progress=False)
    assert [name for name, _ in raised.value.failures] == ["board_fit"]
    assert "flash short by" in str(raised.value)
    assert not out.exists() and not _leftovers(out.parent)


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
    assert not _leftovers(tmp_path)


def test_a_calibration_indices_file_of_another_dataset_is_refused(tiny_keras, tmp_path):
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"indices": [1, 2], "dataset": {"fingerprint": "0" * 64}}))
    with pytest.raises(BadInputError, match="indices into dataset"):
        artifact_module.convert_model(tiny_keras, "synthetic", tmp_path / "x", calibration_indices=wrong, progress=False)
    assert not (tmp_path / "x").exists()
