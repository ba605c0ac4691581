"""Training batches with augmentation (random crop after reflect padding, horizontal flip, optional
cutout), as a backend-agnostic `keras.utils.PyDataset`.

Augmentation is numpy on the host, seeded by (seed, epoch): a run resumed at epoch k draws exactly the
crops and flips the uninterrupted run would have drawn from epoch k on.
"""

from __future__ import annotations

import keras
import numpy as np

from model import preprocessing


class AugmentedBatches(keras.utils.PyDataset):
    def __init__(self, images, labels, classes, *, batch_size=128, pad=4, flip=True, cutout=0, seed=0, epoch=0):
        super().__init__(workers=1, use_multiprocessing=False)
        self.images = images
        self.targets = keras.utils.to_categorical(labels, classes).astype(np.float32)
        self.batch_size = batch_size
        self.pad = pad
        self.flip = flip
        self.cutout = cutout
        self.seed = seed
        self.epoch = epoch
        self._new_epoch()

    def _new_epoch(self):
        self.rng = np.random.default_rng([self.seed, self.epoch])
        self.order = self.rng.permutation(len(self.images))

    def __len__(self):
        return int(np.ceil(len(self.images) / self.batch_size))

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        # One generator per batch, derived from the epoch's: batches may be fetched in any order.
        rng = np.random.default_rng([self.seed, self.epoch, index])
        batch = augment(self.images[rows], rng, pad=self.pad, flip=self.flip, cutout=self.cutout)
        return preprocessing.to_float_input(batch), self.targets[rows]

    def on_epoch_end(self):
        self.epoch += 1
        self._new_epoch()


def augment(images: np.ndarray, rng: np.random.Generator, *, pad: int, flip: bool, cutout: int) -> np.ndarray:
    """Random crop (reflect-padded by `pad`), random horizontal flip, random `cutout`-pixel square erased
    to mid-grey. Returns a new uint8 array of the same shape."""
    n, h, w, _ = images.shape
    out = images
    if pad:
        padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        dy = rng.integers(0, 2 * pad + 1, n)
        dx = rng.integers(0, 2 * pad + 1, n)
        rows = dy[:, None] + np.arange(h)[None, :]
        cols = dx[:, None] + np.arange(w)[None, :]
        out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    if flip:
        mirror = rng.random(n) < 0.5
        out = out.copy() if out is images else out
        out[mirror] = out[mirror, :, ::-1]
    if cutout:
        out = out.copy() if out is images else out
        cy = rng.integers(0, h, n)
        cx = rng.integers(0, w, n)
        for i in range(n):
            y0, y1 = max(0, cy[i] - cutout // 2), min(h, cy[i] + cutout // 2)
            x0, x1 = max(0, cx[i] - cutout // 2), min(w, cx[i] + cutout // 2)
            out[i, y0:y1, x0:x1] = 128
    return out
