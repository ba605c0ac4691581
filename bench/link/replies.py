"""The typed replies of the serial protocol: `DeviceInfo` (HELLO, with its input and output `TensorInfo`), `Inference`
(INVOKE: output, ticks, upload time), `Profile` (PROFILE: the per-op `OpTicks`, and how many ops had no record).

Built from the fields bench.link.protocol decodes; nothing here knows a byte layout.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.link.protocol import DType, ModelState


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    scale: float
    zero_point: int
    bytes: int

    @classmethod
    def from_fields(cls, f: dict) -> TensorInfo:
        try:
            dtype = DType(f["dtype"]).name.lower()
        except ValueError:
            dtype = f"dtype {f['dtype']}"
        return cls(dtype, tuple(f["dims"][: f["ndims"]]), float(f["scale"]), int(f["zero_point"]), int(f["bytes"]))


@dataclass(frozen=True)
class DeviceInfo:
    protocol_version: int
    max_request_payload: int
    max_reply_payload: int
    input_chunk_max: int
    clock_hz: int
    tick_hz: int
    arena_bytes: int
    arena_used_bytes: int
    model_state: str
    model_size: int
    model_sha256: str
    input: TensorInfo
    output: TensorInfo
    board: str
    timer_source: str
    kernels: str
    firmware_git_sha: str
    build_flags: str
    compiler: str
    model_name: str
    model_message: str

    @property
    def virtual(self) -> bool:
        """A host process serving the protocol (bench.virtual.device), not a microcontroller."""
        return self.board.startswith("virtual")

    @property
    def emulated(self) -> bool:
        return "qemu" in self.board.lower()

    @classmethod
    def from_fields(cls, f: dict) -> DeviceInfo:
        try:
            state = ModelState(f["model_state"]).name
        except ValueError:
            state = f"state {f['model_state']}"
        texts = ("board", "timer_source", "kernels", "firmware_git_sha", "build_flags", "compiler", "model_name", "model_message")
        return cls(
            **{k: int(f[k]) for k in ("protocol_version", "max_request_payload", "max_reply_payload", "input_chunk_max")},
            **{k: int(f[k]) for k in ("clock_hz", "tick_hz", "arena_bytes", "arena_used_bytes", "model_size")},
            model_state=state,
            model_sha256=bytes(f["model_sha256"]).hex(),
            input=TensorInfo.from_fields(f["input"]),
            output=TensorInfo.from_fields(f["output"]),
            **{k: str(f[k]) for k in texts},
        )

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self) | {"virtual": self.virtual, "emulated": self.emulated}


@dataclass(frozen=True)
class Inference:
    output: bytes
    ticks: int
    upload_s: float  # wall time of the upload, retries included
    upload_bytes: int


@dataclass(frozen=True)
class OpTicks:
    tag: str
    ticks: int


@dataclass(frozen=True)
class Profile:
    """The per-op records of the last INVOKE; `dropped` ops ran after them without a record (the profiler was full):
    a truncated profile when not 0."""

    records: list[OpTicks]
    dropped: int = 0
