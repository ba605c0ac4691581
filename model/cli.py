"""Command-line arguments shared by the commands that build a SqueezeNet (model.train, model.summary):
one definition of the paper's metaparameters as flags, and of how they map onto `squeezenet(...)`; and
the way back, from a recorded architecture and recipe to model.train's flags (experiments.explore, bench.pipeline.main_job)."""

from __future__ import annotations

import argparse

from model.squeezenet import BYPASSES, VERSIONS


def add_architecture_arguments(parser: argparse.ArgumentParser, *, version: str, batch_norm: bool) -> None:
    arch = parser.add_argument_group("architecture (paper section 5 metaparameters)")
    arch.add_argument("--version", default=version, choices=VERSIONS)
    arch.add_argument("--base-e", type=int, default=128)
    arch.add_argument("--incr-e", type=int, default=128)
    arch.add_argument("--pct-3x3", type=float, default=0.5)
    arch.add_argument("--freq", type=int, default=2)
    arch.add_argument("--sr", type=float, default=0.125, help="squeeze ratio")
    arch.add_argument("--bypass", default="none", choices=BYPASSES)
    arch.add_argument("--conv1-filters", type=int, default=None, help="override conv1's filters (bounds peak RAM)")
    arch.add_argument("--batch-norm", action=argparse.BooleanOptionalAction, default=batch_norm)
    arch.add_argument("--dropout", type=float, default=0.5)


ARCHITECTURE_NAMES = ("version", "base_e", "incr_e", "pct_3x3", "freq", "sr", "bypass", "conv1_filters", "batch_norm", "dropout")
# model.train's recipe flags, as their metadata keys (`recipe` in <name>.json).
RECIPE_NAMES = (
    *("epochs", "batch_size", "lr", "warmup_epochs", "weight_decay"),
    *("label_smoothing", "crop_pad", "cutout", "limit_train", "seed"),
)


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
