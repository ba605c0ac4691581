"""Command-line arguments shared by the commands that build or train a SqueezeNet (model.train, model.summary,
experiments.explore): one definition of the paper's metaparameters as flags, their defaults read from the builder's
signature (`squeezenet(...)`); one definition of the training recipe's flags; and the way back, from a recorded
architecture and recipe to model.train's flags (experiments.explore, bench.pipeline.main_job)."""

from __future__ import annotations

import argparse
import inspect

from model.squeezenet import BYPASSES, VERSIONS, squeezenet

# The metaparameters a flag sets, in the builder's own names, with what each one means.
ARCHITECTURE_HELP = {
    "version": "SqueezeNet version (pool placement)",
    "base_e": "expand filters of the first Fire module",
    "incr_e": "expand filters added every --freq Fire modules",
    "pct_3x3": "share of the expand filters that are 3x3",
    "freq": "Fire modules between increments of --incr-e",
    "sr": "squeeze ratio: squeeze filters / expand filters",
    "bypass": "bypass connections around Fire modules",
    "conv1_filters": "override conv1's filters (bounds peak RAM; default: the version's)",
    "batch_norm": "batch normalisation after every convolution but conv10",
    "dropout": "dropout rate after fire9",
}
ARCHITECTURE_NAMES = tuple(ARCHITECTURE_HELP)
_CHOICES = {"version": VERSIONS, "bypass": BYPASSES}
_TYPES = {"conv1_filters": int}  # the builder's default is None ("the version's"), which names no type


def builder_defaults() -> dict:
    """`squeezenet(...)`'s own defaults for the metaparameters, so a flag's default cannot drift from the builder's."""
    parameters = inspect.signature(squeezenet).parameters
    return {name: parameters[name].default for name in ARCHITECTURE_NAMES}


def add_architecture_arguments(parser: argparse.ArgumentParser, **overrides) -> None:
    """One flag per metaparameter (`--base-e`, `--pct-3x3`, `--batch-norm/--no-batch-norm`, ...); `overrides`
    changes a default where a command's purpose differs from the builder's (model.train: v1.1 with batch norm)."""
    unknown = set(overrides) - set(ARCHITECTURE_NAMES)
    if unknown:
        raise ValueError(f"not a metaparameter: {', '.join(sorted(unknown))}")
    defaults = builder_defaults() | overrides
    arch = parser.add_argument_group("architecture (paper section 5 metaparameters)")
    for name in ARCHITECTURE_NAMES:
        flag, default = "--" + name.replace("_", "-"), defaults[name]
        if isinstance(default, bool):
            arch.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=ARCHITECTURE_HELP[name])
        else:
            kind = _TYPES.get(name, type(default))
            arch.add_argument(flag, type=kind, default=default, choices=_CHOICES.get(name), help=ARCHITECTURE_HELP[name])


# model.train's recipe flags: (type, default, help). Their names are the metadata keys (`recipe` in <name>.json).
RECIPE_FLAGS = {
    "epochs": (int, 30, "training epochs"),
    "batch_size": (int, 128, "training batch size"),
    "lr": (float, 0.1, "peak learning rate (SGD, Nesterov momentum 0.9)"),
    "warmup_epochs": (float, None, "linear warm-up, then cosine decay to zero (None: min(2, epochs / 5))"),
    "weight_decay": (float, 5e-3, "decoupled (Keras) weight decay, times the learning rate"),
    "label_smoothing": (float, 0.1, "label smoothing of the cross-entropy"),
    "crop_pad": (int, 4, "random crop after reflect padding by this many pixels"),
    "cutout": (int, 0, "side of a random square erased per image (0: off)"),
    "limit_train": (int, None, "train on N training images only (model.data.spread_indices with --seed: every class in proportion)"),
    "seed": (int, 0, "training seed (weights, augmentation, the --limit-train draw)"),
}
RECIPE_NAMES = tuple(RECIPE_FLAGS)


def add_recipe_arguments(parser: argparse.ArgumentParser, title: str = "recipe", **overrides):
    """The recipe's flags in a group of their own; `overrides` changes defaults (experiments.explore: fewer epochs).
    Returns the group, for a command's own recipe flags (model.train's --init-from)."""
    unknown = set(overrides) - set(RECIPE_NAMES)
    if unknown:
        raise ValueError(f"not a recipe flag: {', '.join(sorted(unknown))}")
    recipe = parser.add_argument_group(title)
    for name, (kind, default, text) in RECIPE_FLAGS.items():
        recipe.add_argument("--" + name.replace("_", "-"), type=kind, default=overrides.get(name, default), help=text)
    return recipe


def warmup_epochs(epochs: int, warmup: float | None) -> float:
    """The warm-up a recipe runs: as given, or min(2, epochs / 5) (a fifth of a short run, two epochs of a long one)."""
    return min(2.0, epochs / 5) if warmup is None else warmup


def recipe_of(args: argparse.Namespace) -> dict:
    """The recipe flags' values, warm-up resolved: what model.train records and experiments.explore matches."""
    values = {name: getattr(args, name) for name in RECIPE_NAMES}
    return values | {"warmup_epochs": warmup_epochs(values["epochs"], values["warmup_epochs"])}


def architecture_of(args: argparse.Namespace) -> dict:
    """The `squeezenet(...)` keyword arguments the flags of `add_architecture_arguments` stand for."""
    return {name: getattr(args, name) for name in ARCHITECTURE_NAMES}


def as_flags(values: dict) -> list[str]:
    """Command-line flags for {argument name: value}: `pct_3x3=0.5` -> `--pct-3x3 0.5`, booleans as
    `--x`/`--no-x`, None left out (the command's default)."""
    flags = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            flags.append(flag if value else f"--no-{flag[2:]}")
        elif value is not None:
            flags += [flag, str(value)]
    return flags


def architecture_flags(arch: dict) -> list[str]:
    """model.train's flags for `squeezenet(...)` keyword arguments (the inverse of `architecture_of`); other keys
    (a metadata record's input_size, classes) are ignored."""
    return as_flags({name: arch[name] for name in ARCHITECTURE_NAMES if name in arch})


def recipe_flags(recipe: dict) -> list[str]:
    """model.train's flags for a recipe record; keys that are not flags (optimizer, schedule, init_from) are ignored."""
    return as_flags({name: recipe[name] for name in RECIPE_NAMES if name in recipe})
