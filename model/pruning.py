"""Magnitude pruning per output channel, and k-means weight sharing of what survives: the first two steps
of Deep Compression (Han et al., 2016) as the SqueezeNet paper applies them (Table 2: 33% density).

`prune_model(model, density)` zeroes, in every Conv2D/Dense kernel, the smallest-magnitude weights of each
output channel, keeping round(density x fan-in) per channel (every channel keeps the same count; the paper
prunes per layer by a threshold, which gives about the same density). `cluster_survivors(model, bits)` then
shares weights: per output channel, k-means of the surviving weights to 2**bits values, the zeros left zero.
The int8 converter quantises weights symmetrically (zero point 0), so a pruned weight is exactly the int8 0 that
TFLM's prune format skips, and a channel holds at most 2**bits + 1 int8 values. Nothing is fine-tuned here:
used for sizes (experiments.compression_sizes) and tests, which claim no accuracy.
"""

from __future__ import annotations

import numpy as np

from model.clustering import clusterable_layers, kmeans_per_channel, snap


def _kernel(layer) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(layer.kernel))


def prune_kernel(kernel: np.ndarray, density: float) -> np.ndarray:
    """`kernel` (last axis = output channel) with all but the round(density x fan-in) largest-magnitude
    weights of each output channel set to 0 (at least one kept per channel)."""
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density {density}: need 0 < density <= 1")
    values = kernel.reshape(-1, kernel.shape[-1])
    keep = max(1, int(round(density * values.shape[0])))
    order = np.argsort(-np.abs(values), axis=0, kind="stable")
    mask = np.zeros(values.shape, bool)
    np.put_along_axis(mask, order[:keep], True, axis=0)
    return np.where(mask, values, 0).astype(kernel.dtype).reshape(kernel.shape)


def prune_model(model, density: float) -> dict:
    """Prune every Conv2D/Dense kernel of `model` in place; returns {"kept": weights kept, "weights": all}."""
    kept = total = 0
    for layer in clusterable_layers(model):
        pruned = prune_kernel(_kernel(layer), density)
        layer.kernel.assign(pruned)
        kept, total = kept + int(np.count_nonzero(pruned)), total + pruned.size
    return {"kept": kept, "weights": total, "density": kept / max(total, 1)}


def cluster_survivors(model, bits: int, iterations: int = 30) -> None:
    """Per output channel, k-means (2**bits values) of the non-zero weights of every Conv2D/Dense kernel of a
    model pruned by `prune_model` (the same count survives in every channel), zeros kept."""
    k = 2**bits
    for layer in clusterable_layers(model):
        kernel = _kernel(layer)
        values = kernel.reshape(-1, kernel.shape[-1])
        alive = values != 0
        per_channel = alive.sum(axis=0)
        if per_channel.min() != per_channel.max():
            raise ValueError(f"{layer.name}: channels keep {per_channel.min()}..{per_channel.max()} weights; prune with prune_model first")
        if per_channel[0] <= k:
            continue  # already at most k values per channel
        order = np.argsort(~alive, axis=0, kind="stable")[: per_channel[0]]  # row indices of the survivors, per channel
        survivors = np.take_along_axis(values, order, axis=0)
        shared = snap(survivors, kmeans_per_channel(survivors, k, iterations), k)
        np.put_along_axis(values, order, shared, axis=0)
        layer.kernel.assign(values.reshape(kernel.shape))
