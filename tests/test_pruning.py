"""Fine-tuned magnitude pruning (model.pruning, experiments.prune; issue 17 item 1), without a dataset: the
polynomial schedule's values, masks that keep pruned weights exactly 0 through optimiser steps (and an optimiser
that moves them without the masks, so the check can fail), the density reached per layer, clustering of the
survivors with the zeros kept, and the clear errors for bad input."""

from __future__ import annotations

import numpy as np
import pytest

from model.pruning import (
    PruningError,
    cluster_pruned_model,
    density_summary,
    finish_pruning,
    kernels_from_zeros,
    layer_densities,
    make_mask_callback,
    make_prune_callback,
    polynomial_sparsity,
    prunable_kernels,
)


def small_model(seed: int = 0):
    """Conv2D 3x3x3 -> 8 (fan-in 27), Conv2D 3x3x8 -> 16 (fan-in 72), Dense 16 -> 4: small, but every rule shows."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(4, name="head")(x)
    return keras.Model(inputs, outputs, name="small")


def fit(model, callbacks, steps: int = 12):
    import keras

    rng = np.random.default_rng(0)
    images = rng.normal(size=(16 * steps, 8, 8, 3)).astype(np.float32)
    targets = keras.utils.to_categorical(rng.integers(0, 4, len(images)), 4)
    # Momentum and weight decay: both move a weight whose gradient is 0, so only the masks keep it at 0.
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9, weight_decay=1e-2), loss="categorical_crossentropy")
    model.fit(images, targets, batch_size=16, epochs=1, callbacks=callbacks, verbose=0)


def kernel(model, name: str) -> np.ndarray:
    import keras

    return keras.ops.convert_to_numpy(model.get_layer(name).kernel)


def test_the_schedule_is_zhu_and_gupta_cubic_from_zero_to_the_target():
    target = 0.67
    assert polynomial_sparsity(0, target, 0, 100) == 0.0
    assert polynomial_sparsity(-5, target, 0, 100) == 0.0  # before the begin step
    assert polynomial_sparsity(50, target, 0, 100) == pytest.approx(target * (1 - 0.5**3))  # 0.58625
    assert polynomial_sparsity(25, target, 0, 100) == pytest.approx(target * (1 - 0.75**3))
    assert polynomial_sparsity(100, target, 0, 100) == target
    assert polynomial_sparsity(250, target, 0, 100) == target  # fine-tunes at the target after the end step
    values = [polynomial_sparsity(step, target, 10, 90) for step in range(100)]
    assert values == sorted(values)  # never prunes back
    with pytest.raises(PruningError, match="must come after"):
        polynomial_sparsity(5, target, 10, 10)


def test_each_layer_gets_the_density_or_enough_weights_per_channel_or_its_override():
    model = small_model()
    # conv1: fan-in 27 < 32 kept -> dense; conv2: fan-in 72 -> max(0.33, 32/72); head: fan-in 16 -> dense
    assert layer_densities(model, 0.33) == {"conv1": 1.0, "conv2": pytest.approx(32 / 72), "head": 1.0}
    assert layer_densities(model, 0.33, min_kept=1) == {"conv1": 0.33, "conv2": 0.33, "head": 0.33}
    assert layer_densities(model, 0.33, min_kept=1, overrides={"head": 0.5})["head"] == 0.5


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5, float("nan")])
def test_a_density_outside_zero_to_one_is_refused_with_the_allowed_range(density):
    with pytest.raises(PruningError, match=r"need 0 < density <= 1"):
        layer_densities(small_model(), density)


def test_a_model_with_nothing_to_prune_is_refused():
    import keras

    inputs = keras.Input((4,))
    no_kernels = keras.Model(inputs, keras.layers.ReLU()(inputs), name="relu_only")
    with pytest.raises(PruningError, match="no Conv2D or Dense layer: nothing to prune"):
        layer_densities(no_kernels, 0.5)
    with pytest.raises(PruningError, match="leaves every layer dense.*--min-kept"):
        layer_densities(small_model(), 0.5, min_kept=1000)
    with pytest.raises(PruningError, match="conv9.*those are: conv1, conv2, head"):
        layer_densities(small_model(), 0.5, overrides={"conv9": 0.5})


def test_fine_tuned_pruning_reaches_each_layers_density_and_keeps_the_zeros_exact_through_every_step():
    import keras

    model = small_model()
    kernels = prunable_kernels(model, layer_densities(model, 0.25, min_kept=1))
    pruner = make_prune_callback(kernels, end_fraction=0.5, frequency=1)
    densities = []

    class Record(keras.callbacks.Callback):  # after the pruner: what the next optimiser step starts from
        def on_train_batch_end(self, batch, logs=None):
            zeros = [kernel(model, entry.layer_name)[~entry.mask] for entry in kernels]
            assert all((values == 0).all() for values in zeros), "a masked weight is not 0 after an optimiser step"
            densities.append(density_summary(kernels, model)["density_pruned_layers"])

    fit(model, [pruner, Record()], steps=12)
    assert densities == sorted(densities, reverse=True) and densities[0] > 0.5  # gradual, not one shot
    assert densities[5] == pytest.approx(densities[-1])  # the target by half-way (end_fraction), then fine-tuning
    finish_pruning(kernels)
    summary = density_summary(kernels, model)
    fan_ins = {"conv1": 27, "conv2": 72, "head": 16}
    for row in summary["layers"]:
        kept = max(1, round(0.25 * fan_ins[row["layer"]]))
        assert row["kept_per_channel"] == kept
        assert row["density"] == pytest.approx(kept / fan_ins[row["layer"]], abs=1e-4)
        per_channel = np.count_nonzero(kernel(model, row["layer"]).reshape(-1, row["shape"][-1]), axis=0)
        assert (per_channel == kept).all()


def test_without_the_masks_the_optimiser_moves_pruned_weights_and_with_them_it_does_not():
    from model.pruning import prune_model

    for keep_zeros in (False, True):
        model = small_model()
        prune_model(model, 0.5)
        masks = kernels_from_zeros(model)
        before = kernel(model, "conv2").copy()
        fit(model, [make_mask_callback(masks)] if keep_zeros else [], steps=3)
        after = kernel(model, "conv2")
        assert not np.array_equal(after[before != 0], before[before != 0])  # the survivors were trained
        assert (after[before == 0] == 0).all() == keep_zeros


def test_clustering_a_pruned_model_keeps_its_zeros_and_2_to_the_bits_values_per_channel():
    from model.clustering import check_clustered, snap_all
    from model.pruning import apply_masks, prune_model

    model = small_model()
    prune_model(model, 0.5)
    zeros_before = {name: kernel(model, name) == 0 for name in ("conv1", "conv2", "head")}
    clustered, skipped = cluster_pruned_model(model, bits=2, all_layers=True)
    assert not skipped and len(clustered) == 3
    check_clustered(clustered)  # <= 4 values per channel, the zero among them
    masks = kernels_from_zeros(model)
    fit(model, [], steps=2)  # an optimiser step moves everything...
    snap_all(clustered)
    apply_masks(masks)  # ...the snap and the masks bring it back: experiments.cluster's per-batch order
    check_clustered(clustered)
    for name, zeros in zeros_before.items():
        assert ((kernel(model, name) == 0) == zeros).all(), name
    with pytest.raises(PruningError, match="at least 2 values"):
        cluster_pruned_model(model, bits=0)


def test_the_command_refuses_bad_input_before_any_work(tmp_path, capsys):
    from experiments import prune
    from model import exit_codes

    model_file = tmp_path / "small.keras"
    small_model().save(model_file)
    assert prune.main(["--model", str(model_file), "--data", "synthetic", "--density", "1.5"]) == exit_codes.BAD_INPUT
    assert "need 0 < density <= 1" in capsys.readouterr().err
    late = ["--model", str(model_file), "--data", "synthetic", "--density", "0.5", "--end-fraction", "0"]
    assert prune.main(late) == exit_codes.BAD_INPUT
    assert "end fraction" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        prune.build_parser().parse_args(["--model", "m", "--data", "d", "--density", "0.5", "--layer-density", "conv1"])


def cifar_shaped_model():
    """32x32x3 -> 10 like the synthetic dataset: conv1 (fan-in 27), conv2 (144), conv3 1x1 (32), head (32)."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 127.5, -1.0)(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(32, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.Conv2D(32, 1, activation="relu", name="conv3")(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="head")(keras.layers.GlobalAveragePooling2D()(x))
    return keras.Model(inputs, outputs, name="cifar_shaped")


@pytest.mark.slow
def test_prune_then_cluster_writes_models_whose_zeros_survive_both_fine_tunes(tmp_path):
    import json

    import keras

    from experiments import cluster, prune
    from model.clustering import unique_per_channel

    cifar_shaped_model().save(tmp_path / "small.keras")
    recipe = ["--data", "synthetic", "--epochs", "1", "--batch-size", "32", "--out", str(tmp_path)]
    assert prune.main(["--model", str(tmp_path / "small.keras"), "--density", "0.33", "--frequency", "2", *recipe]) == 0
    meta = json.loads((tmp_path / "small_pruned33.json").read_text())["pruning"]
    assert meta["dense_layers"] == ["conv1", "conv3", "head"]  # fewer than --min-kept 32 weights per channel
    assert [(row["layer"], row["kept_per_channel"]) for row in meta["layers"]] == [("conv2", 48)]
    pruned = keras.saving.load_model(tmp_path / "small_pruned33.keras", compile=False)
    zeros = kernel(pruned, "conv2") == 0
    assert (np.count_nonzero(~zeros.reshape(-1, 32), axis=0) == 48).all()  # checked on the saved file

    assert cluster.main(["--model", str(tmp_path / "small_pruned33.keras"), "--bits", "4", *recipe]) == 0
    clustered = keras.saving.load_model(tmp_path / "small_pruned33_cluster4bit.keras", compile=False)
    assert ((kernel(clustered, "conv2") == 0) == zeros).all()
    assert unique_per_channel(kernel(clustered, "conv2")).max() <= 16  # the zero one of the 16
    meta = json.loads((tmp_path / "small_pruned33_cluster4bit.json").read_text())
    assert meta["clustering"]["zeros_kept"]["kernels"] == 1 and meta["pruning"]["layers"][0]["layer"] == "conv2"
