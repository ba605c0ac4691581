"""TFLM's prune and Huffman DECODE formats (convert.decode_formats): the Python ports of the C++ decoders
against TFLM's own test vectors (kernels/decode_state_prune_test.cc, decode_state_huffman_test.cc), the
encoders round-tripped through those ports over types, axes and zero points, the inputs the decoders cannot
represent refused, and (marked tflm) the same encodings through the real C++ DECODE of the TFLM host
interpreter and of the pinned TFLM tree compiled here."""

from __future__ import annotations

import numpy as np
import pytest

from convert import tflm_host
from convert.decode_formats import DCM_BYTES, EncodeError, huffman, prune

needs_wheel = pytest.mark.skipif(not tflm_host.available(), reason="tflite-micro is not installed (Linux x86_64 wheels only)")

# ---- TFLM's test vectors (tensorflow/lite/micro/kernels/decode_state_*_test.cc at the pinned commit) ----

HUFFMAN_ENCODED = bytes.fromhex("F00D79FC9C1A6E4C32AF29B35DF6360250158CA795DB29683FBAB7EDB119E2E0")
HUFFMAN_EXPECT = "nmmacnanefdacopjomeckifookhbdbdmjjdmjgojfecpbiibmanbbjbnlgjafejp"
HUFFMAN_TABLE16 = [
    0x986D, 0x9861, 0x986A, 0x0005, 0x0806, 0x0809, 0x000E, 0x000F, 0x886F, 0x8868, 0x8864, 0x8864,
    0x9069, 0x9066, 0x8863, 0x8863, 0x0002, 0x906B, 0x8867, 0x886C, 0x8865, 0x8862, 0x8870, 0x886E,
]  # fmt: skip
PRUNE_ENCODED = bytes([0xA5, 0x5A, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5, 0xA5])
PRUNE_VALUES0 = [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4,
                 11, 12, 13, 14, 11, 12, 13, 14, 11, 12, 13, 14, 11, 12, 13, 14, 11, 12, 13, 14]  # fmt: skip
PRUNE_VALUES4 = [17, 18, 19, 20] * 5 + [21, 22, 23, 24] * 5


def huffman_header(root_bits: int, wide: bool) -> bytes:
    return bytes([1, 1, 0, 0, 1, ((root_bits - 1) << 4) | int(wide)]).ljust(DCM_BYTES, b"\0")


def prune_header() -> bytes:
    return bytes([2, 1, 0, 0, 1]).ljust(DCM_BYTES, b"\0")


@pytest.mark.parametrize("wide", [False, True])
def test_huffman_port_decodes_tflms_test_vector(wide):
    if wide:  # the 32-bit table of the test: same entries, count and found bits moved to the top
        table = [((e & 0x8000) << 16) | ((e & 0x7800) << 16) | (e & 0x07FF) for e in HUFFMAN_TABLE16]
        ancillary = huffman_header(3, True) + np.asarray(table, "<u4").tobytes()
    else:
        ancillary = huffman_header(3, False) + np.asarray(HUFFMAN_TABLE16, "<u2").tobytes()
    got = huffman.decode(HUFFMAN_ENCODED, ancillary, 64, np.int8)
    assert bytes(got.view(np.uint8)).decode() == HUFFMAN_EXPECT
    if wide:
        assert bytes(huffman.decode(HUFFMAN_ENCODED, ancillary, 64, np.int16).astype(np.uint8)).decode() == HUFFMAN_EXPECT
    else:  # Setup refuses int16 output with 16-bit tables (DecodeHuffmanTable16BitsInt16Fail)
        with pytest.raises(ValueError, match="int8 only"):
            huffman.decode(HUFFMAN_ENCODED, ancillary, 64, np.int16)


def test_prune_port_decodes_tflms_mixed_zero_point_vector():
    ancillary = prune_header() + np.asarray(PRUNE_VALUES0, np.int8).tobytes()
    got = prune.decode(PRUNE_ENCODED, ancillary, (2, 5, 8, 1), np.int8, [-128, 0], 0)
    row = np.array([1, 0, 1, 0, 0, 1, 0, 1], bool)  # 0xA5
    expect0 = np.full((5, 8), -128, np.int8)
    expect1 = np.zeros((5, 8), np.int8)
    for r in range(5):
        mask = ~row if r == 1 else row  # byte 1 is 0x5A
        expect0[r][mask] = [1, 2, 3, 4]
        expect1[r][row] = [11, 12, 13, 14]
    assert np.array_equal(got.reshape(2, 5, 8), np.stack([expect0, expect1]))


def test_prune_port_decodes_tflms_alternate_axis_vector():
    ancillary = prune_header() + np.asarray(PRUNE_VALUES4, np.int8).tobytes()
    zps = [0, *range(-1, -20, -1)] * 2
    got = prune.decode(PRUNE_ENCODED, ancillary, (1, 2, 1, 40), np.int8, zps, 3).reshape(-1)
    assert list(got[:10]) == [17, -1, 18, -3, -4, 19, -6, 20, -8, 17]  # kExpectPrune4's first row
    assert list(got[40:50]) == [21, -1, 22, -3, -4, 23, -6, 24, 21, -9]


# ---- encoders round-trip through the ports ----


def sparse_int8(shape, density=0.33, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 40, size=shape).clip(-128, 127).astype(np.int8)
    return np.where(rng.random(shape) < density, values, 0).astype(np.int8)


PRUNE_CASES = {
    "int8 per-channel zp axis 0": (sparse_int8((4, 3, 3, 5)), [0, 5, -7, 0], 0),
    "int8 per-channel zp last axis": (sparse_int8((1, 3, 3, 6)), [1, -1, 2, -2, 3, 0], 3),
    "int8 all zp 0": (sparse_int8((16, 1, 1, 8)), [0] * 16, 0),
    "int8 one channel zp -44": (np.where(sparse_int8((80,)) == 0, -44, sparse_int8((80,))).astype(np.int8), [-44], 0),
    "int16": (sparse_int8((7, 9)).astype(np.int16) * 100, [0] * 7, 0),
    "int32 bias": (np.array([0, 0, 70000, 0, -3, 0, 0, 0, 0, 1], np.int32), [0] * 10, 0),
    "float32 with -0.0": (np.array([0.0, -0.0, 1.5, 0.0, np.inf, 0.0, 0.0, -2.0, 0.0], np.float32), None, 0),
    "int64": (np.array([0, 1 << 40, 0, 0, -1], np.int64), None, 0),
    "bool": (np.array([True, False, False, True, False, False, False, False, True]), None, 0),
    "nothing kept": (np.zeros((3, 5), np.int8), [0, 0, 0], 0),
}


@pytest.mark.parametrize("case", PRUNE_CASES)
def test_prune_round_trips(case):
    array, zps, axis = PRUNE_CASES[case]
    encoded = prune.encode(array, zps, axis)
    back = prune.decode(encoded.data, encoded.ancillary, array.shape, array.dtype, zps, axis)
    assert back.dtype == array.dtype and np.array_equal(back.view(np.uint8), array.view(np.uint8))  # bit for bit (-0.0)
    assert encoded.nbytes == prune.encoded_bytes(array, zps, axis)
    assert len(encoded.data) == -(-array.size // 8)


def test_prune_pays_for_a_pruned_int8_tensor():
    array = sparse_int8((64, 3, 3, 32), density=0.33)
    assert prune.encode(array, [0] * 64, 0).nbytes < 0.47 * array.size  # 1 bit + 0.33 bytes per weight


def fibonacci_counts(n: int) -> np.ndarray:
    """Values whose counts grow like Fibonacci numbers: the shape that gives the longest Huffman codes."""
    counts, a, b = [], 1, 1
    for _ in range(n):
        counts.append(a)
        a, b = b, a + b
    return np.repeat(np.arange(n, dtype=np.int8), counts)


HUFFMAN_CASES = {
    "random int8": np.random.default_rng(1).integers(-128, 128, 3000).astype(np.int8),
    "pruned int8": sparse_int8((32, 3, 3, 16)),
    "all 256 values": np.arange(-128, 128, dtype=np.int8).repeat(3),
    "one value": np.full(77, -5, np.int8),
    "two values": np.array([3, 3, 3, -1] * 20, np.int8),
    "long codes (multi-level tables)": fibonacci_counts(22),
    "int16": np.random.default_rng(2).normal(0, 900, 4000).astype(np.int16),
    "odd length": sparse_int8((37,)),
}


@pytest.mark.parametrize("case", HUFFMAN_CASES)
def test_huffman_round_trips(case):
    array = HUFFMAN_CASES[case]
    encoded = huffman.encode(array)
    assert len(encoded.data) % 4 == 0  # read as 32-bit words
    assert bool(encoded.ancillary[5] & 1) == (array.dtype == np.int16) or case == "all 256 values"
    back = huffman.decode(encoded.data, encoded.ancillary, array.size, array.dtype)
    assert np.array_equal(back, array.reshape(-1))


def test_huffman_codes_are_length_limited_and_prefix_free():
    counts = dict(enumerate(np.unique(fibonacci_counts(22), return_counts=True)[1].tolist()))
    lengths = huffman.code_lengths(counts, limit=12)
    assert max(lengths.values()) <= 12 and sum(2.0**-n for n in lengths.values()) <= 1.0  # Kraft
    codes = huffman.canonical_codes(lengths)
    words = [format(c, f"0{n}b") for c, n in codes.values()]
    assert not any(a != b and b.startswith(a) for a in words for b in words)


def test_huffman_beats_prune_on_a_pruned_and_clustered_tensor():
    rng = np.random.default_rng(3)
    levels = rng.choice(np.r_[-120:-60, 60:120], size=16, replace=False).astype(np.int8)  # 16 shared values
    array = np.where(rng.random((64, 3, 3, 32)) < 0.33, rng.choice(levels, size=(64, 3, 3, 32)), 0).astype(np.int8)
    assert huffman.encode(array).nbytes < prune.encode(array, [0] * 64, 0).nbytes < array.size


# ---- what the decoders cannot represent is refused ----


def test_prune_refuses_an_axis_the_decoder_cannot_take():
    with pytest.raises(EncodeError, match="axis 0 or the last"):
        prune.encode(sparse_int8((4, 3, 5, 2)), [0, 0, 0], 2)


def test_prune_refuses_non_zero_zero_points_beyond_int8():
    with pytest.raises(EncodeError, match="non-zero zero points"):
        prune.encode(np.zeros((2, 3), np.int16), [0, 1], 0)


@pytest.mark.parametrize("dtype", [np.uint8, np.float64, np.int32])
def test_types_the_decoders_do_not_output_are_refused(dtype):
    with pytest.raises(EncodeError, match="handles"):
        huffman.encode(np.zeros(8, dtype))
    if dtype != np.int32:
        with pytest.raises(EncodeError, match="handles"):
            prune.encode(np.zeros(8, dtype))


def test_the_ports_refuse_to_read_past_their_buffers():
    array = sparse_int8((50,))
    encoded = huffman.encode(array)
    with pytest.raises(ValueError, match="past"):
        huffman.decode(encoded.data[:4], encoded.ancillary, array.size, np.int8)
    pruned = prune.encode(array)
    with pytest.raises(ValueError, match="past"):
        prune.decode(pruned.data, pruned.ancillary[:-1], array.shape, np.int8)


# ---- the real C++ decoders ----


REAL_CASES = [
    ("prune", "int8 per-channel zp axis 0"),
    ("prune", "int8 per-channel zp last axis"),
    ("prune", "int32 bias"),
    ("prune", "float32 with -0.0"),
    ("huffman", "pruned int8"),
    ("huffman", "all 256 values"),
    ("huffman", "long codes (multi-level tables)"),
    ("huffman", "int16"),
]


@pytest.mark.tflm
@needs_wheel
def _encoded_case(method: str, case: str):
    """(tensor, zero points, axis, encoded bytes) of one named case of the prune or Huffman tables."""
    if method == "prune":
        array, zps, axis = PRUNE_CASES[case]
        return array, zps, axis, prune.encode(array, zps, axis)
    return HUFFMAN_CASES[case], None, 0, huffman.encode(HUFFMAN_CASES[case])


@pytest.mark.parametrize(("method", "case"), REAL_CASES)
def test_the_tflm_host_interpreters_decode_gives_the_tensor_back(method, case):
    from convert.decode_formats.host_decoder import decode_on_host

    array, zps, axis, encoded = _encoded_case(method, case)
    got = decode_on_host(encoded, array.shape, array.dtype, zps, axis)
    assert np.array_equal(got.view(np.uint8), array.view(np.uint8))


TREE_SOURCES = [  # DECODE, TFLM's KernelRunner and what they link against, relative to the tree
    "tensorflow/lite/micro/kernels/" + name for name in (
        "decode.cc", "decode_state.cc", "decode_state_lut.cc", "decode_state_prune.cc", "decode_state_huffman.cc",
        "kernel_runner.cc", "kernel_util.cc", "decompress.cc", "decompress_common.cc")
] + [
    "tensorflow/lite/micro/" + name for name in (
        "fake_micro_context.cc", "micro_context.cc", "mock_micro_graph.cc", "arena_allocator/single_arena_buffer_allocator.cc",
        "memory_helpers.cc", "micro_log.cc", "debug_log.cc", "micro_utils.cc", "tflite_bridge/flatbuffer_conversions_bridge.cc",
        "tflite_bridge/micro_error_reporter.cc")
] + [
    "tensorflow/lite/kernels/kernel_util.cc", "tensorflow/lite/core/c/common.cc", "tensorflow/lite/kernels/internal/tensor_ctypes.cc",
    "tensorflow/lite/kernels/internal/portable_tensor_utils.cc", "tensorflow/lite/kernels/internal/quantization_util.cc",
    "tensorflow/lite/core/api/flatbuffer_conversions.cc", "tensorflow/compiler/mlir/lite/core/api/error_reporter.cc",
]  # fmt: skip


@pytest.fixture(scope="module")
def tree_decoder(tmp_path_factory):
    """mcu/test/host/decode_main.cc linked with the pinned TFLM tree's DECODE kernel and TFLM's KernelRunner, by g++
    (-O0: about 2 minutes on 2 cores, hence slow)."""
    import shutil
    import subprocess

    from conftest import REPO_ROOT, require_tflm_tree

    tree = require_tflm_tree()
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("needs a host C++ compiler (g++)")
    sources = [REPO_ROOT / "mcu/test/host/decode_main.cc", *(tree / s for s in TREE_SOURCES)]
    binary = tmp_path_factory.mktemp("decode") / "decode_main"
    flags = ["-std=c++17", "-O0", "-fno-exceptions", "-fno-rtti", "-DTF_LITE_STATIC_MEMORY", "-DUSE_TFLM_COMPRESSION"]
    includes = [f"-I{tree}", f"-I{tree / 'third_party/flatbuffers/include'}", f"-I{tree / 'third_party/gemmlowp'}"]
    subprocess.run([gxx, *flags, *includes, *map(str, sources), "-o", str(binary)], check=True, capture_output=True)
    return binary


def decode_with_tree(binary, folder, encoded, shape, dtype, zps, axis) -> np.ndarray:
    import subprocess

    (folder / "data").write_bytes(encoded.data)
    (folder / "ancillary").write_bytes(encoded.ancillary)
    zero_points = ",".join(map(str, zps)) if zps else "-"
    dims = ",".join(map(str, shape))
    command = [str(binary), np.dtype(dtype).name, dims, zero_points, str(axis), str(folder / "data"), str(folder / "ancillary")]
    subprocess.run([*command, str(folder / "out")], check=True, capture_output=True)
    return np.frombuffer((folder / "out").read_bytes(), np.dtype(dtype)).reshape(shape)


@pytest.mark.slow
@pytest.mark.tflm
@pytest.mark.parametrize(("method", "case"), REAL_CASES)
def test_the_pinned_trees_decode_kernel_gives_the_tensor_back(tree_decoder, tmp_path, method, case):
    array, zps, axis, encoded = _encoded_case(method, case)
    got = decode_with_tree(tree_decoder, tmp_path, encoded, array.shape, array.dtype, zps, axis)
    assert np.array_equal(got.view(np.uint8), array.view(np.uint8))
