"""Magnitude pruning per output channel, fine-tuned or not, and k-means weight sharing of what survives: the
first two steps of Deep Compression (Han et al., 2016) as the SqueezeNet paper applies them (Table 2: 33% density).

Why per output channel: the int8 converter quantises each output channel with its own scale, so magnitudes
compare within a channel, not across; every channel of a layer keeps the same count, round(density x fan-in).

- `prune_model(model, density)`: one shot, no fine-tuning (experiments.compression_sizes, tests: sizes only).
- Fine-tuned pruning (experiments.prune): `layer_densities` gives each layer its target, `prunable_kernels`
  holds each kernel's mask, `make_prune_callback` raises the sparsity along Zhu & Gupta's (2017) polynomial
  schedule (`polynomial_sparsity`, the one TF-MOT uses; TF-MOT does not support Keras 3) and re-applies the
  masks after every optimiser step, so a pruned weight is exactly 0 when the next batch runs and when saved.
- `cluster_pruned_model`: per-channel k-means of the survivors to 2**bits - 1 values, the zeros the 2**bits-th
  value, so a channel still holds at most 2**bits values (LUT compression at `bits`); experiments.cluster
  fine-tunes the centroids with the masks re-applied after each snap.
The int8 converter quantises weights symmetrically (zero point 0), so a pruned weight is exactly the int8 0
that TFLM's prune format skips. Everything here is numpy plus Keras variables: any Keras 3 backend.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from model.clustering import ClusteredKernel, clusterable_layers, kmeans_per_channel, lut_pays, snap

# Each output channel keeps at least this many weights, whatever the target: a layer with few inputs per
# channel (conv1's 27, an expand1x1 after a 16-channel squeeze) holds few weights in all, saves little, and is
# the most sensitive (Han et al. 2015 prune conv1 least). 32 keeps conv1 and such 1x1 layers dense at 33%.
MIN_KEPT_PER_CHANNEL = 32
# Zhu & Gupta's exponent: prune fast while the network is redundant, slowly near the target.
SCHEDULE_POWER = 3


class PruningError(ValueError):
    """Pruning asked of something that cannot be pruned as given; the message names the fix."""


def _kernel(layer) -> np.ndarray:
    return _value(layer.kernel)


def check_density(density: float) -> float:
    if not 0.0 < density <= 1.0:
        raise PruningError(f"density {density}: need 0 < density <= 1 (the fraction of weights kept; 0.33 is the paper's)")
    return float(density)


def fan_in(kernel_shape) -> int:
    """Weights per output channel (the kernel's last axis is the output channel)."""
    return int(np.prod(kernel_shape[:-1]))


def kept_per_channel(fan: int, density: float) -> int:
    return max(1, int(round(density * fan)))


def magnitude_mask(values: np.ndarray, keep: int, alive: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask (values' shape, last axis = output channel) of the `keep` largest-magnitude weights of each
    channel. With `alive`, a weight already pruned ranks below every live one: masks only ever shrink."""
    rows = values.reshape(-1, values.shape[-1])
    magnitude = np.abs(rows).astype(np.float64)
    if alive is not None:
        magnitude = np.where(alive.reshape(rows.shape), magnitude, -1.0)
    order = np.argsort(-magnitude, axis=0, kind="stable")
    mask = np.zeros(rows.shape, bool)
    np.put_along_axis(mask, order[:keep], True, axis=0)
    return mask.reshape(values.shape)


def prune_kernel(kernel: np.ndarray, density: float) -> np.ndarray:
    """`kernel` (last axis = output channel) with all but the round(density x fan-in) largest-magnitude
    weights of each output channel set to 0 (at least one kept per channel)."""
    keep = kept_per_channel(fan_in(kernel.shape), check_density(density))
    return np.where(magnitude_mask(kernel, keep), kernel, 0).astype(kernel.dtype)


def prune_model(model, density: float) -> dict:
    """Prune every Conv2D/Dense kernel of `model` in place; returns {"kept": weights kept, "weights": all}."""
    kept = total = 0
    for layer in clusterable_layers(model):
        pruned = prune_kernel(_kernel(layer), density)
        layer.kernel.assign(pruned)
        kept, total = kept + int(np.count_nonzero(pruned)), total + pruned.size
    return {"kept": kept, "weights": total, "density": kept / max(total, 1)}


def polynomial_sparsity(step: int, target_sparsity: float, begin: int, end: int, power: int = SCHEDULE_POWER) -> float:
    """Zhu & Gupta (2017), from 0: s_t = s_f (1 - (1 - (t - t0) / (t_end - t0))^power), 0 before t0, s_f from t_end."""
    if end <= begin:
        raise PruningError(f"schedule end step {end} must come after its begin step {begin}")
    progress = min(1.0, max(0.0, (step - begin) / (end - begin)))
    return target_sparsity * (1.0 - (1.0 - progress) ** power)


def layer_densities(
    model, density: float, min_kept: int = MIN_KEPT_PER_CHANNEL, overrides: dict[str, float] | None = None
) -> dict[str, float]:
    """Each Conv2D/Dense layer's target density: `density`, raised to keep at least `min_kept` weights per
    output channel (at most all), or as `overrides` names it. Raises PruningError for a density outside (0, 1],
    an override naming no such layer, or a model with nothing to prune."""
    check_density(density)
    layers = clusterable_layers(model)
    if not layers:
        raise PruningError(f"model {model.name!r} has no Conv2D or Dense layer: nothing to prune")
    names = {layer.name for layer in layers}
    unknown = sorted(set(overrides or {}) - names)
    if unknown:
        raise PruningError(
            f"--layer-density names {', '.join(unknown)}, not a Conv2D/Dense layer of the model; those are: {', '.join(sorted(names))}"
        )
    targets = {}
    for layer in layers:
        fan = fan_in(layer.kernel.shape)
        targets[layer.name] = check_density((overrides or {}).get(layer.name, min(1.0, max(density, min_kept / fan))))
    if all(value == 1.0 for value in targets.values()):
        raise PruningError(
            f"density {density} with at least {min_kept} weights per channel leaves every layer dense: nothing to prune (lower --min-kept)"
        )
    return targets


@dataclass
class PrunedKernel:
    """One kernel's pruning: its target density and its current mask (True = kept), kernel-shaped."""

    layer_name: str
    variable: object  # the Keras variable holding the kernel
    target_density: float
    mask: np.ndarray

    @property
    def fan_in(self) -> int:
        return fan_in(self.mask.shape)

    def set_sparsity_fraction(self, fraction: float) -> None:
        """Mask the weights the schedule prunes by now: `fraction` (0..1) of the way to the target sparsity."""
        density = 1.0 - fraction * (1.0 - self.target_density)
        keep = kept_per_channel(self.fan_in, density)
        if keep < int(self.mask.reshape(-1, self.mask.shape[-1]).sum(axis=0).max()):
            self.mask = magnitude_mask(_value(self.variable), keep, alive=self.mask)

    def apply(self) -> None:
        value = _value(self.variable)
        self.variable.assign(np.where(self.mask, value, 0).astype(value.dtype))

    def describe(self) -> dict:
        value = _value(self.variable)
        return {
            "layer": self.layer_name,
            "shape": list(value.shape),
            "fan_in": self.fan_in,
            "target_density": round(self.target_density, 4),
            "kept_per_channel": int(self.mask.reshape(-1, self.mask.shape[-1]).sum(axis=0).max()),
            "density": round(float(np.count_nonzero(value)) / value.size, 4),
            "weights": int(value.size),
        }


def prunable_kernels(model, targets: dict[str, float]) -> list[PrunedKernel]:
    """A PrunedKernel (mask all True) for every layer of `targets` below density 1; nothing is changed yet."""
    return [
        PrunedKernel(layer.name, layer.kernel, targets[layer.name], np.ones(tuple(layer.kernel.shape), bool))
        for layer in clusterable_layers(model)
        if targets.get(layer.name, 1.0) < 1.0
    ]


def kernels_from_zeros(model) -> list[PrunedKernel]:
    """The masks of an already pruned model: every Conv2D/Dense kernel with an exact zero, masked where it is 0."""
    kernels = []
    for layer in clusterable_layers(model):
        value = _kernel(layer)
        if np.any(value == 0):
            kernels.append(PrunedKernel(layer.name, layer.kernel, float(np.count_nonzero(value)) / value.size, value != 0))
    return kernels


def density_summary(kernels: list[PrunedKernel], model) -> dict:
    """Density reached: per pruned layer, over pruned layers, and over every Conv2D/Dense kernel."""
    layers = [entry.describe() for entry in kernels]
    all_kernels = [_kernel(layer) for layer in clusterable_layers(model)]
    kept = sum(int(np.count_nonzero(kernel)) for kernel in all_kernels)
    total = sum(kernel.size for kernel in all_kernels)
    pruned_total = sum(row["weights"] for row in layers)
    pruned_kept = sum(round(row["density"] * row["weights"]) for row in layers)
    return {
        "layers": layers,
        "density_all_kernels": round(kept / max(total, 1), 4),
        "density_pruned_layers": round(pruned_kept / max(pruned_total, 1), 4),
        "weights": int(total),
        "kept": int(kept),
    }


def make_prune_callback(kernels: list[PrunedKernel], end_fraction: float = 0.75, frequency: int = 25):
    """A Keras callback: the sparsity follows `polynomial_sparsity` from 0 at the first step to each layer's
    target at `end_fraction` of the fit's steps (then fine-tunes at the target), masks recomputed by magnitude
    every `frequency` steps, and re-applied after every optimiser step."""
    import keras

    if not 0.0 < end_fraction <= 1.0:
        raise PruningError(f"end fraction {end_fraction}: need 0 < end_fraction <= 1 (where in the fine-tune the target is reached)")
    if frequency < 1:
        raise PruningError(f"frequency {frequency}: need a mask update every 1 or more steps")

    class MagnitudePruning(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.step = 0
            self.end_step = 1
            self.seconds = 0.0

        def on_train_begin(self, logs=None):
            total = int(self.params.get("epochs", 1)) * int(self.params.get("steps") or 1)
            self.end_step = max(1, int(round(end_fraction * total)))

        def on_train_batch_end(self, batch, logs=None):
            started = time.perf_counter()
            _ = self.model  # on JAX, reading Callback.model attaches the step's state to the variables first
            self.step += 1
            if self.step % frequency == 0 or self.step == self.end_step:
                fraction = polynomial_sparsity(self.step, 1.0, 0, self.end_step)
                for entry in kernels:
                    entry.set_sparsity_fraction(fraction)
            apply_masks(kernels)
            self.seconds += time.perf_counter() - started

        @property
        def seconds_per_batch(self) -> float:
            return self.seconds / max(1, self.step)

    return MagnitudePruning()


def make_mask_callback(kernels: list[PrunedKernel]):
    """A Keras callback that re-applies fixed masks after every optimiser step (after any earlier callback, such
    as the centroid snap: give it last)."""
    import keras

    class KeepZeros(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            _ = self.model  # on JAX, reading Callback.model attaches the step's state to the variables first
            apply_masks(kernels)

    return KeepZeros()


def apply_masks(kernels: list[PrunedKernel]) -> None:
    for entry in kernels:
        entry.apply()


def check_zeros_kept(kernels: list[PrunedKernel]) -> None:
    """Raise AssertionError unless every masked weight is exactly 0."""
    for entry in kernels:
        if np.any(_value(entry.variable)[~entry.mask] != 0):
            raise AssertionError(f"{entry.layer_name}: a pruned weight is no longer 0")


def finish_pruning(kernels: list[PrunedKernel]) -> None:
    """Masks at their targets and applied: for a fit that ended early, and makes the invariant explicit."""
    for entry in kernels:
        entry.set_sparsity_fraction(1.0)
        entry.apply()


def _survivor_rows(values: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """Row indices of each channel's non-zero weights (values: fan-in x channels), and the count per channel,
    which pruning by `prune_model` or experiments.prune makes the same in every channel."""
    alive = values != 0
    per_channel = alive.sum(axis=0)
    if per_channel.min() != per_channel.max():
        raise PruningError(
            f"{name}: channels keep {per_channel.min()}..{per_channel.max()} weights; prune with model.pruning (experiments.prune) first"
        )
    return np.argsort(~alive, axis=0, kind="stable")[: per_channel[0]], int(per_channel[0])


def cluster_survivors(model, bits: int, iterations: int = 30, per_layer: bool = False) -> None:
    """Per output channel, k-means of the non-zero weights of every Conv2D/Dense kernel of a model pruned by
    `prune_model` (the same count survives in every channel), zeros kept: 2**bits - 1 survivor values, so that
    with the zero a channel holds 2**bits values, a bits-wide LUT index (as `cluster_pruned_model` does).
    With `per_layer`, one codebook for the whole kernel, as Deep Compression shares weights (the paper's 6 bits
    are per layer)."""
    k = 2**bits - 1
    if k < 1:
        raise PruningError(f"bits {bits}: a pruned channel needs at least 2 values (0 and one survivor value)")
    for layer in clusterable_layers(model):
        kernel = _kernel(layer)
        values = kernel.reshape(-1, 1) if per_layer else kernel.reshape(-1, kernel.shape[-1])  # per layer: one "channel"
        order, kept = _survivor_rows(values, layer.name)
        if kept <= k:
            continue  # already at most k values per channel
        survivors = np.take_along_axis(values, order, axis=0)
        shared = snap(survivors, kmeans_per_channel(survivors, k, iterations), k)
        np.put_along_axis(values, order, shared, axis=0)
        layer.kernel.assign(values.reshape(kernel.shape))


def cluster_pruned_model(model, bits: int, iterations: int = 30, all_layers: bool = False) -> tuple[list[ClusteredKernel], list[str]]:
    """Cluster a pruned model in place, zeros kept: per output channel the survivors to 2**bits - 1 values
    (k-means), the zeros the last of the 2**bits segments, so model.clustering's snap and checks apply as
    they are (snap moves the zero segment to its mean: re-apply the masks after it). Layers LUT compression
    cannot shrink are skipped unless `all_layers`, as model.clustering.cluster_model does.
    Returns (clustered, names of skipped layers)."""
    k = 2**bits
    if k < 2:
        raise PruningError(f"bits {bits}: a pruned channel needs at least 2 values (0 and one survivor value)")
    clustered, skipped = [], []
    for layer in clusterable_layers(model):
        kernel = _kernel(layer)
        values = kernel.reshape(-1, kernel.shape[-1])
        if not all_layers and not lut_pays(values.shape[0], bits):
            skipped.append(layer.name)
            continue
        channels = values.shape[1]
        segments = np.broadcast_to(np.arange(channels) * k + (k - 1), values.shape).copy()  # the zero segment
        order, kept = _survivor_rows(values, layer.name)
        if kept:
            survivors = np.take_along_axis(values, order, axis=0)
            survivor_segments = kmeans_per_channel(survivors, k - 1, iterations)  # channel * (k - 1) + cluster
            remapped = (survivor_segments // (k - 1)) * k + survivor_segments % (k - 1)
            np.put_along_axis(segments, order, remapped, axis=0)
        segments = segments.reshape(kernel.shape)
        shared = snap(kernel, segments, k)
        layer.kernel.assign(np.where(kernel != 0, shared, 0).astype(kernel.dtype))
        clustered.append(ClusteredKernel(layer.name, layer.kernel, k, segments))
    return clustered, skipped


def _value(variable) -> np.ndarray:
    """A Keras variable's current value as numpy (any backend)."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable))
