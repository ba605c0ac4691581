"""convert.decompression_region: the region's size from a model's DECODE operators (one operator's outputs at a time,
each 16-byte aligned, as TFLM's MicroContext places them), the board verdict with the region in the arena's RAM or
in a separate memory, the firmware package's macros (convert.codegen), and bad input refused with the fix named."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from convert import boards, codegen, lut
from convert import decompression_region as region
from convert.errors import BadInputError


@dataclass
class Tensor:
    name: str
    shape: tuple
    dtype: str = "int8"


@dataclass
class Operator:
    index: int
    op: str
    outputs: tuple


@dataclass
class Info:
    operators: list
    tensors: list


def graph(*decode_outputs: tuple) -> Info:
    """A graph with a CONV_2D and one DECODE operator per entry, each entry the shapes of that operator's outputs."""
    tensors = [Tensor("activation", (1, 8, 8, 4))]
    operators = [Operator(0, "CONV_2D", (0,))]
    for shapes in decode_outputs:
        first = len(tensors)
        tensors += [Tensor(f"t{first + i}", shape) for i, shape in enumerate(shapes)]
        operators.append(Operator(len(operators), lut.DECODE_OP, tuple(range(first, len(tensors)))))
    return Info(operators, tensors)


def test_the_region_holds_the_largest_decode_operator_not_the_sum_of_all():
    info = graph([(64, 3, 3, 16)], [(256, 3, 3, 64)], [(16, 1, 1, 128)])
    assert region.region_bytes(info) == 147_456  # fire8/fire9 expand3x3 of the CIFAR model; the three sum to 158,976


def test_outputs_of_one_operator_are_placed_one_after_another_each_16_byte_aligned():
    assert region.op_region_bytes([10, 20]) == 16 + 20
    assert region.op_region_bytes([32, 1, 1]) == 32 + 16 + 1
    info = graph([(10,), (20,)], [(40,)])  # 36 B for the first operator, 40 for the second
    assert region.region_bytes(info) == 48  # 40 rounded up to the buffer's alignment


def test_dtype_sizes_count_and_a_model_without_decode_needs_no_region():
    assert region.region_bytes(graph([(4, 4)]) | _dtype("int32")) == 64
    assert region.region_bytes(graph()) == 0
    with pytest.raises(ValueError, match="dtype complex64"):
        region.region_bytes(graph([(2,)]) | _dtype("complex64"))


class _dtype:
    """`info | _dtype("int32")`: the DECODE outputs of `info` with that dtype."""

    def __init__(self, dtype: str):
        self.dtype = dtype

    def __ror__(self, info: Info) -> Info:
        for tensor in info.tensors[1:]:
            tensor.dtype = self.dtype
        return info


def test_in_the_same_ram_the_region_adds_to_the_arena_and_in_a_separate_memory_it_must_fit_there():
    f405 = boards.get("netduinoplus2")
    same = region.fit(f405, 548_016, 111_920, 147_456)
    assert not same["fits_ram"] and same["arena_bytes"] == 111_920 + 147_456 and same["region_memory"] is None
    ccm = region.fit(f405, 548_016, 111_920, 147_456, separate_bytes=64 * 1024)
    assert ccm["fits_ram"] and not ccm["fits"] and ccm["region_left"] == 65_536 - 147_456
    small = region.fit(f405, 548_016, 100_000, 36_864, separate_bytes=64 * 1024)
    assert small["fits"] and small["region_left"] == 65_536 - 36_864


def test_the_package_states_the_region_and_its_arena_or_none():
    none = codegen.decompression_settings(None)
    assert "#define SQZ_MODEL_DECOMPRESSION_BYTES 0\n" in none and "ARENA_WITH_DECOMPRESSION_BYTES kTensorArenaBytes" in none
    measured = {"region_bytes": 147_456, "arena_host_bytes": 106_576, "arena_bytes": 111_920, "decoded_in_region": 18, "decode_ops": 18}
    text = codegen.decompression_settings(measured)
    assert "#define SQZ_MODEL_DECOMPRESSION_BYTES 147456\n" in text and "#define SQZ_MODEL_ARENA_WITH_DECOMPRESSION_BYTES 111920\n" in text
    settings = codegen.package_settings("m", {"input": {}, "output": {}}, [], {}, 203_280, 193_600, decompression=measured)
    assert settings["decompression"] == measured


def test_a_negative_region_is_refused():
    with pytest.raises(ValueError, match="give 0"):
        region.measure(b"", -1)


def test_an_artifact_without_decode_is_refused_with_the_fix_named(tmp_path, monkeypatch):
    from convert import artifact as artifact_module
    from convert import inspect_tflite

    monkeypatch.setattr(artifact_module, "load_artifact", lambda folder: {"tflite_file": "model.tflite"})
    monkeypatch.setattr(inspect_tflite, "read", lambda model: graph())
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "model.tflite").write_bytes(b"x")
    with pytest.raises(BadInputError, match=r"compress it first \(python -m convert.compress\)"):
        region.write_artifact(tmp_path / "a", tmp_path / "b")
    assert region.main(["--artifact", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 2


def test_help():
    with pytest.raises(SystemExit) as done:
        region.build_parser().parse_args(["--help"])
    assert done.value.code == 0


@dataclass
class Plan:
    bytes_before: int
    compress: bool = True
    reason: str = ""


def test_the_fit_with_a_separate_region_leaves_the_largest_tensors_uncompressed_until_the_arena_fits(monkeypatch):
    plans = [Plan(147_456), Plan(82_944), Plan(36_864), Plan(9_216)]

    def apply(original, chosen):  # the "model": the decoded sizes still compressed
        return bytes(len([p for p in chosen if p.compress]))

    def measure(model, size):
        chosen = [p.bytes_before for p in plans if p.compress]
        outside = sum(b for b in chosen if b > size)  # what falls back to the arena (one at a time, here the largest)
        return {"region_bytes": size, "arena_host_bytes": 0, "arena_bytes": 100_000 + max([0, outside]), "decoded_in_region": 0}

    monkeypatch.setattr(region, "region_bytes", lambda model: max([p.bytes_before for p in plans if p.compress]))
    monkeypatch.setattr(region, "measure", measure)
    _, row = region.compress_to_fit(b"", plans, boards.get("netduinoplus2"), 64 * 1024, apply)
    assert [p.compress for p in plans] == [False, False, True, True] and row["tensors_compressed"] == 2
    assert row["region_bytes"] == 36_864 and "decompression region beside it" in plans[0].reason
