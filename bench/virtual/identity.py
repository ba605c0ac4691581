"""What a virtual device's HELLO reports about its model and itself (`Identity`): read from an artifact folder as the
firmware built from it would report it, or made up for the checksum engine; `tensor_fields` is a tensor's HELLO layout."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from bench.link.protocol import DType

BOARD = "virtual (host TFLM interpreter)"
BOARD_CHECKSUM = "virtual (checksum engine: outputs are a CRC of the input, no model)"


@dataclass
class Identity:
    """What HELLO reports: the model's tensors and the device's texts."""

    sha256: bytes
    model_size: int
    input_shape: list[int]
    input_scale: float
    input_zero_point: int
    output_shape: list[int]
    output_scale: float
    output_zero_point: int
    arena_bytes: int
    arena_used_bytes: int
    model_name: str
    board: str
    kernels: str


def identity_from_artifact(folder: Path) -> Identity:
    """The HELLO of the firmware built from this artifact, as far as a host can know it."""
    from convert.artifact_reader import open_artifact

    artifact = open_artifact(folder)
    arena = artifact.meta.get("arena") or {}
    return Identity(
        sha256=bytes.fromhex(artifact.sha256),
        model_size=len(artifact.model_bytes),
        input_shape=[1, *artifact.input_shape],
        input_scale=artifact.input_q.scale,
        input_zero_point=artifact.input_q.zero_point,
        output_shape=[1, len(artifact.labels)],
        output_scale=artifact.output_q.scale,
        output_zero_point=artifact.output_q.zero_point,
        arena_bytes=int(artifact.meta.get("arena_bytes_for_firmware") or arena.get("arena_size") or 0),
        arena_used_bytes=int(arena.get("total") or 0),  # measured by the host interpreter at conversion
        model_name=artifact.name,
        board=BOARD,
        kernels="tflm reference (host)",
    )


def checksum_identity(input_shape=(1, 32, 32, 3), classes: int = 10) -> Identity:
    return Identity(
        sha256=hashlib.sha256(b"bench.virtual.device checksum engine").digest(),
        model_size=0,
        input_shape=list(input_shape),
        input_scale=1.0,
        input_zero_point=-128,
        output_shape=[1, classes],
        output_scale=1 / 256,
        output_zero_point=-128,
        arena_bytes=0,
        arena_used_bytes=0,
        model_name="checksum",
        board=BOARD_CHECKSUM,
        kernels="none",
    )


def tensor_fields(shape: list[int], scale: float, zero_point: int) -> dict:
    size = 1
    for d in shape:
        size *= d
    dims = list(shape) + [0] * (4 - len(shape))
    return {"dtype": int(DType.INT8), "ndims": len(shape), "dims": dims, "scale": scale, "zero_point": zero_point, "bytes": size}
