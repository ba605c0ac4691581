"""TFLM's Huffman format (DECODE type 1): prefix codes for the element values, decoded through lookup tables.

What the decoder (tensorflow/lite/micro/kernels/decode_state_huffman.cc, its test decode_state_huffman_test.cc)
reads, and so what `encode` writes:

- The encoded tensor is a bit stream, most significant bit first, read as 32-bit big-endian words (the
  decoder byte-swaps on a little-endian CPU): plain bytes in stream order, padded to whole words.
- The ancillary tensor is the 16-byte DCM (type 1; byte 4 the Huffman version, 1; byte 5 the root table's
  width minus one in its high nibble, bit 0 set for 32-bit table entries), then the tables.
- Per element the decoder reads `root width` bits and indexes the root table. An entry with the top bit
  set is a symbol: its value in the low bits (11 of a 16-bit entry, 27 of a 32-bit one; the element is the
  low 8 or 16 bits), and in the 4-bit count field how many of the bits just read the code used; the rest
  are put back. An entry without it points to a sub-table: count + 1 more bits index it, at `offset`
  entries after the pointing entry. 16-bit entries hold int8 symbols only; int16 needs 32-bit entries.

`encode` builds length-limited canonical Huffman codes from the value counts, lays the tables out with
every sub-table after its parent (offsets fit 11 bits, or the 32-bit layout is used), and picks the root
width that makes the tables smallest. Every element costs at least one bit, so this pays for a tensor
whose values are few or skewed: clustered, or pruned (the zero point then takes a 1- or 2-bit code).
`decode` ports the C++ loop (word reads, put-back) to Python: the model the encodings are checked against.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from convert.decode_formats import DCM_BYTES, TYPE_HUFFMAN, Encoded, EncodeError, check_dcm, dcm

HUFFMAN_VERSION = 1
MAX_TABLE_BITS = 12  # widest table (root or sub-table); the 4-bit count field allows 15
MAX_CODE_BITS = 24  # codes are length-limited to this (multi-level tables decode any length)
FOUND16, COUNT_SHIFT16, VALUE_MASK16 = 0x8000, 11, 0x07FF
FOUND32, COUNT_SHIFT32, VALUE_MASK32 = 0x80000000, 27, 0x07FFFFFF
SYMBOL_TYPES = {"int8": np.uint8, "int16": np.uint16}


@dataclass(frozen=True)
class Tables:
    entries: list[int]
    root_bits: int
    wide: bool  # 32-bit entries

    @property
    def nbytes(self) -> int:
        return len(self.entries) * (4 if self.wide else 2)


def code_lengths(counts: dict[int, int], limit: int = MAX_CODE_BITS) -> dict[int, int]:
    """Huffman code length per symbol; the counts are flattened (halved, floor 1) until no code is longer
    than `limit`. One symbol gets a 1-bit code: the decoder reads at least one bit per element."""
    if len(counts) == 1:
        return {next(iter(counts)): 1}
    weights = dict(counts)
    while True:
        heap = [(w, i, (s,)) for i, (s, w) in enumerate(sorted(weights.items()))]
        heapq.heapify(heap)
        depth = dict.fromkeys(weights, 0)
        tie = len(heap)
        while len(heap) > 1:
            w1, _, a = heapq.heappop(heap)
            w2, _, b = heapq.heappop(heap)
            for s in a + b:
                depth[s] += 1
            heapq.heappush(heap, (w1 + w2, tie, a + b))
            tie += 1
        if max(depth.values()) <= limit:
            return depth
        weights = {s: max(1, w >> 1) for s, w in weights.items()}


def canonical_codes(lengths: dict[int, int]) -> dict[int, tuple[int, int]]:
    """symbol -> (code, length), canonical: codes of one length are consecutive, shorter ones first."""
    codes, code, previous = {}, 0, 0
    for symbol, length in sorted(lengths.items(), key=lambda item: (item[1], item[0])):
        code <<= length - previous
        codes[symbol] = (code, length)
        code += 1
        previous = length
    return codes


def build_tables(codes: dict[int, tuple[int, int]], root_bits: int, wide: bool) -> Tables:
    """The decoder's tables for `codes` with a `root_bits`-wide root. Raises EncodeError if an offset or a
    symbol does not fit the entry width."""
    found, shift, value_mask = (FOUND32, COUNT_SHIFT32, VALUE_MASK32) if wide else (FOUND16, COUNT_SHIFT16, VALUE_MASK16)
    entries: list[int] = []
    pending = [(None, root_bits, [(code, length, symbol) for symbol, (code, length) in codes.items()])]
    while pending:  # breadth first: each block is contiguous and lies after the entry that points to it
        parent, width, group = pending.pop(0)
        start = len(entries)
        if parent is not None:
            offset = start - parent
            if offset > value_mask:
                raise EncodeError(f"sub-table offset {offset} does not fit a {'32' if wide else '16'}-bit entry")
            entries[parent] |= offset
        entries.extend([None] * (1 << width))
        longer: dict[int, list] = {}
        for code, length, symbol in group:
            if symbol > value_mask:
                raise EncodeError(f"symbol {symbol} does not fit a {'32' if wide else '16'}-bit entry")
            if length <= width:
                first = code << (width - length)
                entry = found | (length << shift) | symbol
                for i in range(first, first + (1 << (width - length))):
                    entries[start + i] = entry
            else:
                rest = length - width
                longer.setdefault(code >> rest, []).append((code & ((1 << rest) - 1), rest, symbol))
        for prefix, sub in sorted(longer.items()):
            sub_width = min(max(length for _, length, _ in sub), MAX_TABLE_BITS)
            entries[start + prefix] = (sub_width - 1) << shift  # the offset is or-ed in when the block is placed
            pending.append((start + prefix, sub_width, sub))
        # Prefixes no code starts with (only with a single 1-bit code) never occur; any symbol will do.
        filler = next(e for e in entries[start:] if e is not None)
        entries[start:] = [filler if e is None else e for e in entries[start:]]
    return Tables(entries, root_bits, wide)


def smallest_tables(codes: dict[int, tuple[int, int]], wide: bool) -> Tables:
    """The root width (1..MAX_TABLE_BITS, at most the longest code) with the fewest table bytes; on a tie the
    wider root (fewer lookups per element)."""
    longest = max(length for _, length in codes.values())
    best = None
    for root_bits in range(1, min(longest, MAX_TABLE_BITS) + 1):
        tables = build_tables(codes, root_bits, wide)
        if best is None or tables.nbytes <= best.nbytes:
            best = tables
    return best


def _bit_stream(symbols: np.ndarray, codes: dict[int, tuple[int, int]], pad_bits: int) -> bytes:
    """The codes of `symbols`, most significant bit first, padded with zeros to whole 32-bit words with at
    least `pad_bits` to spare (the decoder reads a whole table width before it knows the code's length)."""
    code_of = np.zeros(1 << (8 * symbols.itemsize), np.int64)
    length_of = np.zeros_like(code_of)
    for symbol, (code, length) in codes.items():
        code_of[symbol], length_of[symbol] = code, length
    code, length = code_of[symbols], length_of[symbols]
    starts = np.cumsum(length) - length
    total = int(length.sum())
    words = -(-(total + pad_bits) // 32)
    bits = np.zeros(words * 32, np.uint8)
    for j in range(int(length.max())):
        has = length > j
        bits[starts[has] + j] = (code[has] >> (length[has] - 1 - j)) & 1
    return np.packbits(bits, bitorder="big").tobytes()


def encode(array: np.ndarray) -> Encoded:
    """`array` (int8 or int16) in TFLM's Huffman format. Raises EncodeError for other types."""
    array = np.asarray(array)
    name = np.dtype(array.dtype).name
    if name not in SYMBOL_TYPES:
        raise EncodeError(f"the Huffman decoder handles int8 and int16 tensors, not {name}")
    if array.size == 0:
        raise EncodeError("an empty tensor has nothing to encode")
    symbols = np.ascontiguousarray(array).reshape(-1).view(SYMBOL_TYPES[name])
    values, counts = np.unique(symbols, return_counts=True)
    codes = canonical_codes(code_lengths(dict(zip(values.tolist(), counts.tolist(), strict=True))))
    tables = None
    if name == "int8":
        try:
            tables = smallest_tables(codes, wide=False)
        except EncodeError:
            tables = None  # an offset past 11 bits: the 32-bit layout has 27
    tables = tables or smallest_tables(codes, wide=True)
    header = dcm(TYPE_HUFFMAN, bytes([HUFFMAN_VERSION, ((tables.root_bits - 1) << 4) | int(tables.wide)]))
    table_bytes = np.asarray(tables.entries, "<u4" if tables.wide else "<u2").tobytes()
    return Encoded(data=_bit_stream(symbols, codes, MAX_TABLE_BITS), ancillary=header + table_bytes)


def decode(data: bytes, ancillary: bytes, count: int, dtype) -> np.ndarray:
    """The Huffman decoder's output (`count` elements of `dtype`), ported statement by statement from
    DecompressToBufferWith16BitTable / ...32BitTable. ValueError where the C++ decoder would fail or
    read past its buffers (it does not check; this model does)."""
    check_dcm(ancillary, TYPE_HUFFMAN)
    dtype = np.dtype(dtype)
    wide = bool(ancillary[5] & 0x01)
    if not wide and dtype.name != "int8":
        raise ValueError("16-bit tables decode int8 only (Setup: TF_LITE_ENSURE_TYPES_EQ(output.type, kTfLiteInt8))")
    if dtype.name not in SYMBOL_TYPES:
        raise ValueError(f"the Huffman decoder outputs int8 or int16, not {dtype.name}")
    found, shift, value_mask = (FOUND32, COUNT_SHIFT32, VALUE_MASK32) if wide else (FOUND16, COUNT_SHIFT16, VALUE_MASK16)
    tables = np.frombuffer(ancillary[DCM_BYTES:], "<u4" if wide else "<u2").tolist()
    words = np.frombuffer(data[: len(data) // 4 * 4], ">u4").tolist()
    root_bits = ((ancillary[5] & 0xF0) >> 4) + 1
    state = {"offset": 32, "next": 1, "hold": None}
    if count > 0:
        if not words:
            raise ValueError("no code words for a non-empty tensor")
        state["hold"] = words[0]

    def load(index: int) -> int:
        if index >= len(words):
            raise ValueError("the decoder would read past the encoded tensor")
        return words[index]

    def get_bits(n: int) -> int:
        output = 0
        if n > state["offset"]:
            output = (state["hold"] & ((1 << state["offset"]) - 1)) << (n - state["offset"])
            n -= state["offset"]
            state["hold"] = load(state["next"])
            state["next"] += 1
            state["offset"] = 32
        output |= (state["hold"] >> (state["offset"] - n)) & ((1 << n) - 1)
        state["offset"] -= n
        return output

    def put_back(n: int) -> None:
        state["offset"] += n
        if state["offset"] > 32:
            state["offset"] -= 32
            state["next"] -= 1
            state["hold"] = words[state["next"] - 1]

    out = np.empty(count, SYMBOL_TYPES[dtype.name])
    symbol_mask = 0xFF if dtype.name == "int8" else 0xFFFF
    for i in range(count):
        used = root_bits
        position = get_bits(used)
        if position >= len(tables):
            raise ValueError("a code indexes past the tables")
        value = tables[position]
        while not value & found:
            used = ((value >> shift) & 0xF) + 1
            position += (value & value_mask) + get_bits(used)
            if position >= len(tables):
                raise ValueError("a code indexes past the tables")
            value = tables[position]
        out[i] = value & symbol_mask
        residual = (value >> shift) & 0xF
        if used > residual:
            put_back(used - residual)
    return out.view(dtype)
