"""The serial protocol of the firmware, for host programs (bench.on_device.run, bench.virtual.device, tests).

Contract: everything comes from the one definition, mcu/protocol/protocol.json: `Command`, `Event`,
`Status`, `DType` and `ModelState` enums, `LIMITS`, `UART_BAUD`, and the payload layouts. `encode_request` /
`encode_reply` build wire bytes; `decode_message` turns the bytes between two delimiters into a `Message`
whose `fields` are the decoded payload (the error layout when status is not OK). Errors are typed:
`FrameError` (framing, CRC, lengths), `LayoutError` (payload vs layout), both `ProtocolError`s.
The firmware's C header is generated from the same file (bench.link.protocol_gen) and tested for equality.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

from bench.link.frame import (
    Frame,
    FrameError,
    FrameSplitter,
    ProtocolError,
    cobs_decode,
    cobs_encode,
    crc32,
    decode_frame,
    encode_frame,
)
from bench.link.layout import LayoutError, pack, unpack

DEFINITION_PATH = Path(__file__).resolve().parents[2] / "mcu" / "protocol" / "protocol.json"
DEFINITION: dict[str, Any] = json.loads(DEFINITION_PATH.read_text())

VERSION: int = DEFINITION["version"]
LIMITS: dict[str, int] = DEFINITION["limits"]
UART_BAUD: int = DEFINITION["uart"]["baud"]  # the firmware's serial line rate (8N1); bench.link.line.DEFAULT_BAUD
REPLY_FLAG: int = DEFINITION["framing"]["reply_flag"]
UNPARSED_REPLY: int = DEFINITION["framing"]["unparsed_reply_command"]
LAYOUTS: dict[str, list] = DEFINITION["layouts"]

Command = IntEnum("Command", {c["name"]: c["code"] for c in DEFINITION["commands"]})
Event = IntEnum("Event", {e["name"]: e["code"] for e in DEFINITION["events"]})
Status = IntEnum("Status", {s["name"]: s["code"] for s in DEFINITION["statuses"]})
DType = IntEnum("DType", DEFINITION["enums"]["dtype"])
ModelState = IntEnum("ModelState", DEFINITION["enums"]["model_state"])

_COMMANDS = {c["code"]: c for c in DEFINITION["commands"]}
_EVENTS = {e["code"]: e for e in DEFINITION["events"]}

__all__ = [
    "Command", "DType", "Event", "Frame", "FrameError", "FrameSplitter", "LayoutError", "Message", "ModelState",
    "ProtocolError", "Status", "cobs_decode", "cobs_encode", "crc32", "decode_frame", "decode_message",
    "encode_frame", "encode_reply", "encode_request", "request_payload", "reply_payload",
]  # fmt: skip


@dataclass
class Message:
    """A decoded device-to-host (or host-to-device) frame with its payload fields."""

    frame: Frame
    kind: str  # "reply", "event", "request" or "unparsed" (the device's answer to a frame it could not read)
    name: str
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return Status(self.frame.status)

    @property
    def ok(self) -> bool:
        return self.frame.status == Status.OK

    @property
    def seq(self) -> int:
        return self.frame.seq


def request_payload(command: Command, **values: Any) -> bytes:
    return pack(_COMMANDS[int(command)]["request"], values, LAYOUTS)


def reply_payload(command: Command, **values: Any) -> bytes:
    return pack(_COMMANDS[int(command)]["reply"], values, LAYOUTS)


def encode_request(command: Command, seq: int, **values: Any) -> bytes:
    return encode_frame(Frame(int(command), 0, seq, request_payload(command, **values)))


def encode_reply(command: Command, seq: int, status: Status = Status.OK, **values: Any) -> bytes:
    """A reply as the device sends it: an error layout (detail, message) when status is not OK."""
    if status != Status.OK:
        payload = pack(LAYOUTS["error"], {"detail": values.get("detail", 0), "message": values.get("message", b"")}, LAYOUTS)
    else:
        payload = reply_payload(command, **values)
    return encode_frame(Frame(int(command) | REPLY_FLAG, int(status), seq, payload))


def decode_message(encoded: bytes, *, from_device: bool = True) -> Message:
    """Decode one frame body (between delimiters) and its payload layout."""
    frame = decode_frame(encoded)
    if not from_device:
        spec = _COMMANDS.get(frame.command)
        if spec is None:
            raise LayoutError(f"unknown command {frame.command}")
        return Message(frame, "request", spec["name"], unpack(spec["request"], frame.payload, LAYOUTS))
    if not frame.command & REPLY_FLAG:
        raise LayoutError(f"command byte {frame.command:#04x} lacks the reply flag")
    code = frame.command & ~REPLY_FLAG
    if frame.command == UNPARSED_REPLY:
        return Message(frame, "unparsed", "UNPARSED", unpack(LAYOUTS["error"], frame.payload, LAYOUTS))
    if code in _EVENTS:
        return Message(frame, "event", _EVENTS[code]["name"], unpack(_EVENTS[code]["payload"], frame.payload, LAYOUTS))
    spec = _COMMANDS.get(code)
    name = spec["name"] if spec else f"COMMAND_{code}"
    if frame.status != Status.OK or spec is None:
        return Message(frame, "reply", name, unpack(LAYOUTS["error"], frame.payload, LAYOUTS))
    return Message(frame, "reply", name, unpack(spec["reply"], frame.payload, LAYOUTS))
