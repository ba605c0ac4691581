"""TFLM source trees from pinned upstream archives, and the one lookup of those trees.

Every firmware build, compile check and test finds its TFLM here (`find_tree` / `require_tree`); the set-up makes the
trees (`python -m convert.tflm_tree`, run by scripts/setup.sh). Three trees live in the cache folder
(`model.cache.cache_dir()`, `SQUEEZENET_MCU_CACHE`):

    tflm/              tflite-micro made into a source tree by its own create_tflm_tree.py, reference kernels and
                       CMSIS-NN side by side (the Cortex-M boards, emulated and real); override: TFLM_ROOT
    esp-tflite-micro/  Espressif's TFLM component, already a source tree with its ESP-NN kernels; override: ESP_TFLM_ROOT
    esp-nn/            ESP-NN, the kernels' library; override: ESP_NN_ROOT

The pinned commits, where their archives come from and how each is checked are in `convert.tflm_sources`. Each tree
is built in a staging folder beside its final place and renamed into place only when complete, with a stamp of what
made it; a second run finds the stamp and does nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from convert.tflm_sources import (
    CMSIS,
    CMSIS_NN,
    CORTEX_DFP,
    ESP_NN,
    ESP_TFLITE_MICRO,
    FLATBUFFERS,
    GEMMLOWP,
    KISSFFT,
    RUY,
    SOURCES_ENV,
    TFLITE_MICRO,
    Source,
    TreeError,
    locate_archive,
    sources_dirs,
    unpack,
)
from model import exit_codes
from model.cache import cache_dir

STAMP = ".sqz-tree.json"
TREE_FORMAT = 1  # bump when the recipe below changes: every tree is then made again


@dataclass(frozen=True)
class Tree:
    name: str  # the folder in the cache
    override: str  # environment variable that points at another tree
    sources: tuple[Source, ...]
    markers: tuple[str, ...]  # files a usable tree has


TREES = {
    "tflm": Tree(
        "tflm",
        "TFLM_ROOT",
        (TFLITE_MICRO, FLATBUFFERS, GEMMLOWP, RUY, KISSFFT, CMSIS, CORTEX_DFP, CMSIS_NN),
        (
            "tensorflow/lite/micro/micro_interpreter.h",
            "tensorflow/lite/micro/kernels/conv.cc",
            "tensorflow/lite/micro/kernels/cmsis_nn/conv.cc",
            "tensorflow/lite/micro/kernels/decode.cc",
            "third_party/cmsis_nn/Include/arm_nnfunctions.h",
            "third_party/cmsis/CMSIS/Core/Include/cmsis_gcc.h",
            "third_party/flatbuffers/include/flatbuffers/flatbuffers.h",
        ),
    ),
    "esp-tflite-micro": Tree(
        "esp-tflite-micro",
        "ESP_TFLM_ROOT",
        (ESP_TFLITE_MICRO,),
        ("tensorflow/lite/micro/micro_interpreter.h", "tensorflow/lite/micro/kernels/esp_nn/conv.cc"),
    ),
    "esp-nn": Tree("esp-nn", "ESP_NN_ROOT", (ESP_NN,), ("include/esp_nn.h",)),
}
TFLM_MARKER = "tensorflow/lite/micro"  # what every TFLM tree holds, the check on a user's TFLM_ROOT

HOWTO = (
    "make the trees with `.venv/bin/python -m convert.tflm_tree` (scripts/setup.sh runs it): it takes the pinned "
    f"archives from ${SOURCES_ENV} (default ../shared/tflm-sources beside the checkout) or downloads them from GitHub"
)


# ---- the lookup ------------------------------------------------------------------------------------------------


def default_path(name: str = "tflm") -> Path:
    return cache_dir() / TREES[name].name


def find_tree(name: str = "tflm") -> Path | None:
    """The tree to build with: the override variable's folder when set (it must be a tree: a typo never becomes a
    silent fallback), else the cache's tree when complete, else None."""
    tree = TREES[name]
    configured = os.environ.get(tree.override)
    if configured:
        path = Path(configured).expanduser()
        if not (path / tree.markers[0]).exists():
            raise TreeError(f"{tree.override}={configured} is not a {name} tree (no {tree.markers[0]} in it); unset it or {HOWTO}")
        return path.resolve()
    path = default_path(name)
    return path if (path / STAMP).is_file() else None


def require_tree(name: str = "tflm") -> Path:
    path = find_tree(name)
    if path is None:
        raise TreeError(f"no {name} tree at {default_path(name)}: {HOWTO}")
    return path


# ---- making a tree ---------------------------------------------------------------------------------------------


def _run(command: list[str], cwd: Path, env: dict | None = None) -> None:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise TreeError(f"`{' '.join(command)}` failed in {cwd}:\n{(result.stderr or result.stdout)[-2000:]}")


def _layout_downloads(tflm: Path, unpacked: dict[str, Path]) -> None:
    """Fill TFLM's tools/make/downloads/ as its download scripts would (flatbuffers_download.sh, kissfft_download.sh,
    ext_libs/cmsis_download.sh, cmsis_nn_download.sh, third_party_downloads.inc), from the unpacked archives."""
    make_dir = tflm / "tensorflow/lite/micro/tools/make"
    downloads = make_dir / "downloads"
    downloads.mkdir()
    for source, name in ((FLATBUFFERS, "flatbuffers"), (KISSFFT, "kissfft"), (GEMMLOWP, "gemmlowp"), (RUY, "ruy"), (CMSIS_NN, "cmsis_nn")):
        unpacked[source.repo].rename(downloads / name)
    unpacked[CMSIS.repo].rename(downloads / "cmsis")
    unpacked[CORTEX_DFP.repo].rename(downloads / "cmsis" / "Cortex_DFP")
    for build_file in [*(downloads / "flatbuffers").rglob("BUILD"), *(downloads / "flatbuffers").rglob("BUILD.bazel")]:
        build_file.unlink()
    patch = ["git", "apply", "--ignore-space-change", "--ignore-whitespace"]
    _run([*patch, str(make_dir / "flatbuffers.patch")], downloads / "flatbuffers")
    _run([*patch, str(tflm / "third_party/kissfft/kissfft.patch")], downloads / "kissfft")
    (downloads / "pigweed").mkdir()  # the Makefile only checks that it exists; no pigweed code is used
    (downloads / "gcc_embedded").symlink_to("/usr")  # cortex_m_generic's toolchain root: Debian's arm-none-eabi-gcc


def _generate_tflm(tflm: Path, out: Path) -> None:
    """TFLM's create_tflm_tree.py twice (reference kernels; CMSIS-NN for Cortex-M4F), merged: one tree serves every
    kernel set, and each environment picks with custom_tflm_kernels."""
    script = "tensorflow/lite/micro/tools/project_generation/create_tflm_tree.py"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmsis = out.parent / "tree-cmsis"
    _run([sys.executable, script, str(out)], tflm, env)
    options = "TARGET=cortex_m_generic TARGET_ARCH=cortex-m4+fp OPTIMIZED_KERNEL_DIR=cmsis_nn"
    _run([sys.executable, script, f"--makefile_options={options}", str(cmsis)], tflm, env)
    for path in sorted(cmsis.rglob("*")):
        target = out / path.relative_to(cmsis)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        elif not target.exists():
            shutil.copy2(path, target)
    shutil.rmtree(cmsis)


def stamp_for(tree: Tree) -> dict:
    return {
        "format": TREE_FORMAT,
        "tree": tree.name,
        "sources": {s.repo: {"commit": s.commit, "content_sha256": s.content_sha256} for s in tree.sources},
    }


def is_current(name: str) -> bool:
    stamp_file = default_path(name) / STAMP
    try:
        stamp = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        return False
    return {k: stamp.get(k) for k in ("format", "tree", "sources")} == stamp_for(TREES[name])


def make_tree(name: str, *, download: bool = True, say=print) -> Path:
    """Make the cache's tree `name` from its pinned archives, unless the stamp says it is already made."""
    tree = TREES[name]
    final = default_path(name)
    if is_current(name):
        say(f"{name} tree up to date ({final})")
        return final
    archives = {}
    missing = []
    for source in tree.sources:
        try:
            archives[source] = locate_archive(source, download=download, say=say)
        except TreeError as error:
            missing.append(str(error))
    if missing:
        listed = "\n  ".join(missing)
        raise TreeError(
            f"cannot make the {name} tree:\n  {listed}\n"
            f"Provide the archives in {sources_dirs()[0]} (or set {SOURCES_ENV}), or run on a connected machine."
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f".{name}-staging-", dir=final.parent) as staging:
        staging = Path(staging)
        unpacked = {}
        for source, archive in archives.items():
            say(f"unpacking and checking {source.short} ({source.what}) from {archive}")
            unpacked[source.repo] = unpack(source, archive, staging)
        if name == "tflm":
            say("laying out TFLM's downloads and running its create_tflm_tree.py (reference + CMSIS-NN, about a minute)")
            tflm = unpacked[TFLITE_MICRO.repo]
            _layout_downloads(tflm, unpacked)
            built = staging / "tree"
            _generate_tflm(tflm, built)
        else:
            built = unpacked[tree.sources[0].repo]
        absent = [m for m in tree.markers if not (built / m).exists()]
        if absent:
            raise TreeError(f"the {name} tree made from the pinned sources lacks {', '.join(absent)}")
        stamp = dict(stamp_for(tree), made=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), by="convert.tflm_tree")
        (built / STAMP).write_text(json.dumps(stamp, indent=2) + "\n")
        if final.exists() or final.is_symlink():
            old = staging / "old"
            final.rename(old)  # removed with the staging folder
        built.rename(final)
    say(f"{name} tree ready at {final} in {time.monotonic() - started:.0f} s")
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m convert.tflm_tree",
        description="Make the TFLM source trees the firmware builds from, from pinned upstream archives "
        f"(${SOURCES_ENV}, default ../shared/tflm-sources; else GitHub). Idempotent: a made tree is left alone.",
    )
    parser.add_argument("trees", nargs="*", metavar="TREE", help=f"which trees, of {', '.join(TREES)} (default: all)")
    parser.add_argument("--no-download", action="store_true", help="never download; fail if an archive is not at hand")
    parser.add_argument("--where", action="store_true", help="print the tree each build would use, and make nothing")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.trees) - set(TREES))
    if unknown:
        parser.error(f"unknown tree {unknown[0]!r}: choose from {', '.join(TREES)}")
    say = lambda message: print(f"[tflm-tree] {message}", flush=True)  # noqa: E731
    try:
        for name in args.trees or list(TREES):
            if args.where:
                print(f"{name}: {find_tree(name) or 'none (' + HOWTO + ')'}")
            else:
                make_tree(name, download=not args.no_download, say=say)
    except TreeError as error:
        print(f"[tflm-tree] error: {error}", file=sys.stderr)
        return exit_codes.FAILED
    return 0


if __name__ == "__main__":
    sys.exit(main())
