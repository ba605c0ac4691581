"""The committed fuzz corpus (tests/fuzz_corpus/<target>/) replayed: seeds that reach deep into each target, and
one input per finding of bench.fuzz, kept so the fixed bug stays fixed. The C target runs under ASan/UBSan
through mcu/test/fuzz/replay_main.c (any compiler: gcc here); the Python targets run in this process.
Plus a property test of the frame codec (hypothesis), the invariant the py_frame fuzzer checks."""

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.fuzz import run as fuzz
from bench.fuzz import targets as fuzz_targets
from bench.link.frame import Frame, FrameSplitter, decode_frame, encode_frame

CC = shutil.which("gcc") or shutil.which("clang") or shutil.which("cc")


def corpus(target):
    files = sorted((fuzz.CORPUS / target).iterdir())
    assert files, f"no committed corpus for {target}"
    return files


def test_every_target_has_a_corpus():
    assert {p.name for p in fuzz.CORPUS.iterdir() if p.is_dir()} == set(fuzz.TARGETS)


@pytest.mark.skipif(CC is None, reason="needs a host C compiler (gcc)")
def test_c_session_corpus_replays_clean(tmp_path):
    replayer = fuzz.build_c_replayer(tmp_path / "replay", CC)
    files = corpus("c_session")
    run = subprocess.run([str(replayer), *map(str, files)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, f"a corpus input fails (sanitizer or contract check):\n{run.stderr[-3000:]}"
    assert run.stderr.count("replay ") == len(files)


@pytest.mark.parametrize("target", fuzz_targets.TARGETS)
def test_python_corpus_replays_clean(target):
    for path in corpus(target):
        fuzz_targets.check(target, path.read_bytes())


def test_the_undefined_status_finding_is_in_the_corpus_and_fixed(monkeypatch):
    # Found by py_device: a reply with a valid CRC but an undefined status byte raised ValueError from
    # Message.status inside Device.request. Fixed in bench/link/channel.py (treated as a damaged frame, retried).
    data = (fuzz.CORPUS / "py_device" / "finding_undefined_status").read_bytes()
    fuzz_targets.check("py_device", data)
    import bench.link.channel

    monkeypatch.setattr(bench.link.channel, "STATUS_CODES", frozenset(range(256)))  # the check removed: the bug is back
    with pytest.raises(ValueError, match="is not a valid Status"):
        fuzz_targets.check("py_device", data)


frames = st.builds(Frame, st.integers(0, 255), st.integers(0, 255), st.integers(0, 0xFFFF), st.binary(max_size=600))


@settings(max_examples=200, deadline=None)
@given(frames, st.lists(st.integers(1, 64), min_size=1, max_size=8))
def test_frames_survive_encoding_and_any_split_of_the_stream(frame, cuts):
    stream = encode_frame(frame) * 2
    splitter, bodies, at = FrameSplitter(), [], 0
    for size in cuts * (len(stream) // sum(cuts) + 1):
        bodies += list(splitter.feed(stream[at : at + size]))
        at += size
    assert [decode_frame(b) for b in bodies] == [frame, frame]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_frame_target_accepts_any_bytes(data):
    fuzz_targets.check("py_frame", data)
