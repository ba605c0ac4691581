"""The SqueezeNet family (Iandola et al., 2016, arXiv:1602.07360) as one Keras 3 builder.

Contract of every model built here:
- input: float32 RGB pixels in [0, 255], shape (input_size, input_size, 3), HWC. The first layer,
  `preprocess`, applies the transform in `model.preprocessing`, so conversion, host references and the
  device all feed raw pixels and nothing else has to repeat the normalisation.
- output: `predictions`, softmax probabilities over `classes`.
- layer names are an API (`conv1`, `fire2_squeeze`, `fire2_expand1x1`, `fire2_expand3x3`,
  `fire2_concat`, `conv10`, `predictions`): TFLite tensor names trace back to them in parity reports.

The architecture is a table (`_fire_plan`) walked by one block function (`_fire_module`). The paper's
metaparameters (section 5) are keyword arguments: Fire module i (0-based from fire2) has
e_i = base_e + incr_e * floor(i / freq) expand filters, pct_3x3 of them 3x3, and s_i = sr * e_i
squeeze filters. Backend-agnostic: only Keras layers, so the same code trains under JAX and converts
under TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from model import preprocessing

if TYPE_CHECKING:
    import keras

# Keras is imported by the functions that build layers, not here: the plan (fire_plan, VERSIONS, BYPASSES) is
# used by command-line parsers that must not load TensorFlow before their main() has quieted it.

VERSIONS = ("1.0", "1.1")
BYPASSES = ("none", "simple", "complex")
STEMS = ("imagenet", "cifar")
NUM_FIRE_MODULES = 8  # fire2 .. fire9

# Max-pool placement: a pool follows conv1 and the Fire modules named here (paper Table 1; the
# DeepScale v1.1 README moves the pools earlier, which is where its 2.4x saving comes from).
_POOL_AFTER = {"1.0": ("fire4", "fire8"), "1.1": ("fire3", "fire5")}
# conv1 of the ImageNet stem: (filters, kernel, stride).
_IMAGENET_CONV1 = {"1.0": (96, 7, 2), "1.1": (64, 3, 2)}
# Below this input size the ImageNet stem (stride-2 conv, valid pools) would shrink the feature map to
# nothing; such inputs get the CIFAR stem (stride-1 3x3 conv, "same" pools).
CIFAR_STEM_MAX_INPUT = 64


@dataclass(frozen=True)
class FireSpec:
    """One Fire module's filter counts: s1x1 squeeze, e1x1 and e3x3 expand."""

    name: str
    s1x1: int
    e1x1: int
    e3x3: int

    @property
    def out_channels(self) -> int:
        return self.e1x1 + self.e3x3


def _fire_plan(base_e: int, incr_e: int, pct_3x3: float, freq: int, sr: float) -> list[FireSpec]:
    """The paper's metaparameter formula, unrolled into one FireSpec per module."""
    plan = []
    for i in range(NUM_FIRE_MODULES):
        e_i = base_e + incr_e * (i // freq)
        e3x3 = int(round(e_i * pct_3x3))
        e1x1 = e_i - e3x3
        s1x1 = max(1, int(round(e_i * sr)))
        plan.append(FireSpec(f"fire{i + 2}", s1x1, e1x1, e3x3))
    return plan


def _check_arguments(version, bypass, stem, input_size, classes, base_e, incr_e, pct_3x3, freq, sr):
    if version not in VERSIONS:
        raise ValueError(f"version={version!r}: expected one of {VERSIONS}")
    if bypass not in BYPASSES:
        raise ValueError(f"bypass={bypass!r}: expected one of {BYPASSES}")
    if stem not in STEMS:
        raise ValueError(f"stem={stem!r}: expected one of {STEMS} or None (chosen by input size)")
    if not isinstance(classes, int) or classes < 2:
        raise ValueError(f"classes={classes!r}: expected an integer >= 2")
    minimum = 32 if stem == "cifar" else 67
    if not isinstance(input_size, int) or input_size < minimum:
        raise ValueError(
            f"input_size={input_size!r}: the {stem} stem needs at least {minimum} pixels "
            f"(inputs of at most {CIFAR_STEM_MAX_INPUT} get the cifar stem by default)"
        )
    if base_e < 1 or incr_e < 0 or freq < 1:
        raise ValueError(f"base_e={base_e}, incr_e={incr_e}, freq={freq}: need base_e >= 1, incr_e >= 0, freq >= 1")
    if not 0.0 <= pct_3x3 <= 1.0:
        raise ValueError(f"pct_3x3={pct_3x3}: expected a fraction in [0, 1]")
    if not 0.0 < sr <= 1.0:
        raise ValueError(f"sr={sr}: expected a squeeze ratio in (0, 1]")


def _conv(x, filters, kernel, name, *, strides=1, padding="same", batch_norm=False, relu=True):
    """Conv2D (+ BatchNorm) (+ ReLU). With batch norm the conv has no bias: BN's beta replaces it and
    the converter folds both into one int8 convolution."""
    from keras import layers

    x = layers.Conv2D(
        filters,
        kernel,
        strides=strides,
        padding=padding,
        use_bias=not batch_norm,
        kernel_initializer="he_normal" if relu else "glorot_uniform",
        name=name,
    )(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if relu:
        x = layers.ReLU(name=f"{name}_relu")(x)
    return x


def _fire_module(x, spec: FireSpec, bypass: str, batch_norm: bool):
    """squeeze 1x1 -> (expand 1x1 || expand 3x3) -> concat, with an optional bypass around it."""
    from keras import layers

    if spec.s1x1 >= spec.out_channels:
        raise ValueError(
            f"{spec.name}: squeeze filters s1x1={spec.s1x1} must be fewer than expand filters "
            f"e1x1 + e3x3 = {spec.e1x1} + {spec.e3x3}; lower sr or raise base_e"
        )
    if spec.e1x1 == 0 and spec.e3x3 == 0:
        raise ValueError(f"{spec.name}: no expand filters")
    block_input = x
    in_channels = x.shape[-1]
    s = _conv(x, spec.s1x1, 1, f"{spec.name}_squeeze", batch_norm=batch_norm)
    branches = []
    if spec.e1x1:
        branches.append(_conv(s, spec.e1x1, 1, f"{spec.name}_expand1x1", batch_norm=batch_norm))
    if spec.e3x3:
        branches.append(_conv(s, spec.e3x3, 3, f"{spec.name}_expand3x3", batch_norm=batch_norm))
    x = layers.Concatenate(name=f"{spec.name}_concat")(branches) if len(branches) > 1 else branches[0]

    if bypass == "none":
        return x
    if in_channels == spec.out_channels:  # the paper's simple bypass: only where channels match
        return layers.Add(name=f"{spec.name}_bypass_add")([block_input, x])
    if bypass == "complex":  # a 1x1 conv makes the channels match (paper, section 6)
        shortcut = _conv(block_input, spec.out_channels, 1, f"{spec.name}_bypass_conv", batch_norm=batch_norm, relu=False)
        return layers.Add(name=f"{spec.name}_bypass_add")([shortcut, x])
    return x


def fire_plan(version: str = "1.0", **metaparameters) -> list[FireSpec]:
    """The Fire modules a `squeezenet(...)` call with these arguments would build (no Keras needed)."""
    params = dict(base_e=128, incr_e=128, pct_3x3=0.5, freq=2, sr=0.125)
    params.update(metaparameters)
    return _fire_plan(**params)


def squeezenet(
    version: str = "1.0",
    *,
    input_size: int = 224,
    classes: int = 1000,
    base_e: int = 128,
    incr_e: int = 128,
    pct_3x3: float = 0.5,
    freq: int = 2,
    sr: float = 0.125,
    bypass: str = "none",
    stem: str | None = None,
    conv1_filters: int | None = None,
    batch_norm: bool = False,
    dropout: float = 0.5,
    name: str | None = None,
) -> keras.Model:
    """Build a SqueezeNet.

    Args:
        version: "1.0" (paper Table 1) or "1.1" (3x3/2 conv1 with 64 filters, earlier pools).
        input_size: side of the square RGB input. The paper's v1.0 uses 227 (224 gives the same
            parameters); the cifar stem accepts 32 and up.
        classes: number of output classes.
        base_e, incr_e, pct_3x3, freq, sr: the paper's metaparameters (section 5); the defaults are
            SqueezeNet v1.0's.
        bypass: "none", "simple" (identity bypass around fire3, 5, 7, 9, i.e. wherever input and output
            channels match) or "complex" (simple, plus a 1x1 conv bypass around the other modules).
        stem: "imagenet" (conv1 7x7/2 or 3x3/2, valid 3x3/2 pools) or "cifar" (conv1 3x3/1, same-padded
            3x3/2 pools). None picks "cifar" for inputs of at most 64 pixels.
        conv1_filters: override conv1's filter count (96 for v1.0, 64 for v1.1). A small-RAM target
            uses it to bound the largest activation, which conv1 produces.
        batch_norm: BatchNormalization after every conv but conv10; folded away by the converter.
        dropout: rate of the dropout after fire9 (0.5 in the paper).

    Returns:
        A functional `keras.Model` from raw pixels to softmax probabilities.
    """
    import keras
    from keras import layers

    stem = stem or ("cifar" if input_size <= CIFAR_STEM_MAX_INPUT else "imagenet")
    _check_arguments(version, bypass, stem, input_size, classes, base_e, incr_e, pct_3x3, freq, sr)
    plan = _fire_plan(base_e, incr_e, pct_3x3, freq, sr)
    filters, kernel, stride = _IMAGENET_CONV1[version]
    if stem == "cifar":
        kernel, stride = 3, 1
    filters = conv1_filters or filters
    conv1_padding = "same" if stem == "cifar" else "valid"
    pool_padding = "same" if stem == "cifar" else "valid"

    inputs = keras.Input((input_size, input_size, 3), name="input")
    x = preprocessing.in_model_layer()(inputs)
    x = _conv(x, filters, kernel, "conv1", strides=stride, padding=conv1_padding, batch_norm=batch_norm)
    x = layers.MaxPooling2D(3, 2, padding=pool_padding, name="maxpool1")(x)
    for spec in plan:
        x = _fire_module(x, spec, bypass, batch_norm)
        if spec.name in _POOL_AFTER[version]:
            x = layers.MaxPooling2D(3, 2, padding=pool_padding, name=f"maxpool{spec.name[4:]}")(x)
    x = layers.Dropout(dropout, name="fire9_dropout")(x)
    x = _conv(x, classes, 1, "conv10", padding="valid")
    x = layers.GlobalAveragePooling2D(name="avgpool10")(x)
    outputs = layers.Softmax(name="predictions")(x)
    label = name or f"squeezenet_v{version.replace('.', '_')}"
    return keras.Model(inputs, outputs, name=label)
