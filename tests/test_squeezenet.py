"""Contracts of the SqueezeNet builder: the paper's Table 1, every variant's shape, names and round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from model import summary
from model.squeezenet import BYPASSES, VERSIONS, fire_plan, squeezenet

# Paper Table 1, SqueezeNet v1.0 at 227x227x3: block, output (H, W, C), s1x1/e1x1/e3x3, parameters.
TABLE_1 = [
    ("conv1", (111, 111, 96), None, 14_208),
    ("maxpool1", (55, 55, 96), None, 0),
    ("fire2", (55, 55, 128), (16, 64, 64), 11_920),
    ("fire3", (55, 55, 128), (16, 64, 64), 12_432),
    ("fire4", (55, 55, 256), (32, 128, 128), 45_344),
    ("maxpool4", (27, 27, 256), None, 0),
    ("fire5", (27, 27, 256), (32, 128, 128), 49_440),
    ("fire6", (27, 27, 384), (48, 192, 192), 104_880),
    ("fire7", (27, 27, 384), (48, 192, 192), 111_024),
    ("fire8", (27, 27, 512), (64, 256, 256), 188_992),
    ("maxpool8", (13, 13, 512), None, 0),
    ("fire9", (13, 13, 512), (64, 256, 256), 197_184),
    ("conv10", (13, 13, 1000), None, 513_000),
    ("avgpool10", (1000,), None, 0),
]


def test_v1_0_reproduces_table_1_layer_by_layer():
    result = summary.summarize(squeezenet("1.0", input_size=227, classes=1000))
    rows = {row["block"]: row for row in result["layers"]}
    assert [row["block"] for row in result["layers"]] == [name for name, *_ in TABLE_1]
    for name, output, filters, params in TABLE_1:
        assert tuple(rows[name]["output"]) == output, name
        assert rows[name]["params"] == params, name
        if filters:
            assert (rows[name]["s1x1"], rows[name]["e1x1"], rows[name]["e3x3"]) == filters, name
    assert result["totals"] == {"params": 1_248_424, "macs": 832_667_936}


def test_v1_1_totals():
    result = summary.summarize(squeezenet("1.1", input_size=227, classes=1000))
    assert result["totals"] == {"params": 1_235_496, "macs": 352_540_352}


def test_summary_cli_json(capsys):
    assert summary.main(["--version", "1.1", "--input-size", "227", "--classes", "1000", "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["params"] == 1_235_496 and totals["macs"] == 352_540_352


def test_summary_cli_table(capsys):
    assert summary.main(["--version", "1.0", "--input-size", "227"]) == 0
    out = capsys.readouterr().out
    assert "fire9" in out and "1,248,424" in out


def test_metaparameters_follow_the_papers_formula():
    plan = fire_plan(base_e=128, incr_e=128, pct_3x3=0.5, freq=2, sr=0.125)
    assert [spec.out_channels for spec in plan] == [128, 128, 256, 256, 384, 384, 512, 512]
    assert [spec.s1x1 for spec in plan] == [16, 16, 32, 32, 48, 48, 64, 64]
    plan = fire_plan(pct_3x3=0.25, sr=0.25)
    assert (plan[0].s1x1, plan[0].e1x1, plan[0].e3x3) == (32, 96, 32)


def test_fire_module_refuses_squeeze_not_smaller_than_expand():
    with pytest.raises(ValueError, match=r"s1x1=128 must be fewer than expand filters e1x1 \+ e3x3 = 64 \+ 64"):
        squeezenet("1.0", input_size=32, classes=10, sr=1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"version": "2.0"}, "version='2.0'"),
        ({"bypass": "residual"}, "bypass='residual'"),
        ({"classes": 1}, "classes=1"),
        ({"input_size": 16}, "input_size=16"),
        ({"input_size": 66, "stem": "imagenet"}, "input_size=66"),
        ({"pct_3x3": 1.5}, "pct_3x3=1.5"),
        ({"sr": 0.0}, "sr=0.0"),
    ],
)
def test_bad_arguments_name_what_was_received(kwargs, message):
    kwargs = {"input_size": 32, "classes": 10, **kwargs}
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        squeezenet(**kwargs)


def test_layer_names_are_block_op():
    model = squeezenet("1.0", input_size=32, classes=10)
    names = {layer.name for layer in model.layers}
    for block in range(2, 10):
        for op in ("squeeze", "expand1x1", "expand3x3", "concat"):
            assert f"fire{block}_{op}" in names
    assert {"input", "preprocess", "conv1", "maxpool1", "fire9_dropout", "conv10", "avgpool10", "predictions"} <= names


def test_bypass_placement_follows_the_paper():
    simple = {layer.name for layer in squeezenet("1.0", input_size=32, classes=10, bypass="simple").layers}
    assert {n for n in simple if n.endswith("_bypass_add")} == {f"fire{i}_bypass_add" for i in (3, 5, 7, 9)}
    complex_ = {layer.name for layer in squeezenet("1.0", input_size=32, classes=10, bypass="complex").layers}
    assert {n for n in complex_ if n.endswith("_bypass_conv")} == {f"fire{i}_bypass_conv" for i in (2, 4, 6, 8)}
    assert {n for n in complex_ if n.endswith("_bypass_add")} == {f"fire{i}_bypass_add" for i in range(2, 10)}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("bypass", BYPASSES)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_every_variant_outputs_probabilities(version, bypass, batch_norm):
    model = squeezenet(version, input_size=32, classes=10, bypass=bypass, batch_norm=batch_norm)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    probabilities = np.asarray(model(pixels, training=False))
    assert probabilities.shape == (2, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_cifar_stem_is_chosen_for_small_inputs():
    model = squeezenet("1.1", input_size=32, classes=10, conv1_filters=48)
    assert model.get_layer("conv1").strides == (1, 1)
    assert tuple(model.get_layer("maxpool1").output.shape[1:]) == (16, 16, 48)


def test_save_load_round_trip(tmp_path):
    import keras

    model = squeezenet("1.1", input_size=32, classes=10, batch_norm=True, bypass="complex")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    pixels = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(model(pixels)), np.asarray(loaded(pixels)))
