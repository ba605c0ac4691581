"""The one definition of what a model input is, shared by training, conversion, host engines and devices.

Every stage feeds raw RGB pixels (HWC, 0..255). The normalisation lives inside the model, as its first
layer (`preprocess`), so it is converted with the model and cannot drift between host and device. For the
int8 engines the pixels are quantised with the scale and zero point read from the converted model
(`quantize_int8`); with the converter's usual choice (scale 1.0, zero point -128) that is pixel - 128.

`SPEC` is recorded in every model's metadata and every artifact's `model.json`.
"""

from __future__ import annotations

import numpy as np

# x_model = pixel * SCALE + OFFSET maps [0, 255] onto [-1, 1]. Dataset-independent on purpose:
# batch normalisation after conv1 takes care of per-dataset statistics.
SCALE = 1.0 / 127.5
OFFSET = -1.0

SPEC = {
    "input": "RGB pixels, HWC, float32 values 0..255 (uint8 range)",
    "color_order": "RGB",
    "layout": "HWC",
    "resize": "none: images must already have the model's input size",
    "in_model_layer": "preprocess",
    "in_model_transform": {"scale": SCALE, "offset": OFFSET, "formula": "x * scale + offset"},
    "int8_input": "round(pixel / input_scale) + input_zero_point, clipped to [-128, 127]",
}


def in_model_layer():
    """The model's first layer (a keras Rescaling): the normalisation, part of the graph so it converts with the
    model. Keras is imported here, not at the top: quantizing uint8 pixels must not load TensorFlow."""
    from keras import layers

    return layers.Rescaling(SCALE, offset=OFFSET, name="preprocess")


def to_float_input(pixels: np.ndarray) -> np.ndarray:
    """uint8 HWC (or NHWC) pixels -> the float32 tensor a Keras model takes."""
    return np.asarray(pixels, dtype=np.float32)


def quantize_int8(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Real values (uint8 pixels for an input, float outputs for the int8 grid) -> int8 with the tensor's scale and
    zero point: round to nearest, saturate. The one quantizer of the project, in float32 as TFLite's QUANTIZE kernel
    computes it (`round(x / scale) + zero_point` with a float32 scale), so a host and a device agree to the bit."""
    q = np.round(np.asarray(values, dtype=np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)
