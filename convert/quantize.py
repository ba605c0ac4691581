"""Full-integer TFLite conversion of a Keras model, calibrated on stored, seeded training-split indices.

The converted model takes int8 pixels and returns int8 class scores: weights (per channel for
convolutions), activations, input and output are all int8, so nothing on the device needs floats. The
input is the model's raw-pixel input (the `preprocess` layer converts with the model); the converter
chooses the input quantisation, which every consumer reads back from the `.tflite` (see
`convert.inspect_tflite`), never from here.
"""

from __future__ import annotations

import tempfile

import numpy as np

from convert import calibration
from convert.errors import BadInputError, ConversionError
from model import quiet_tensorflow

DEFAULT_CALIBRATION_COUNT = 500
DEFAULT_CALIBRATION_SEED = 0

# What `to_int8_tflite` asks of the converter, recorded in model.json so a reader can tell how the bytes
# were made without reading this file.
CONVERTER_SETTINGS = {
    "api": "keras Model.export (tf_saved_model) + tf.lite.TFLiteConverter.from_saved_model",
    "optimizations": ["DEFAULT"],
    "supported_ops": ["TFLITE_BUILTINS_INT8"],
    "inference_input_type": "int8",
    "inference_output_type": "int8",
    "per_channel_weights": True,
    "batch_size": 1,
    # The activation ranges, measured so that the bytes do not follow the CPU (convert/calibration.py).
    "calibration": calibration.METHOD,
    "bytes_depend_on": calibration.BYTES_DEPEND_ON,
}


def calibration_indices(available: int, count: int, seed: int) -> list[int]:
    """`count` distinct indices into a split of `available` images, drawn with `seed`, sorted.

    Asking for more than the split holds takes the whole split (the caller records the count it got).
    """
    if count < 1:
        raise BadInputError(f"calibration count {count}: need at least 1 image")
    if available < 1:
        raise BadInputError("the training split is empty: nothing to calibrate on")
    count = min(count, available)
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(available, size=count, replace=False))


def to_int8_tflite(model, calibration_images: np.ndarray, *, progress: bool = True, per_channel: bool = True) -> bytes:
    """Convert `model` to a full-int8 `.tflite` (bytes), calibrated on `calibration_images` (uint8 NHWC). Weights
    get one scale per output channel, or with `per_channel=False` one per tensor (a tensor-wide codebook then stays
    one set of int8 values: experiments.compression_sizes --per-layer-sharing).

    Raises ConversionError when the converter refuses, e.g. for an op it cannot quantise to int8.
    """
    quiet_tensorflow()
    import tensorflow as tf

    from model.progress import iterate

    input_shape = tuple(int(d) for d in model.input_shape[1:])
    if calibration_images.shape[1:] != input_shape:
        raise BadInputError(f"calibration images are {calibration_images.shape[1:]} but the model takes {input_shape}")

    def representative():
        # Raw pixels as float32, exactly what the Keras model takes: the normalisation is in the graph.
        for image in iterate(calibration_images, "calibrating", "img", enabled=None if progress else False, leave=False):
            yield [image[None].astype(np.float32)]

    with tempfile.TemporaryDirectory(prefix="squeezenet-mcu-savedmodel-") as saved_model:
        # Through a SavedModel because that is where Keras 3 tracks the variables for the converter to
        # freeze (a bare tf.function would leave READ_VARIABLE ops behind). A fixed batch of 1: TFLM runs
        # one image at a time, and a static shape keeps every tensor's size known at allocation time.
        signature = [tf.TensorSpec((1, *input_shape), tf.float32, name="input")]
        try:
            model.export(saved_model, format="tf_saved_model", verbose=False, input_signature=signature)
        except Exception as error:
            raise ConversionError(f"could not export the Keras model for conversion ({type(error).__name__}: {error})") from error
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        # Builtin int8 kernels only: an op without one makes the converter fail here instead of leaving a
        # float op in the graph for the device to trip over (pre-flight checks the result again).
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        if not per_channel:
            converter._experimental_disable_per_channel = True  # TFLiteConverter's switch for per-tensor weight scales
        try:
            with calibration.reference_calibration():
                return bytes(converter.convert())
        except ConversionError:
            raise
        except Exception as error:  # the converter raises ConverterError and assorted others
            raise ConversionError(f"the TFLite converter refused the model ({type(error).__name__}: {error})") from error


def converter_versions() -> dict:
    """The versions that produced the bytes (the converter ships inside TensorFlow)."""
    from model.provenance import package_version

    # TensorFlow is installed as tensorflow-cpu here and as tensorflow elsewhere: record whichever it is.
    versions = {"tensorflow": package_version("tensorflow") or package_version("tensorflow-cpu")}
    versions.update({name: v for name in ("keras", "numpy") if (v := package_version(name))})
    versions["settings"] = dict(CONVERTER_SETTINGS)
    return versions
