"""Mutated models (experiments.model_mutations): every host stage refuses a broken flatbuffer by name or runs a sound one,
and the run itself survives whatever the stages do."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from tiny_artifact import make_tiny_artifact

from convert import inspect_tflite
from experiments import model_mutations


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    return make_tiny_artifact(tmp_path_factory.mktemp("mutations"), epochs=1, calibration_count=16)


def model_of(artifact: Path) -> bytes:
    return (artifact / "model.tflite").read_bytes()


def test_mutations_are_seeded_and_of_every_kind(artifact):
    model = model_of(artifact)
    structure = model_mutations.structure_offsets(len(model), model_mutations.weight_ranges(model))
    assert 0 < len(structure) < len(model)  # the weights are found, and they are not everything

    def series(seed):
        rng = np.random.default_rng(seed)
        return [model_mutations.mutate(model, structure, rng, kind) for kind in model_mutations.KINDS]

    first, again = series(3), series(3)
    assert first == again
    assert all(data != model for data, _ in first)
    assert len(first[1][0]) < len(model)  # the truncation
    assert [len(data) for data, _ in first[2:]] == [len(model)] * 2


def test_a_hand_built_package_passes_the_integrity_check_and_nothing_else(artifact, tmp_path):
    model = bytearray(model_of(artifact))
    model[0:4] = (len(model) + 64).to_bytes(4, "little")  # the root table past the end
    folder = model_mutations.hand_built_package(artifact, bytes(model), tmp_path / "package")
    meta = json.loads((folder / "model.json").read_text())
    assert meta["sha256"] == hashlib.sha256(bytes(model)).hexdigest()
    from convert.artifact_reader import ArtifactError, open_artifact

    with pytest.raises(ArtifactError, match="fails the TFLite schema verifier"):
        open_artifact(folder)
    with pytest.raises(ValueError, match="fails the TFLite schema verifier"):
        inspect_tflite.read(bytes(model))


def test_an_operator_naming_a_missing_tensor_is_refused_by_name(artifact):
    """Sound bounds, wrong meaning: the verifier passes it, the reader must not index past its tables."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    root = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model_of(artifact), 0))
    operator = root.subgraphs[0].operators[0]
    operator.inputs = np.array(operator.inputs, dtype=np.int32)
    operator.inputs[0] = len(root.subgraphs[0].tensors) + 7
    builder = flatbuffers.Builder(0)
    builder.Finish(root.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(ValueError, match=r"operator 0 names tensor \d+, of \d+"):
        inspect_tflite.read(bytes(builder.Output()))


def test_a_short_run_has_no_findings(artifact, tmp_path):
    code = model_mutations.main(["--artifacts", str(artifact), "--count", "8", "--seed", "1", "--out", str(tmp_path), "--no-progress"])
    report = json.loads((tmp_path / "mutations.json").read_text())
    assert code == 0 and report["findings"] == []
    for stage in model_mutations.STAGES:
        assert sum(report["counts"][stage].values()) == 8
        assert report["counts"][stage]["refused"] >= 2  # the two truncations at least
    assert "| import |" in (tmp_path / "mutations.md").read_text()
