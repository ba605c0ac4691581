"""The firmware's protocol header is generated from mcu/protocol/protocol.json: regenerating gives identical bytes."""

from bench.link import protocol_gen


def test_committed_header_matches_definition():
    assert protocol_gen.DEFAULT_OUT.read_text() == protocol_gen.render(), "run: python -m bench.link.protocol_gen"


def test_check_mode(tmp_path, capsys):
    out = tmp_path / "protocol_defs.h"
    assert protocol_gen.main(["--out", str(out), "--check"]) == 1
    assert protocol_gen.main(["--out", str(out)]) == 0
    assert protocol_gen.main(["--out", str(out), "--check"]) == 0
    assert "PROTO_CMD_LOAD_INPUT = 2" in out.read_text()
