"""convert.tflm_tree and convert.tflm_sources: TFLM trees made from pinned archives, checked by content, all or nothing, made once."""

from __future__ import annotations

import io
import shutil
import tarfile
from pathlib import Path

import pytest

from convert import tflm_sources, tflm_tree
from convert.tflm_sources import Source, TreeError
from model import exit_codes

SHARED_SOURCES = Path(__file__).resolve().parents[2] / "shared" / "tflm-sources"


def make_archive(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("SQUEEZENET_MCU_CACHE", str(folder))
    for tree in tflm_tree.TREES.values():
        monkeypatch.delenv(tree.override, raising=False)
    return folder


@pytest.fixture
def esp_nn_sources(tmp_path, monkeypatch) -> Path:
    """A sources folder holding the real pinned ESP-NN archive (the smallest one), as SQZ_TFLM_SOURCES."""
    archive = SHARED_SOURCES / tflm_sources.ESP_NN.archive_name
    if not archive.is_file():
        pytest.skip(f"needs {archive} (../shared/tflm-sources)")
    folder = tmp_path / "sources"
    folder.mkdir()
    shutil.copy(archive, folder)
    monkeypatch.setenv(tflm_sources.SOURCES_ENV, str(folder))
    return folder


def test_content_digest_sees_bytes_names_and_the_executable_bit(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.c").write_text("int x;\n")
    first = tflm_sources.content_digest(tmp_path)
    (tmp_path / "a" / "f.c").chmod(0o755)
    second = tflm_sources.content_digest(tmp_path)
    (tmp_path / "a" / "f.c").write_text("int y;\n")
    third = tflm_sources.content_digest(tmp_path)
    (tmp_path / "a" / "f.c").rename(tmp_path / "a" / "g.c")
    assert len({first, second, third, tflm_sources.content_digest(tmp_path)}) == 4


def test_unpack_checks_the_folder_name_and_the_pinned_contents(tmp_path):
    good = make_archive(tmp_path / "good.tar.gz", {"lib-" + "0" * 40 + "/src/a.c": b"int a;\n"})
    probe = Source("o", "lib", "0" * 40, "", "test")
    digest = tflm_sources.content_digest(tflm_sources.unpack(probe, good, tmp_path / "probe"))
    pinned = Source("o", "lib", "0" * 40, digest, "test")
    assert tflm_sources.unpack(pinned, good, tmp_path / "ok").name == "lib-" + "0" * 40

    edited = make_archive(tmp_path / "edited.tar.gz", {"lib-" + "0" * 40 + "/src/a.c": b"int b;\n"})
    with pytest.raises(TreeError, match=r"edited\.tar\.gz: its contents are not lib 00000000"):
        tflm_sources.unpack(pinned, edited, tmp_path / "x1")
    stray = make_archive(tmp_path / "other.tar.gz", {"other-1/a.c": b""})
    with pytest.raises(TreeError, match=r"other\.tar\.gz: not the archive of lib 00000000.*other-1/a\.c"):
        tflm_sources.unpack(pinned, stray, tmp_path / "x2")
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[:40])
    with pytest.raises(TreeError, match=r"truncated\.tar\.gz: corrupted archive of lib 00000000"):
        tflm_sources.unpack(pinned, truncated, tmp_path / "x3")


@pytest.mark.tflm
def test_a_tree_is_made_once_and_a_corrupted_archive_leaves_nothing(cache, esp_nn_sources):
    archive = esp_nn_sources / tflm_sources.ESP_NN.archive_name
    good = archive.read_bytes()
    archive.write_bytes(good[: len(good) // 2])
    with pytest.raises(TreeError, match=tflm_sources.ESP_NN.archive_name):
        tflm_tree.make_tree("esp-nn", download=False, say=lambda _: None)
    assert not (cache / "esp-nn").exists() and not list(cache.glob(".esp-nn-staging-*"))

    archive.write_bytes(good)
    said = []
    path = tflm_tree.make_tree("esp-nn", download=False, say=said.append)
    assert path == cache / "esp-nn" and (path / "include" / "esp_nn.h").is_file()
    assert tflm_tree.find_tree("esp-nn") == path and tflm_tree.is_current("esp-nn")
    said.clear()
    tflm_tree.make_tree("esp-nn", download=False, say=said.append)
    assert said == [f"esp-nn tree up to date ({path})"]


def test_missing_archives_are_named_with_where_to_put_them(cache, tmp_path, monkeypatch):
    monkeypatch.setenv(tflm_sources.SOURCES_ENV, str(tmp_path / "empty"))
    with pytest.raises(TreeError) as error:
        tflm_tree.make_tree("tflm", download=False, say=lambda _: None)
    message = str(error.value)
    assert tflm_sources.TFLITE_MICRO.archive_name in message and tflm_sources.CMSIS_NN.archive_name in message
    assert str(tmp_path / "empty") in message and tflm_sources.SOURCES_ENV in message
    assert tflm_tree.main(["tflm", "--no-download"]) == exit_codes.FAILED


def test_an_override_that_is_not_a_tree_says_so(cache, tmp_path, monkeypatch):
    assert tflm_tree.find_tree("tflm") is None
    monkeypatch.setenv("TFLM_ROOT", str(tmp_path))
    with pytest.raises(TreeError, match=r"TFLM_ROOT=.* is not a tflm tree"):
        tflm_tree.find_tree("tflm")
    (tmp_path / "tensorflow" / "lite" / "micro").mkdir(parents=True)
    (tmp_path / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").touch()
    assert tflm_tree.find_tree("tflm") == tmp_path.resolve()


@pytest.mark.tflm
@pytest.mark.slow
def test_the_pinned_tflm_tree_is_made_from_the_shared_archives(cache, monkeypatch):
    if not (SHARED_SOURCES / tflm_sources.TFLITE_MICRO.archive_name).is_file():
        pytest.skip(f"needs {SHARED_SOURCES}")
    monkeypatch.setenv(tflm_sources.SOURCES_ENV, str(SHARED_SOURCES))
    path = tflm_tree.make_tree("tflm", download=False, say=lambda _: None)
    for marker in tflm_tree.TREES["tflm"].markers:
        assert (path / marker).exists(), marker
    assert not (path / "tensorflow/lite/micro/tools/make/downloads").exists()  # a tree, not a checkout
