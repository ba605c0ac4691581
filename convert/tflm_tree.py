"""TFLM source trees from pinned upstream archives, and the one lookup of those trees.

Every firmware build, compile check and test finds its TFLM here (`find_tree` / `require_tree`); the set-up makes the
trees (`python -m convert.tflm_tree`, run by scripts/setup.sh). Three trees live in the cache folder
(`model.cache.cache_dir()`, `SQUEEZENET_MCU_CACHE`):

    tflm/              tflite-micro made into a source tree by its own create_tflm_tree.py, reference kernels and
                       CMSIS-NN side by side (the Cortex-M boards, emulated and real); override: TFLM_ROOT
    esp-tflite-micro/  Espressif's TFLM component, already a source tree with its ESP-NN kernels; override: ESP_TFLM_ROOT
    esp-nn/            ESP-NN, the kernels' library; override: ESP_NN_ROOT

Archives come from `SQZ_TFLM_SOURCES` (default ../shared/tflm-sources beside the checkout), named
`<owner>-<repo>-<commit>.tar.gz`, else from the cache's downloads/ folder, else from GitHub's /archive/<commit>.tar.gz
on a connected machine. GitHub may serve other bytes for the same commit, so an archive is checked by the contents it
unpacks to (a digest over paths, modes and bytes, pinned below), not by its own hash. Each tree is built in a staging
folder beside its final place and renamed into place only when complete, with a stamp of what made it; a second run
finds the stamp and does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from model import exit_codes
from model.cache import cache_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES_ENV = "SQZ_TFLM_SOURCES"
STAMP = ".sqz-tree.json"
TREE_FORMAT = 1  # bump when the recipe below changes: every tree is then made again


@dataclass(frozen=True)
class Source:
    owner: str
    repo: str
    commit: str
    content_sha256: str  # of the unpacked folder (content_digest), the same for GitHub's archive and ours
    what: str

    @property
    def archive_name(self) -> str:
        return f"{self.owner}-{self.repo}-{self.commit}.tar.gz"

    @property
    def url(self) -> str:
        return f"https://github.com/{self.owner}/{self.repo}/archive/{self.commit}.tar.gz"

    @property
    def short(self) -> str:
        return f"{self.repo} {self.commit[:8]}"


# Every pinned commit, in one place. TFLM's own download scripts name the same versions of its dependencies.
TFLITE_MICRO = Source(
    "tensorflow",
    "tflite-micro",
    "90b983c2b3f1480642e040bbd2ddb37b998f3424",
    "3a45f9e1093dab9cf04ff395b1245473f5894d1c7ede46bd2e93f0e600079443",
    "TFLM",
)
FLATBUFFERS = Source(
    "google",
    "flatbuffers",
    "187240970746d00bbd26b0f5873ed54d2477f9f3",
    "4f392d03b338af9fe4f302d327e4456e0cf9f7768704cda74b5050725fec81a0",
    "flatbuffers v25.9.23",
)
GEMMLOWP = Source(
    "google",
    "gemmlowp",
    "719139ce755a0f31cbf1c37f7f98adcc7fc9f425",
    "6c0b1878ff38021202451cbdd722a98468e3a48175297df89fcbd411b395bb9f",
    "gemmlowp",
)
RUY = Source(
    "google",
    "ruy",
    "d37128311b445e758136b8602d1bbd2a755e115d",
    "7915ed027a360455312a077570b26d425c516945cf2e9eac14e95451906b41c5",
    "ruy",
)
KISSFFT = Source(
    "mborgerding",
    "kissfft",
    "918336beac80868ad3011cb283063bb224e3e5da",
    "08d425bc94d69c370b21fecfb90b7ad6a394b5d6751e4517b395ecaf0e051cc6",
    "kissfft v130",
)
CMSIS = Source(
    "ARM-software",
    "CMSIS_6",
    "5782d6f8057906d360f4b95ec08a2354afe5c9b9",
    "e47f656cb6e99335b1049b8c78732bad9b0c10a2a9a6e1575249b8029e7908e0",
    "CMSIS 6 core headers",
)
CORTEX_DFP = Source(
    "ARM-software",
    "Cortex_DFP",
    "c2c70a97a20fb355815e2ead3d4a40e35a4a3cdf",
    "a2df0b45966576a637a1b537c0ecf1196da67275e1e7622bd6b9406fe98a64ab",
    "Cortex-M device files",
)
CMSIS_NN = Source(
    "ARM-software",
    "CMSIS-NN",
    "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae",
    "113e77ef88258b6511265f8a5d48d517e14520df8d77403f6757104e79f92cb8",
    "CMSIS-NN kernels",
)
ESP_TFLITE_MICRO = Source(
    "espressif",
    "esp-tflite-micro",
    "1171b51af69da61929b175c99d39b746ecfe4025",
    "6f1446f785cecc0b7b9bf329282673846a4c93acde1dd34b85cdcea82d26653a",
    "esp-tflite-micro v1.3.4",
)
ESP_NN = Source(
    "espressif",
    "esp-nn",
    "596b08401a63da3a2e1b40868c442f582a99ae26",
    "0ee03083c6d74e0720a7d627ab248d46248dab92608a31643b28515c97d98cbc",
    "ESP-NN v1.1.2",
)
SOURCES = (TFLITE_MICRO, FLATBUFFERS, GEMMLOWP, RUY, KISSFFT, CMSIS, CORTEX_DFP, CMSIS_NN, ESP_TFLITE_MICRO, ESP_NN)


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


class TreeError(ValueError):
    """A tree that cannot be found or made; the message says what is missing and how to provide it."""


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


def content_digest(folder: Path) -> str:
    """SHA-256 over the sorted relative paths, the executable bit, and each file's bytes or each link's target."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if not p.is_dir() or p.is_symlink()):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            digest.update(f"L {relative} {os.readlink(path)}\n".encode())
        else:
            executable = "x" if os.access(path, os.X_OK) else "-"
            digest.update(f"F {relative} {executable} {hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def sources_dirs() -> list[Path]:
    configured = os.environ.get(SOURCES_ENV)
    first = Path(configured).expanduser() if configured else REPO_ROOT.parent / "shared" / "tflm-sources"
    return [first, cache_dir() / "downloads"]


def locate_archive(source: Source, *, download: bool, say) -> Path:
    for folder in sources_dirs():
        if (folder / source.archive_name).is_file():
            return folder / source.archive_name
    if not download:
        raise TreeError(f"{source.archive_name} is in none of {', '.join(map(str, sources_dirs()))}")
    target = cache_dir() / "downloads" / source.archive_name
    target.parent.mkdir(parents=True, exist_ok=True)
    say(f"downloading {source.url}")
    partial = target.with_suffix(".part")
    try:
        with urllib.request.urlopen(source.url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise TreeError(f"{source.archive_name}: not in {sources_dirs()[0]} and the download failed ({error})") from None
    partial.rename(target)
    return target


def unpack(source: Source, archive: Path, into: Path) -> Path:
    """Unpack `archive` into `into` and check it is `source`: one folder `<repo>-<commit>/` with the pinned contents."""
    folder_name = f"{source.repo}-{source.commit}"
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            strays = [m.name for m in members if m.name.split("/")[0] != folder_name and m.type != tarfile.XGLTYPE]
            if strays:
                raise TreeError(f"{archive}: not the archive of {source.short}: it holds {strays[0]!r}, not {folder_name}/")
            tar.extractall(into, members=members, filter="tar")
    except (tarfile.TarError, EOFError, OSError, UnicodeDecodeError) as error:
        raise TreeError(f"{archive}: corrupted archive of {source.short} ({error}); delete it and provide it again") from None
    folder = into / folder_name
    if source.content_sha256:
        found = content_digest(folder)
        if found != source.content_sha256:
            raise TreeError(
                f"{archive}: its contents are not {source.short} (content digest {found[:16]}..., pinned "
                f"{source.content_sha256[:16]}...): a corrupted or wrong archive; delete it and provide it again"
            )
    return folder


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
