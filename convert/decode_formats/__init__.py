"""Encoders for the tensor formats of TFLM's DECODE operator beyond the look-up table: prune and Huffman.

TFLM's DECODE operator (custom op "TFLM_DECODE", tensorflow/lite/micro/kernels/decode.cc) expands a
constant tensor before the operator that reads it. Its input pairs are (encoded tensor, ancillary
tensor); the ancillary tensor opens with a 16-byte Decode Common Metadata (DCM) header whose byte 0 is
the format (0 LUT, 1 Huffman, 2 prune) and byte 1 the DCM version (1). The tflite-micro wheel encodes
only the LUT format; its `pruning.py` and `huffman.py` are stubs. The C++ decoders are the specification
here, read from the pinned TFLM tree:

- `prune` (kernels/decode_state_prune.cc): one bit per element, most significant bit first; 1 takes the
  next value of the ancillary value table, 0 the element's zero point (`convert.decode_formats.prune`).
- `huffman` (kernels/decode_state_huffman.cc): a bit stream of prefix codes read in big-endian 32-bit
  words, decoded through multi-level lookup tables of 16- or 32-bit entries
  (`convert.decode_formats.huffman`).

Each module has `encode(...) -> Encoded` and `decode(...)`, a Python port of the C++ decoder used to
check every encoding before it is used (lossless by construction, and checked). Formats do not chain:
decode.cc's Prepare requires every DECODE input to be a constant tensor, and a DECODE output is not, so a
LUT's indices cannot themselves be Huffman-coded. They compose per tensor instead: each tensor of a model
takes whichever format is smallest for it (`convert.decode_formats.plan`).
"""

from __future__ import annotations

from dataclasses import dataclass

DCM_BYTES = 16
DCM_VERSION = 1
TYPE_LUT, TYPE_HUFFMAN, TYPE_PRUNE = 0, 1, 2


class EncodeError(ValueError):
    """The tensor cannot be stored in this format; the message says why and what to do."""


@dataclass(frozen=True)
class Encoded:
    """One tensor in a DECODE format: the bytes that replace its data and the whole ancillary tensor."""

    data: bytes
    ancillary: bytes

    @property
    def nbytes(self) -> int:
        return len(self.data) + len(self.ancillary)


def dcm(decode_type: int, format_bytes: bytes = b"") -> bytes:
    """The 16-byte DCM header: type, DCM version, two reserved bytes, then the format's own bytes 4..15."""
    if len(format_bytes) > DCM_BYTES - 4:
        raise ValueError(f"{len(format_bytes)} format bytes do not fit the DCM's 12")
    return bytes([decode_type, DCM_VERSION, 0, 0]) + format_bytes.ljust(DCM_BYTES - 4, b"\0")


def check_dcm(ancillary: bytes, decode_type: int, version_offset: int = 4) -> None:
    """What decode.cc and the format's Setup check before decoding; ValueError where they would fail."""
    if len(ancillary) < DCM_BYTES:
        raise ValueError(f"ancillary tensor of {len(ancillary)} bytes: shorter than the {DCM_BYTES}-byte DCM")
    if ancillary[1] != DCM_VERSION:
        raise ValueError(f"DCM version {ancillary[1]} != {DCM_VERSION}")
    if ancillary[0] != decode_type:
        raise ValueError(f"DCM type {ancillary[0]}, expected {decode_type}")
    if ancillary[version_offset] != 1:
        raise ValueError(f"format version {ancillary[version_offset]} != 1")
