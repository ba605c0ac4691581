"""Weight clustering (model.clustering, python -m model.cluster) and TFLM look-up-table compression
(convert.lut, python -m convert.compress): k-means invariants, a tiny synthetic model clustered,
converted and compressed end to end (smaller, bit-identical in TFLM), an unclustered model refused with
the fix named, a corrupt artifact refused, and the lossless check catching a changed value table."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_artifact import make_tiny_artifact

from convert import compress, lut, tflm_host
from convert.artifact import convert_model, load_artifact
from convert.errors import ConversionError
from model.clustering import kmeans_per_channel, lut_pays, snap, unique_per_channel

needs_tflm = pytest.mark.skipif(not tflm_host.available(), reason="tflite-micro is not installed (Linux x86_64 wheels only)")


# ---- clustering, no Keras needed ----


def test_kmeans_gives_at_most_k_values_per_output_channel_and_snap_is_idempotent():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 8, 5)).astype(np.float32)
    kernel[..., 4] = np.repeat([0.5, -0.5, 1.0], 24)[:72].reshape(3, 3, 8)  # a channel with fewer values than k
    segments = kmeans_per_channel(kernel, k=16)
    clustered = snap(kernel, segments, 16)
    counts = unique_per_channel(clustered)
    assert clustered.dtype == np.float32 and counts.max() <= 16 and counts[4] == 3
    assert np.array_equal(snap(clustered, segments, 16), clustered)  # means of equal values are those values
    assert np.abs(clustered - kernel).mean() < 0.15  # 16 levels approximate a unit normal closely


def test_clustering_skips_kernels_too_small_per_channel_for_a_lut_to_pay():
    assert not lut_pays(27, 4) and not lut_pays(64, 6) and not lut_pays(16, 1)  # conv1; a 1x1 conv of 64 inputs at 6 bits
    assert lut_pays(576, 4) and lut_pays(576, 6) and lut_pays(64, 4)


def test_unique_counts_follow_the_axis():
    array = np.array([[1, 1, 2], [3, 4, 5]], dtype=np.int8)
    assert list(lut.unique_counts(array, 0)) == [2, 3]
    assert list(lut.unique_counts(array, 1)) == [2, 2, 2]
    assert list(lut.unique_counts(array, None)) == [5]
    assert [lut.index_bits(u) for u in (1, 2, 3, 16, 17, 128)] == [1, 1, 2, 4, 5, 7]


def test_help_of_both_commands(capsys):
    from model import cluster

    for parser in (cluster.build_parser(), compress.build_parser()):
        with pytest.raises(SystemExit) as done:
            parser.parse_args(["--help"])
        assert done.value.code == 0
    text = capsys.readouterr().out
    assert "--bits" in text and "--max-bits" in text and "(default:" in text


# ---- end to end on a tiny synthetic model ----


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny SqueezeNet trained briefly on the synthetic data and converted (~25 s): tiny.keras, tiny/."""
    folder = tmp_path_factory.mktemp("compress")
    make_tiny_artifact(folder, epochs=5, calibration_count=32)
    return folder


@pytest.fixture(scope="module")
def clustered(tiny) -> Path:
    """tiny.keras clustered to 4 bits with one epoch of fine-tuning, then converted: the artifact folder."""
    from model import cluster

    argv = ["--model", str(tiny / "tiny.keras"), "--data", "synthetic", "--bits", "4", "--epochs", "1", "--batch-size", "32"]
    assert cluster.main(argv + ["--out", str(tiny), "--name", "tiny4"]) == 0
    convert_model(tiny / "tiny4.keras", "synthetic", tiny / "tiny4", calibration_count=32, progress=False)
    return tiny / "tiny4"


@pytest.mark.slow
def test_cluster_writes_a_model_with_at_most_k_values_per_channel_and_its_metadata(tiny, clustered):
    import keras

    model = keras.saving.load_model(tiny / "tiny4.keras", compile=False)
    meta = json.loads((tiny / "tiny4.json").read_text())
    assert isinstance(meta["test_accuracy"], float) and meta["test_images"] == 160
    c = meta["clustering"]
    assert c["bits"] == 4 and c["k"] == 16 and c["epochs"] == 1
    # Only kernels with enough weights per channel for a 16-value table to pay are clustered (conv1's 27 are not).
    clustered = {layer["layer"] for layer in c["layers"]}
    assert "fire9_expand3x3" in clustered and "conv1" in c["skipped_layers"] and len(clustered) + len(c["skipped_layers"]) == 26
    for layer in model.layers:
        if layer.name in clustered:  # checked on the saved file, not on what the command says
            assert unique_per_channel(keras.ops.convert_to_numpy(layer.kernel)).max() <= 16
    assert len(c["source_model"]["sha256"]) == 64 and meta["command"].startswith("python")
    assert c["snap_ms_per_batch"] > 0


@pytest.mark.slow
@needs_tflm
def test_compressed_artifact_is_smaller_and_bit_identical(clustered, tmp_path, capsys):
    out = tmp_path / "tiny4-lut"
    argv = ["--artifact", str(clustered), "--out", str(out), "--data", "synthetic", "--check-images", "8"]
    assert compress.main(argv) == 0, capsys.readouterr()
    printed = capsys.readouterr().out
    assert "model.tflite" in printed and "bit-identical" in printed

    source, result = load_artifact(clustered), load_artifact(out)  # load_artifact checks the SHA-256
    assert result["tflite_bytes"] < source["tflite_bytes"]
    assert {"name": "CUSTOM:TFLM_DECODE", "version": 1} in result["ops"]
    c = result["compression"]
    assert c["tensors_compressed"] >= 1 and c["check"]["bit_identical"] and c["source_artifact"]["sha256"] == source["sha256"]
    assert all(t["bits"] == 4 for t in c["tensors"] if t["compress"])
    assert c["weight_bytes_after"] < c["weight_bytes_before"]
    assert "resolver.AddDecode()" in (out / "firmware" / "model_op_resolver.h").read_text()
    assert "LUT weight compression" in (out / "report.md").read_text()

    # Independently of the command's own check: TFLM runs both models to the same bytes.
    inputs = np.random.default_rng(1).integers(-128, 128, size=(4, 32, 32, 3), dtype=np.int8)
    original = tflm_host.invoke((clustered / "model.tflite").read_bytes(), inputs)
    assert np.array_equal(original, tflm_host.invoke((out / "model.tflite").read_bytes(), inputs))


@pytest.mark.slow
@needs_tflm
def test_the_lossless_check_catches_a_changed_value_table(clustered, tmp_path):
    from tflite_micro.tensorflow.lite.micro.compression import model_editor

    from model.data import load_dataset

    original = (clustered / "model.tflite").read_bytes()
    compressed = lut.compress(original, lut.plan(original))
    # Change the first tensor's value tables in place (same length, same layout). Every entry, not one: a single
    # entry may be one that these 16 images never select, and then the outputs cannot differ.
    graph = model_editor.read(compressed).subgraphs[0]
    ancillary = next(bytes(t.buffer.data) for t in graph.tensors if (t.name or "").endswith("_ancillary"))
    at = compressed.find(ancillary)
    assert at > 0 and compressed.find(ancillary, at + 1) == -1
    tampered = bytearray(compressed)
    for i in range(at + lut.DCM_BYTES, at + len(ancillary)):
        tampered[i] ^= 0x40
    images = load_dataset("synthetic").test.images[:16]
    io = load_artifact(clustered)["input"]
    assert compress.check_identical(original, compressed, images, io)["bit_identical"]
    with pytest.raises(ConversionError, match="differ from the original"):
        compress.check_identical(original, bytes(tampered), images, io)


@pytest.mark.slow
def test_an_unclustered_model_is_refused_naming_the_fix(tiny, tmp_path, capsys):
    out = tmp_path / "never"
    assert compress.main(["--artifact", str(tiny / "tiny"), "--out", str(out)]) == compress.EXIT_NOTHING
    captured = capsys.readouterr()
    assert "nothing to compress" in captured.err and "python -m model.cluster" in captured.err
    assert "why" in captured.out  # the per-tensor table says why not
    assert not out.exists()
    assert not any(p.compress for p in lut.plan((tiny / "tiny" / "model.tflite").read_bytes()))


@pytest.mark.slow
def test_missing_or_corrupt_artifacts_are_refused(tiny, tmp_path, capsys):
    assert compress.main(["--artifact", str(tmp_path / "absent"), "--out", str(tmp_path / "o")]) == compress.EXIT_BAD_INPUT
    assert "no readable model.json" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(tiny / "tiny", broken)
    data = bytearray((broken / "model.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (broken / "model.tflite").write_bytes(bytes(data))
    assert compress.main(["--artifact", str(broken), "--out", str(tmp_path / "o")]) == compress.EXIT_BAD_INPUT
    assert "does not match the SHA-256" in capsys.readouterr().err
    (broken / "model.json").write_text("{not json")
    assert compress.main(["--artifact", str(broken), "--out", str(tmp_path / "o")]) == compress.EXIT_BAD_INPUT
    assert not (tmp_path / "o").exists()
