"""model.cli, the one definition of the architecture and recipe flags: defaults from the builder, the same flags
in every command that trains, and a recorded recipe that replays to itself."""

import argparse
import inspect

import pytest

from experiments import explore
from model import cli, summary, train
from model.squeezenet import squeezenet


def _destinations(parser: argparse.ArgumentParser) -> set[str]:
    return {action.dest for action in parser._actions}


def test_architecture_defaults_are_the_builders_own():
    parser = argparse.ArgumentParser()
    cli.add_architecture_arguments(parser)
    args = parser.parse_args([])
    assert cli.architecture_of(args) == cli.builder_defaults()
    assert cli.builder_defaults()["version"] == "1.0" and cli.builder_defaults()["batch_norm"] is False
    assert set(cli.ARCHITECTURE_NAMES) <= set(inspect.signature(squeezenet).parameters)
    with pytest.raises(ValueError, match="not a metaparameter: width"):
        cli.add_architecture_arguments(argparse.ArgumentParser(), width=2)


def test_every_training_command_takes_the_same_recipe_and_architecture_flags():
    recipe, arch = set(cli.RECIPE_NAMES), set(cli.ARCHITECTURE_NAMES)
    for parser in (train.build_parser(), explore.build_parser()):
        assert recipe | arch <= _destinations(parser)
    assert arch <= _destinations(summary.build_parser())
    assert explore.build_parser().parse_args(["--sweep", "sr", "--data", "synthetic"]).epochs == 10  # its own default


def test_a_recorded_recipe_replays_to_itself():
    args = train.build_parser().parse_args(["--data", "synthetic", "--epochs", "7", "--cutout", "8", "--limit-train", "300"])
    recorded = train.recipe_of(args)
    assert recorded["warmup_epochs"] == pytest.approx(1.4)  # min(2, epochs / 5): resolved, not None
    again = train.build_parser().parse_args(["--data", "synthetic", *cli.recipe_flags(recorded)])
    assert train.recipe_of(again) == recorded
    arch = cli.architecture_of(args)
    assert cli.architecture_of(train.build_parser().parse_args(["--data", "synthetic", *cli.architecture_flags(arch)])) == arch
