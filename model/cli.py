"""Command-line arguments shared by the commands that build a SqueezeNet (model.train, model.summary):
one definition of the paper's metaparameters as flags, and of how they map onto `squeezenet(...)`."""

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


def architecture_of(args: argparse.Namespace) -> dict:
    """The `squeezenet(...)` keyword arguments the flags of `add_architecture_arguments` stand for."""
    names = ("version", "base_e", "incr_e", "pct_3x3", "freq", "sr", "bypass", "conv1_filters", "batch_norm", "dropout")
    return {name: getattr(args, name) for name in names}
