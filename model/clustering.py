"""Weight clustering per output channel: k-means of each kernel's values, and keeping them clustered while
fine-tuning. The float side of the SqueezeNet paper's Deep Compression step (Table 2).

Why per output channel: the int8 converter quantises convolution filters per output channel, and folding
batch normalisation into the convolution multiplies each output channel by its own factor. Both map a
channel's float values through one monotonic function, so a channel with at most k distinct float values
has at most k distinct int8 values, which is what TFLM's look-up-table compression (`convert.compress`)
needs to store the channel as log2(k)-bit indices. One table for a whole kernel would not survive that.

Fine-tuning keeps the assignments and trains the centroids: after every optimiser step each cluster's
weights are replaced by their mean (`CentroidSnap`). With plain SGD that is the paper's centroid update
(the mean of the cluster's gradients instead of their sum: a per-cluster constant factor on the step).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

# Kernels whose last axis is the output channel. DepthwiseConv2D is not here: its output channels span
# two kernel axes (input channel x multiplier), and SqueezeNet has none.
CLUSTERED_LAYER_TYPES = ("Conv2D", "Dense")
# The broadcast in `_assign` is (weights x channels x k) booleans; cap one block at this many bytes.
_BLOCK_ELEMENTS = 1 << 24


@dataclass
class ClusteredKernel:
    """One kernel's clustering: `segments[...]` (kernel-shaped) is channel * k + cluster, the bincount key."""

    layer_name: str
    variable: object  # the Keras variable holding the kernel
    k: int
    segments: np.ndarray

    @property
    def channels(self) -> int:
        return int(self.segments.shape[-1])

    def describe(self) -> dict:
        values = _value(self.variable)
        return {
            "layer": self.layer_name,
            "shape": list(values.shape),
            "max_unique_per_channel": int(unique_per_channel(values).max()),
        }


def clusterable_layers(model) -> list:
    """The layers whose kernels get clustered: every Conv2D and Dense, in model order."""
    return [layer for layer in model.layers if type(layer).__name__ in CLUSTERED_LAYER_TYPES]


def unique_counts(array: np.ndarray, axis: int | None) -> np.ndarray:
    """Distinct values per slice along `axis` (or of the whole array for None), vectorised. convert.lut counts
    int8 tensors with it too, so "values per channel" means the same on both sides."""
    array = np.asarray(array)
    rows = array.reshape(1, -1) if axis is None else np.moveaxis(array, axis, 0).reshape(array.shape[axis], -1)
    ordered = np.sort(rows, axis=1)
    return 1 + np.count_nonzero(np.diff(ordered, axis=1), axis=1)


def unique_per_channel(kernel: np.ndarray) -> np.ndarray:
    """Distinct values in each output channel (last axis) of a kernel, as an int array of length C."""
    return unique_counts(kernel, np.ndim(kernel) - 1)


def _assign(values: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid of each value; values (n, C), centroids (C, k) sorted per channel -> (n, C) ints.
    In one dimension the nearest of sorted centroids is the number of midpoints below the value."""
    midpoints = (centroids[:, 1:] + centroids[:, :-1]) / 2  # (C, k-1)
    n, channels = values.shape
    step = max(1, _BLOCK_ELEMENTS // max(1, n * midpoints.shape[1]))
    out = np.empty(values.shape, dtype=np.int64)
    for start in range(0, channels, step):
        block = slice(start, start + step)
        out[:, block] = np.count_nonzero(values[:, block, None] > midpoints[None, block, :], axis=2)
    return out


def cluster_means(values: np.ndarray, segments: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-segment sums divided by counts (float64), and the counts: one bincount for the whole kernel."""
    flat = segments.ravel()
    counts = np.bincount(flat, minlength=size)
    sums = np.bincount(flat, weights=np.asarray(values, dtype=np.float64).ravel(), minlength=size)
    return sums / np.maximum(counts, 1), counts


def kmeans_per_channel(kernel: np.ndarray, k: int, iterations: int = 30) -> np.ndarray:
    """Lloyd's k-means of each output channel's values. Returns the segment array (kernel-shaped,
    channel * k + cluster). Linear initialisation between each channel's min and max: Deep Compression
    found it keeps the rare large weights, which matter most, better than density-based starts."""
    kernel = np.asarray(kernel, dtype=np.float64)
    channels = kernel.shape[-1]
    values = kernel.reshape(-1, channels)
    low, high = values.min(axis=0), values.max(axis=0)
    centroids = low[:, None] + (high - low)[:, None] * np.linspace(0.0, 1.0, k)[None, :]
    offsets = np.arange(channels)[None, :] * k
    assignment = _assign(values, centroids)
    for _ in range(iterations):
        means, counts = cluster_means(values, assignment + offsets, channels * k)
        # An empty cluster keeps its centroid (it may catch values later); sorting keeps _assign valid.
        centroids = np.sort(np.where(counts > 0, means, centroids.ravel()).reshape(channels, k), axis=1)
        updated = _assign(values, centroids)
        if np.array_equal(updated, assignment):
            break
        assignment = updated
    return (assignment + offsets).reshape(kernel.shape)


def snap(kernel: np.ndarray, segments: np.ndarray, k: int) -> np.ndarray:
    """Every weight replaced by its cluster's mean, in the kernel's dtype (so a cluster is one value)."""
    means, _ = cluster_means(kernel, segments, segments.shape[-1] * k)
    return means[segments].astype(np.asarray(kernel).dtype)


def lut_pays(fan_in: int, bits: int) -> bool:
    """Whether TFLM's per-channel LUT compression (convert.lut) can make one output channel of `fan_in` int8
    weights smaller at `bits` index bits: the indices plus its 2**bits-byte value table plus the 12 bytes of
    quantisation the decoded copy repeats must undercut fan_in bytes. Where they cannot (conv1's 27
    weights, 1x1 convolutions of few inputs), clustering would cost accuracy and save nothing."""
    return fan_in - (-(-fan_in * bits // 8)) - 2**bits - 12 > 0


def cluster_model(model, bits: int, iterations: int = 30, all_layers: bool = False) -> tuple[list[ClusteredKernel], list[str]]:
    """Cluster the Conv2D/Dense kernels of `model` in place to at most 2**bits values per output channel:
    all of them, or (default) those LUT compression can shrink. Returns (clustered, names of skipped layers)."""
    k = 2**bits
    clustered, skipped = [], []
    for layer in clusterable_layers(model):
        kernel = _value(layer.kernel)
        if not all_layers and not lut_pays(int(np.prod(kernel.shape[:-1])), bits):
            skipped.append(layer.name)
            continue
        segments = kmeans_per_channel(kernel, k, iterations)
        layer.kernel.assign(snap(kernel, segments, k))
        clustered.append(ClusteredKernel(layer.name, layer.kernel, k, segments))
    return clustered, skipped


def snap_all(clustered: list[ClusteredKernel]) -> None:
    for entry in clustered:
        entry.variable.assign(snap(_value(entry.variable), entry.segments, entry.k))


def check_clustered(clustered: list[ClusteredKernel]) -> None:
    """Raise AssertionError unless every kernel has at most k distinct values in every output channel."""
    for entry in clustered:
        worst = int(unique_per_channel(_value(entry.variable)).max())
        if worst > entry.k:
            raise AssertionError(f"{entry.layer_name}: {worst} distinct values in an output channel, more than k = {entry.k}")


def make_snap_callback(clustered: list[ClusteredKernel]):
    """A Keras callback that re-clusters after every training batch (assignments fixed, centroids = the
    mean of the just-updated weights) and records how long that takes."""
    import keras

    class CentroidSnap(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds = 0.0
            self.batches = 0

        def on_train_batch_end(self, batch, logs=None):
            started = time.perf_counter()
            snap_all(clustered)
            self.seconds += time.perf_counter() - started
            self.batches += 1

        @property
        def seconds_per_batch(self) -> float:
            return self.seconds / max(1, self.batches)

    return CentroidSnap()


def _value(variable) -> np.ndarray:
    """A Keras variable's current value as numpy (any backend)."""
    import keras

    return keras.ops.convert_to_numpy(variable)
