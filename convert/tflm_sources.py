"""The pinned upstream sources of the TFLM trees, and their archives: where one is found (or downloaded), and the
check that it unpacks to the pinned contents.

Archives come from `SQZ_TFLM_SOURCES` (default ../shared/tflm-sources beside the checkout), named
`<owner>-<repo>-<commit>.tar.gz`, else from the cache's downloads/ folder, else from GitHub's /archive/<commit>.tar.gz
on a connected machine. GitHub may serve other bytes for the same commit, so an archive is checked by the contents it
unpacks to (a digest over paths, modes and bytes, pinned below), not by its own hash. `convert.tflm_tree` makes the
trees from them and finds the trees; the module that builds and tests import.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from model.cache import cache_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
SOURCES_ENV = "SQZ_TFLM_SOURCES"


class TreeError(ValueError):
    """A tree that cannot be found or made; the message says what is missing and how to provide it."""


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
