"""convert/ on the real models: the pretrained CIFAR-10 model, and ImageNet-shaped SqueezeNet v1.0 and v1.1.

The ImageNet-shaped models are untrained and calibrated on synthetic 224x224 images: their accuracy means
nothing, their size, ops, arena and board fit are the paper's architecture's.
"""

from __future__ import annotations

import json

import pytest

from convert import artifact as artifact_module
from convert import codegen, cxx_check, tflm_host
from convert.__main__ import main

needs_tflm = pytest.mark.skipif(not tflm_host.available(), reason="tflite-micro is not installed (Linux x86_64 wheels only)")
CIFAR10_LABELS = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _round_trips(out) -> bool:
    data = (out / "model.tflite").read_bytes()
    return codegen.parse_model_data((out / "firmware" / "model_data.cc").read_text()) == data


@needs_tflm
@pytest.mark.slow
@pytest.mark.data
def test_pretrained_cifar_model(pretrained_model, cifar10_dir, tmp_path):
    """The issue's command on the pretrained model: 500 calibration images, within 60 s, fits the QEMU board."""
    out = tmp_path / "squeezenet_cifar10"
    args = ["--model", str(pretrained_model), "--data", str(cifar10_dir), "--out", str(out), "--board", "netduinoplus2", "--quiet"]
    assert main(args) == 0
    a = artifact_module.load_artifact(out)
    assert a["timings_s"]["total"] < 60, a["timings_s"]
    assert a["calibration"]["count"] == 500 and a["calibration"]["dataset"]["name"] == "CIFAR-10 (JPEG copy)"
    assert a["labels"] == CIFAR10_LABELS and a["input"]["shape"] == [1, 32, 32, 3] and a["output"]["shape"] == [1, 10]
    assert a["source_model"]["metadata"]["name"] == "squeezenet_cifar10"
    assert all(check["passed"] for check in a["checks"]) and a["board"]["chosen"] == "netduinoplus2"
    assert _round_trips(out)
    if cxx_check.compiler_available():
        for result in cxx_check.compile_package(out / "firmware", tflm_root=cxx_check.find_tflm_root()):
            assert result.ok, f"{result.what}:\n{result.output}"


@needs_tflm
@pytest.mark.slow
@pytest.mark.parametrize(
    ("version", "parameters", "size_range"),
    [("1.0", 1_248_424, (1_300_000, 1_420_000)), ("1.1", 1_235_496, (1_290_000, 1_410_000))],
)
def test_imagenet_shaped_squeezenet(version, parameters, size_range, tmp_path):
    import keras

    from model.data import synthetic_dataset
    from model.squeezenet import squeezenet

    keras.utils.set_random_seed(0)
    path = tmp_path / f"squeezenet_v{version}.keras"
    squeezenet(version, input_size=224, classes=1000).save(path)
    data = synthetic_dataset(size=224, train_per_class=1, test_per_class=1)  # 10 images of 224x224
    out = tmp_path / "build" / f"v{version}"
    labels = [f"imagenet{i}" for i in range(1000)]
    a = artifact_module.convert_model(path, data, out, labels=labels, calibration_count=10, board="mps2-an500", progress=False)

    assert a["parameters"] == parameters
    assert size_range[0] < a["tflite_bytes"] < size_range[1]
    assert {op["name"] for op in a["ops"]} == {"CONV_2D", "MAX_POOL_2D", "CONCATENATION", "MEAN", "SOFTMAX"}
    assert a["op_histogram"]["CONV_2D"] == 26 and a["op_histogram"]["CONCATENATION"] == 8
    assert a["input"]["shape"] == [1, 224, 224, 3] and a["output"]["shape"] == [1, 1000]
    # A 224x224 SqueezeNet needs about 1 to 1.5 MB of activations: of the supported boards only the
    # emulated AN500, with 4 MiB of RAM, holds it.
    assert 900_000 < a["arena"]["total"] < 1_700_000
    fits_ram = {v["board"] for v in a["board"]["verdicts"] if v["fits_ram"]}
    assert fits_ram == {"mps2-an500"}
    assert _round_trips(out)
    report = json.loads((out / "report.json").read_text())
    assert report["macs"] == a["macs"] > 200_000_000
