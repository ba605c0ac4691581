"""The layout the architecture page draws, checked: each top-level package imports only the layers below it
(model <- convert <- bench <- experiments), and no module grows past about 400 lines."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# package -> the project packages it may import (itself included)
ALLOWED = {
    "model": {"model"},
    "convert": {"convert", "model"},
    "bench": {"bench", "convert", "model"},
    "experiments": {"experiments", "bench", "convert", "model"},
}
MAX_LINES = 420  # "about 400": a module past it does more than one job


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found & set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_a_package_imports_only_the_layers_below_it(package):
    wrong = {str(path.relative_to(ROOT)): sorted(_imported_packages(path) - ALLOWED[package]) for path in (ROOT / package).rglob("*.py")}
    assert {name: packages for name, packages in wrong.items() if packages} == {}


def test_no_module_is_over_about_400_lines():
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines())
        for package in (*ALLOWED, "tests")
        for path in (ROOT / package).rglob("*.py")
        if "fuzz_corpus" not in path.parts
    }
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}
