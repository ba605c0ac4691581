"""TFLM's prune format (DECODE type 2): a bitmask over the elements plus the values that are not zero points.

The decoder (tensorflow/lite/micro/kernels/decode_state_prune.cc) walks the output tensor in memory order
with one bit per element, taken most significant bit first from each byte of the encoded tensor: a 1 takes
the next entry of the value table (the ancillary tensor after its 16-byte DCM, in the output's own type;
float32 as its raw 32 bits), a 0 writes the element's zero point. Which zero point, Setup decides from
the output tensor's quantization, and `zero_points` reproduces it exactly:

- not quantized: 0;
- one channel, or all zero points 0: the first zero point, for every element;
- int8 with several channels and a non-zero zero point: each element's channel's, the channel being the
  first axis (quantized_dimension 0) or, with quantized_dimension the last axis, the last;
- any other quantized dimension, or a non-zero zero point on a type other than int8: Setup fails, so the
  tensor cannot be stored this way (EncodeError).

The format pays when more than about 1 element in 8 x itemsize is at its zero point: int8 weights pruned
to 33% density store 1 bit + 0.33 bytes per weight.
"""

from __future__ import annotations

import numpy as np

from convert.decode_formats import DCM_BYTES, TYPE_PRUNE, Encoded, EncodeError, check_dcm, dcm

PRUNE_VERSION = 1
# Output types the decoder handles, and the integer type of the same width its value table is read as.
RAW_TYPES = {
    "bool": np.dtype("i1"),
    "int8": np.dtype("i1"),
    "int16": np.dtype("<i2"),
    "int32": np.dtype("<i4"),
    "float32": np.dtype("<i4"),
    "int64": np.dtype("<i8"),
}


def _raw(array: np.ndarray) -> np.ndarray:
    name = np.dtype(array.dtype).name
    if name not in RAW_TYPES:
        raise EncodeError(f"the prune decoder handles {', '.join(RAW_TYPES)} tensors, not {name}")
    return np.ascontiguousarray(array).view(RAW_TYPES[name]).reshape(-1)


def zero_points(shape, dtype, zero_point_list=None, quantized_dimension: int = 0) -> np.ndarray:
    """The value a 0 bit decodes to, for each element in memory order, as the decoder's Setup chooses it.
    `zero_point_list` is the output tensor's quantization zero points (None: not quantized)."""
    count = int(np.prod(shape, dtype=np.int64))
    raw = RAW_TYPES[np.dtype(dtype).name]
    if not zero_point_list:
        return np.zeros(count, raw)
    zps = np.asarray(zero_point_list, dtype=np.int64)
    channels = len(zps)
    alternate = quantized_dimension == len(shape) - 1 and channels > 1
    if not alternate and quantized_dimension != 0:
        raise EncodeError(
            f"quantized along axis {quantized_dimension} of a rank-{len(shape)} tensor: the prune decoder takes axis 0 or the last"
        )
    non_zero = bool(np.any(zps != 0))
    if np.dtype(dtype).name != "int8" and non_zero:
        raise EncodeError(f"{np.dtype(dtype).name} tensor with non-zero zero points: the prune decoder needs them all 0 for non-int8")
    if channels > 1 and non_zero:
        zps8 = zps.astype(np.int8)
        if alternate:
            return np.tile(zps8, count // channels)
        return np.repeat(zps8, count // channels)
    # The decoder keeps the first zero point as an int8 and writes it widened to the element type.
    return np.full(count, np.int8(zps[0]), raw)


def encode(array: np.ndarray, zero_point_list=None, quantized_dimension: int = 0) -> Encoded:
    """`array` in the prune format, for an output tensor quantized with `zero_point_list` along
    `quantized_dimension`. Raises EncodeError where the decoder could not reproduce it."""
    array = np.asarray(array)
    raw = _raw(array)
    zp = zero_points(array.shape, array.dtype, zero_point_list, quantized_dimension)
    keep = raw != zp
    bitmask = np.packbits(keep, bitorder="big").tobytes()
    return Encoded(data=bitmask, ancillary=dcm(TYPE_PRUNE, bytes([PRUNE_VERSION])) + raw[keep].tobytes())


def encoded_bytes(array: np.ndarray, zero_point_list=None, quantized_dimension: int = 0) -> int:
    """What `encode` would take (bitmask + DCM + kept values), without building it."""
    array = np.asarray(array)
    raw = _raw(array)
    kept = int(np.count_nonzero(raw != zero_points(array.shape, array.dtype, zero_point_list, quantized_dimension)))
    return -(-raw.size // 8) + DCM_BYTES + kept * raw.itemsize


def decode(data: bytes, ancillary: bytes, shape, dtype, zero_point_list=None, quantized_dimension: int = 0) -> np.ndarray:
    """The prune decoder's output, in Python: the model `encode` is checked against. ValueError where the
    C++ decoder would fail or read past its buffers."""
    check_dcm(ancillary, TYPE_PRUNE)
    dtype = np.dtype(dtype)
    zp = zero_points(shape, dtype, zero_point_list, quantized_dimension)
    count = zp.size
    if len(data) * 8 < count:
        raise ValueError(f"bitmask of {len(data)} bytes for {count} elements: the decoder would read past it")
    bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="big")[:count].astype(bool)
    values = np.frombuffer(ancillary[DCM_BYTES:], dtype=zp.dtype)
    if int(bits.sum()) > len(values):
        raise ValueError(f"{int(bits.sum())} set bits but {len(values)} values: the decoder would read past the value table")
    out = zp.copy()
    out[bits] = values[: int(bits.sum())]
    return out.view(dtype).reshape(shape)
