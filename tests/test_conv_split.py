"""Splitting convolutions along their output channels (convert.conv_split) and fitting a board by splitting
rather than giving filters up (convert.compress_board_fit.split_to_fit), on a small int8 model made here: a
Fire-like block (squeeze 1x1, then expand 1x1 and 3x3 concatenated) whose 3x3 filter, with four distinct
values per output channel, dominates the arena once DECODE expands it. No dataset needed."""

from __future__ import annotations

import numpy as np
import pytest

from convert import conv_split, inspect_tflite, lut, tflm_host

pytestmark = pytest.mark.skipif(not tflm_host.available(), reason="tflite-micro is not installed (Linux x86_64 wheels only)")

EXPAND3 = 96  # output channels of the 3x3 layer


@pytest.fixture(scope="module")
def fire_like() -> bytes:
    """A full-int8 .tflite: input 4x4x8 -> squeeze 1x1 (8) -> concat(expand 1x1 (16), expand 3x3 (96)) -> mean -> dense."""
    import keras

    from convert.quantize import to_int8_tflite

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 8))
    squeeze = keras.layers.Conv2D(8, 1, activation="relu", name="squeeze")(inputs)
    e1 = keras.layers.Conv2D(16, 1, activation="relu", name="expand1x1")(squeeze)
    e3 = keras.layers.Conv2D(EXPAND3, 3, padding="same", activation="relu", name="expand3x3")(squeeze)
    joined = keras.layers.Concatenate(name="concat")([e1, e3])
    outputs = keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(joined))
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    for layer in model.layers:  # four values per output channel: a 2-bit LUT pays for every filter
        if layer.weights:
            kernel, bias = layer.get_weights()
            levels = rng.choice([-1.0, -0.5, 0.5, 1.0], size=kernel.shape) * (0.2 + rng.random(kernel.shape[-1]))
            layer.set_weights([levels.astype(np.float32), bias])
    calibration = rng.integers(0, 256, size=(16, 4, 4, 8), dtype=np.uint8)
    return to_int8_tflite(model, calibration, progress=False)


def filter_named(model: bytes, layer: str) -> str:
    return next(name for name in conv_split.splittable_filters(model) if f"/{layer}" in name)


def inputs(count: int = 6) -> np.ndarray:
    return np.random.default_rng(1).integers(-128, 128, size=(count, 4, 4, 8), dtype=np.int8)


def test_split_layers_give_the_same_bytes_with_the_expand_pieces_joining_the_fire_concat(fire_like):
    expand3, squeeze = filter_named(fire_like, "expand3x3"), filter_named(fire_like, "squeeze")
    split = conv_split.split(fire_like, {expand3: 5, squeeze: 3})
    before, after = inspect_tflite.read(fire_like).op_histogram(), inspect_tflite.read(split).op_histogram()
    assert after["CONV_2D"] == before["CONV_2D"] + 4 + 2
    # expand3x3's pieces join the Fire concatenation; squeeze's output has two consumers, so one is added
    assert after["CONCATENATION"] == before["CONCATENATION"] + 1
    pieces = sorted(n for n in conv_split.splittable_filters(split) if conv_split.source_name(n) == expand3)
    assert len(pieces) == 5 and sum(conv_split.splittable_filters(split)[n] for n in pieces) == EXPAND3
    assert np.array_equal(tflm_host.invoke(fire_like, inputs()), tflm_host.invoke(split, inputs()))
    assert conv_split.split(fire_like, {expand3: 1}) == fire_like  # one piece: unchanged


def test_piece_bounds_cover_every_channel_once():
    assert conv_split.piece_bounds(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert conv_split.piece_bounds(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert conv_split.source_name("a/b/conv/part12") == "a/b/conv" and conv_split.source_name("a/partx") == "a/partx"


def test_impossible_splits_are_refused(fire_like):
    with pytest.raises(conv_split.SplitError, match="not the constant filter of a CONV_2D"):
        conv_split.split(fire_like, {"no/such/filter": 2})
    with pytest.raises(conv_split.SplitError, match="97 pieces asked, but the layer has 96 output channels"):
        conv_split.split(fire_like, {filter_named(fire_like, "expand3x3"): EXPAND3 + 1})


def test_a_board_too_small_for_the_whole_decoded_filter_is_fitted_by_splitting_it(fire_like):
    from dataclasses import replace

    from convert import boards, compress_plan
    from convert.compress_board_fit import compress_to_fit, split_to_fit

    def choose(model):
        return compress_plan.choose(model, "lut", lut.MAX_INDEX_BITS, None)

    _, _, whole_arena = compress_to_fit(fire_like, choose(fire_like)[0], None)
    split4 = conv_split.split(fire_like, {filter_named(fire_like, "expand3x3"): 4})
    _, _, split_arena = compress_to_fit(split4, choose(split4)[0], None)
    assert split_arena < whole_arena  # else the board below cannot tell the two fits apart
    board = replace(boards.get("mps2-an500"), key="tight", ram=split_arena, ram_reserved=0)

    plans = choose(fire_like)[0]
    compress_to_fit(fire_like, plans, board)  # the old way gives the big filter up
    given_up = next(p for p in plans if "expand3x3" in p.name)
    assert not given_up.compress and "kept so the arena fits tight" in given_up.reason

    fit = split_to_fit(fire_like, board, choose)
    expand3 = filter_named(fire_like, "expand3x3")
    assert fit.pieces[expand3] >= 2 and fit.firmware_arena <= board.arena_budget
    assert all(p.compress for p in fit.plans if conv_split.source_name(p.name) == expand3)
    assert np.array_equal(tflm_host.invoke(fire_like, inputs()), tflm_host.invoke(fit.compressed, inputs()))
