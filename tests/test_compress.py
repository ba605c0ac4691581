"""Weight clustering (model.clustering, python -m experiments.cluster) and TFLM look-up-table compression
(convert.lut, python -m convert.compress): k-means invariants, a tiny synthetic model clustered,
converted and compressed end to end (smaller, bit-identical in TFLM), an unclustered model refused with
the fix named, a corrupt artifact refused, and the lossless check catching a changed value table. Then
magnitude pruning (model.pruning) and TFLM's prune and Huffman formats through `--method best` on a pruned
tiny model, the decoded-tensor check catching one changed bit, and --method prune refusing an unpruned model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_artifact import make_tiny_artifact

from convert import compress, compress_check, lut, tflm_host
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
    from experiments import cluster

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
    from experiments import cluster

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
    assert compress_check.check_identical(original, compressed, images, io)["bit_identical"]
    with pytest.raises(ConversionError, match="differ from the original"):
        compress_check.check_identical(original, bytes(tampered), images, io)


@pytest.mark.slow
def test_an_unclustered_model_is_refused_naming_the_fix(tiny, tmp_path, capsys):
    out = tmp_path / "never"
    assert compress.main(["--artifact", str(tiny / "tiny"), "--out", str(out)]) == compress.EXIT_NOTHING
    captured = capsys.readouterr()
    assert "nothing to compress" in captured.err and "python -m experiments.cluster" in captured.err
    assert "why" in captured.out  # the per-tensor table says why not
    assert not out.exists()
    assert not any(p.compress for p in lut.plan((tiny / "tiny" / "model.tflite").read_bytes()))


@pytest.mark.slow
def test_split_filters_needs_a_board_and_writes_nothing_without_one(tiny, tmp_path, capsys):
    out = tmp_path / "never"
    argv = ["--artifact", str(tiny / "tiny"), "--out", str(out), "--board", "none", "--split-filters"]
    assert compress.main(argv) == compress.EXIT_BAD_INPUT
    assert "name the board (--board)" in capsys.readouterr().err and not out.exists()


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


# ---- TFLM's prune and Huffman formats (convert.decode_formats) through python -m convert.compress ----


@pytest.fixture(scope="module")
def pruned(tiny) -> Path:
    """tiny.keras pruned by magnitude to 33% density (model.pruning, no fine-tuning), converted: the artifact folder."""
    import keras

    from model.pruning import prune_model

    model = keras.saving.load_model(tiny / "tiny.keras", compile=False)
    assert 0.3 < prune_model(model, 0.33)["density"] < 0.36
    model.save(tiny / "tiny_pruned.keras")
    convert_model(tiny / "tiny_pruned.keras", "synthetic", tiny / "tiny_pruned", calibration_count=32, progress=False)
    return tiny / "tiny_pruned"


@pytest.mark.slow
@pytest.mark.tflm
@needs_tflm
def test_a_pruned_artifact_compresses_in_the_decode_formats_bit_identical(pruned, tmp_path, capsys):
    out = tmp_path / "tiny_pruned-best"
    argv = ["--artifact", str(pruned), "--out", str(out), "--method", "best", "--board", "none", "--data", "synthetic"]
    argv += ["--check-images", "4"]
    assert compress.main(argv) == 0, capsys.readouterr()
    source, result = load_artifact(pruned), load_artifact(out)
    c = result["compression"]
    assert result["tflite_bytes"] < source["tflite_bytes"] and c["weight_bytes_after"] < 0.7 * c["weight_bytes_before"]
    assert c["format"] == "best" and "prune" in c["formats_used"]  # small tensors: no Huffman table pays; tested alone below
    assert c["check"]["bit_identical"] and c["check"]["decoded_tensors"]["tensors"] == c["tensors_compressed"]
    assert "DECODE formats (best)" in (out / "report.md").read_text()

    # Huffman alone, independently of the command's checks: TFLM runs both models to the same bytes.
    from convert.decode_formats import plan as formats

    original = (pruned / "model.tflite").read_bytes()
    plans, encodings = formats.plan(original, ("huffman",))
    assert all(p.method == "huffman" for p in plans if p.compress) and sum(p.compress for p in plans) >= 1
    huffman_model = formats.apply(original, plans, encodings)
    inputs = np.random.default_rng(1).integers(-128, 128, size=(3, 32, 32, 3), dtype=np.int8)
    assert np.array_equal(tflm_host.invoke(original, inputs), tflm_host.invoke(huffman_model, inputs))


@pytest.mark.slow
@pytest.mark.tflm
@needs_tflm
def test_the_decoded_tensor_check_catches_a_changed_prune_value_table(pruned):
    from convert.decode_formats import plan as formats

    original = (pruned / "model.tflite").read_bytes()
    plans, encodings = formats.plan(original, ("prune",))
    index, (data, ancillary) = next((i, e) for i, e in encodings.items() if len(e[1]) > 64)
    compressed = formats.apply(original, plans, encodings)
    image = np.zeros((1, 32, 32, 3), np.int8)
    assert compress_check.check_decoded_tensors(original, compressed, plans, image)["bit_identical"]
    at = compressed.find(ancillary)
    assert at > 0
    tampered = bytearray(compressed)
    tampered[at + lut.DCM_BYTES + 3] ^= 0x01  # one kept value, one bit
    with pytest.raises(ConversionError, match="other values than the original"):
        compress_check.check_decoded_tensors(original, bytes(tampered), plans, image)


@pytest.mark.slow
def test_prune_on_an_unpruned_model_is_refused_and_nothing_written(tiny, tmp_path, capsys):
    out = tmp_path / "never"
    assert compress.main(["--artifact", str(tiny / "tiny"), "--out", str(out), "--method", "prune"]) == compress.EXIT_NOTHING
    captured = capsys.readouterr()
    assert "nothing to compress with --method prune" in captured.err and "prune the model first" in captured.err
    assert "Huffman B" in captured.out and not out.exists()


def test_magnitude_pruning_keeps_the_largest_weights_of_each_channel_and_sharing_keeps_the_zeros():
    import keras

    from model.clustering import unique_per_channel
    from model.pruning import cluster_survivors, prune_kernel, prune_model

    kernel = np.random.default_rng(0).normal(size=(3, 3, 8, 4)).astype(np.float32)
    pruned = prune_kernel(kernel, 0.33)
    flat, original = pruned.reshape(-1, 4), kernel.reshape(-1, 4)
    assert list((flat != 0).sum(axis=0)) == [24] * 4  # round(0.33 x 72) per output channel
    for c in range(4):  # every kept weight is at least as large as every pruned one
        assert np.abs(original[flat[:, c] != 0, c]).min() >= np.abs(original[flat[:, c] == 0, c]).max()
    with pytest.raises(ValueError, match="density"):
        prune_kernel(kernel, 0.0)

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 16)), keras.layers.Conv2D(6, 3, name="conv")])
    assert abs(prune_model(model, 0.33)["density"] - 0.33) < 0.01
    cluster_survivors(model, 2)
    values = keras.ops.convert_to_numpy(model.get_layer("conv").kernel)
    # zero and at most 3 survivor values: a 2-bit index (the survivors once took 2**bits values, 5 with the zero)
    assert unique_per_channel(values).max() <= 2**2 and abs(np.count_nonzero(values) / values.size - 0.33) < 0.01
    prune_model(model, 0.33)
    cluster_survivors(model, 3, per_layer=True)  # one codebook for the kernel, as Deep Compression shares weights
    values = keras.ops.convert_to_numpy(model.get_layer("conv").kernel)
    assert len(np.unique(values)) <= 2**3 and unique_per_channel(values).max() > 1
