"""What every command shares (issue 12, item 6): one exit-code table, no SystemExit from library code, no work
at import time (no environment set-up, no TensorFlow for a uint8 quantize), faulty:// as a pyserial
protocol-handler package."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import serial

from model import exit_codes

ROOT = Path(__file__).resolve().parents[1]

# Modules with a main() that are not commands a user types: each is started by its parent with its own argv.
NOT_COMMANDS = {
    "bench.virtual.worker": "run by bench.virtual.engines as a script, model and arena on argv",
    "bench.fuzz.targets": "run by bench.fuzz.run under atheris, one target name on argv",
    "bench.farm.worker": "run by bench.farm.place with .venv/labgrid's Python (labgrid is not in the main venv)",
}


def _command_modules() -> list[str]:
    """Every module of the four packages with a top-level main(): found, not listed, so a new command cannot miss
    the conventions."""
    found = []
    for folder in ("model", "convert", "bench", "experiments"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(), str(path))
            if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
                found.append(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return [name for name in found if name not in NOT_COMMANDS]


# The command modules, whose import must not touch the environment nor load TensorFlow, and which all answer --help.
COMMAND_MODULES = _command_modules()


def test_every_command_answers_help():
    probe = (
        "import contextlib, importlib, io, json\n"
        "answers = {}\n"
        f"for name in {COMMAND_MODULES!r}:\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            importlib.import_module(name).main(['--help'])\n"
        "            code = 'returned'\n"
        "        except SystemExit as stop:\n"
        "            code = stop.code\n"
        "    answers[name] = [code, 'usage:' in out.getvalue()]\n"
        "print(json.dumps(answers))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answers = json.loads(done.stdout.splitlines()[-1])
    assert len(answers) >= 25 and {name: a for name, a in answers.items() if a != [0, True]} == {}


def test_the_table_has_one_meaning_per_code_and_the_readme_lists_them_all():
    names = {name: value for name, value in vars(exit_codes).items() if name.isupper() and isinstance(value, int)}
    assert len(set(names.values())) == len(names), names  # no two names for one code
    assert set(exit_codes.MEANINGS) == set(names.values())
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\d+) \| `([A-Z_]+)` \|", readme, re.M))
    assert rows == {str(value): name for name, value in names.items()}


def test_importing_a_command_changes_nothing_and_loads_no_tensorflow():
    probe = (
        "import importlib, json, os, sys, serial\n"
        "before = list(serial.protocol_handler_packages)\n"
        f"for name in {COMMAND_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "import numpy as np\n"
        "from model.preprocessing import quantize_int8\n"
        "quantize_int8(np.zeros((2, 2, 3), np.uint8), 1.0, -128)\n"
        "print(json.dumps({'env': os.environ.get('TF_CPP_MIN_LOG_LEVEL'), 'tf': 'tensorflow' in sys.modules,\n"
        "    'keras': 'keras' in sys.modules, 'handlers': serial.protocol_handler_packages == before,\n"
        "    'aliases': [m for m in sys.modules if m.startswith('bench.link.faults.')]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"env": None, "tf": False, "keras": False, "handlers": True, "aliases": []}


def test_library_code_raises_no_system_exit():
    """SystemExit belongs to a command's outer handler (its main(), its `if __name__ == "__main__":`), never to a
    function another module calls; argparse's parser.error stays the usage path."""
    offenders = []
    for folder in ("bench", "model", "convert"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                raised = node.exc if isinstance(node, ast.Raise) else None
                target = raised.func if isinstance(raised, ast.Call) else raised
                if isinstance(target, ast.Name) and target.id == "SystemExit":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if isinstance(node, ast.ClassDef) and any(isinstance(b, ast.Name) and b.id == "SystemExit" for b in node.bases):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} (class {node.name})")
    assert offenders == []


def test_faulty_is_a_protocol_handler_package_registered_by_open_port():
    from bench.link import faults
    from bench.link.errors import PortUnavailable
    from bench.link.ports import open_port
    from bench.link.serial_handlers import protocol_faulty

    assert protocol_faulty.Serial is faults.Serial
    with pytest.raises(PortUnavailable):  # nothing listens on port 1; the scheme itself was found
        open_port("faulty://127.0.0.1:1?corrupt=0.5&seed=3", open_timeout_s=1.0)
    assert "bench.link.serial_handlers" in serial.protocol_handler_packages
    port = serial.serial_for_url("faulty://127.0.0.1:1?corrupt=0.5&seed=3", do_not_open=True)
    assert isinstance(port, faults.Serial)


def test_a_pipeline_stage_that_cannot_go_on_maps_to_its_exit_code(tmp_path, capsys):
    from bench.pipeline import main_job as pipeline

    model = tmp_path / "lonely.keras"  # no metadata beside it: nothing says how to train it
    argv = ["--model", str(model), "--train", "--data", "synthetic", "--out", str(tmp_path / "r"), "--build", str(tmp_path / "b")]
    assert pipeline.main(argv) == exit_codes.BAD_INPUT
    assert "nothing says how to train this model" in capsys.readouterr().err
    assert issubclass(pipeline.FirmwareBuildFailed, pipeline.StageError) and not issubclass(pipeline.StageError, SystemExit)
