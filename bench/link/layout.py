"""Payload layouts of the serial protocol: pack and unpack a field list of mcu/protocol/protocol.json.

Contract: a layout is a list of [name, type] pairs (types in the definition's "field_types"); `pack(fields,
values, layouts)` returns bytes, `unpack(fields, payload, layouts)` returns a dict and raises `LayoutError`
when the payload is shorter or longer than the layout says. Little-endian throughout.
"""

from __future__ import annotations

import struct
from typing import Any

from bench.link.frame import ProtocolError

SCALARS = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i8": "b", "i16": "h", "i32": "i", "f32": "f", "u16x4": "4H"}
Field = tuple[str, str] | list[str]


class LayoutError(ProtocolError):
    """A payload that does not match its layout."""


def fixed_bytes(kind: str) -> int | None:
    """The size of a fixed-size byte field ("bytes<N>"), None for any other type. "bytes16" is not one: it is a
    byte string with a u16 length in front (as "str8" has a u8)."""
    if kind.startswith("bytes") and kind[5:].isdigit() and kind != "bytes16":
        return int(kind[5:])
    return None


def pack(fields: list[Field], values: dict[str, Any], layouts: dict[str, list[Field]]) -> bytes:
    out = bytearray()
    for name, kind in fields:
        value = values[name]
        if kind in SCALARS:
            out += struct.pack("<" + SCALARS[kind], *(value if kind == "u16x4" else [value]))
        elif (size := fixed_bytes(kind)) is not None:
            if len(value) != size:
                raise LayoutError(f"{name}: {len(value)} bytes, layout wants {size}")
            out += bytes(value)
        elif kind in ("str8", "bytes16"):
            raw = value.encode("ascii") if isinstance(value, str) else bytes(value)
            limit = 0xFF if kind == "str8" else 0xFFFF
            if len(raw) > limit:
                raise LayoutError(f"{name}: {len(raw)} bytes do not fit {kind}")
            out += struct.pack("<B" if kind == "str8" else "<H", len(raw)) + raw
        elif kind == "rest":
            out += value.encode("ascii") if isinstance(value, str) else bytes(value)
        elif kind.startswith("list:"):
            _, _, record = kind.split(":")
            for item in value:
                out += pack(layouts[record], item, layouts)
        elif kind in layouts:
            out += pack(layouts[kind], value, layouts)
        else:
            raise LayoutError(f"{name}: unknown field type {kind!r}")
    return bytes(out)


def _take(payload: bytes, offset: int, size: int, name: str) -> bytes:
    if offset + size > len(payload):
        raise LayoutError(f"{name}: needs {size} bytes at offset {offset}, payload has {len(payload)}")
    return payload[offset : offset + size]


def unpack_from(fields: list[Field], payload: bytes, offset: int, layouts: dict[str, list[Field]]) -> tuple[dict[str, Any], int]:
    values: dict[str, Any] = {}
    for name, kind in fields:
        if kind in SCALARS:
            fmt = struct.Struct("<" + SCALARS[kind])
            items = fmt.unpack(_take(payload, offset, fmt.size, name))
            values[name] = list(items) if kind == "u16x4" else items[0]
            offset += fmt.size
        elif (size := fixed_bytes(kind)) is not None:
            values[name] = _take(payload, offset, size, name)
            offset += size
        elif kind in ("str8", "bytes16"):
            prefix = 1 if kind == "str8" else 2
            (length,) = struct.unpack("<B" if kind == "str8" else "<H", _take(payload, offset, prefix, name))
            raw = _take(payload, offset + prefix, length, name)
            values[name] = raw.decode("ascii", "replace") if kind == "str8" else raw
            offset += prefix + length
        elif kind == "rest":
            values[name] = payload[offset:]
            offset = len(payload)
        elif kind.startswith("list:"):
            _, count_field, record = kind.split(":")
            items = []
            for _ in range(values[count_field]):
                item, offset = unpack_from(layouts[record], payload, offset, layouts)
                items.append(item)
            values[name] = items
        elif kind in layouts:
            values[name], offset = unpack_from(layouts[kind], payload, offset, layouts)
        else:
            raise LayoutError(f"{name}: unknown field type {kind!r}")
    return values, offset


def unpack(fields: list[Field], payload: bytes, layouts: dict[str, list[Field]]) -> dict[str, Any]:
    values, end = unpack_from(fields, payload, 0, layouts)
    if end != len(payload):
        raise LayoutError(f"{len(payload) - end} bytes left over after the layout's {end}")
    return values
