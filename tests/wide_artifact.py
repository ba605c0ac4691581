"""A small int8 artifact whose weights decode into most of its arena: one 3x3 convolution of 256 output channels
(36,864 int8 weights, 16 values per output channel so LUT compression applies) between small activations. Built
in seconds without training (fixed seeded weights), converted by the converter itself, then LUT-compressed.
Imported by the tests of the decompression region (convert.decompression_region)."""

from __future__ import annotations

from pathlib import Path


def make_wide_artifacts(folder: Path) -> tuple[Path, Path]:
    """(`folder`/wide, the int8 artifact; `folder`/wide-lut, the same LUT-compressed by convert.compress)."""
    import keras
    import numpy as np

    from convert import compress
    from convert.artifact import convert_model
    from model import preprocessing

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), name="input")
    x = preprocessing.in_model_layer()(inputs)
    x = keras.layers.Conv2D(16, 3, strides=4, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.Conv2D(256, 3, padding="same", activation="relu", name="wide")(x)
    x = keras.layers.Conv2D(10, 1, name="conv10")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Softmax(name="predictions")(x)
    model = keras.Model(inputs, outputs, name="wide")
    wide = model.get_layer("wide")
    rng = np.random.default_rng(0)
    levels = rng.normal(scale=0.05, size=(16, 256)).astype("float32")  # 16 values per output channel
    kernel = np.take_along_axis(levels, rng.integers(0, 16, size=(3 * 3 * 16, 256)), axis=0).reshape(3, 3, 16, 256)
    wide.set_weights([kernel, np.zeros(256, "float32")])
    model.save(folder / "wide.keras")
    convert_model(folder / "wide.keras", "synthetic", folder / "wide", calibration_count=8, progress=False)
    argv = ["--artifact", str(folder / "wide"), "--out", str(folder / "wide-lut"), "--data", "synthetic", "--check-images", "2"]
    if compress.main([*argv, "--board", "none", "--quiet"]) != 0:
        raise RuntimeError("convert.compress refused the wide model")
    return folder / "wide", folder / "wide-lut"
