"""experiments.kernel_opt without a toolchain: its variants, its refusals and its table (the builds and QEMU runs it drives are
measured in docs/BENCHMARKS.md, "Kernel optimisation"; tests/test_kernel_flags_qemu.py checks the default build)."""

from __future__ import annotations

import pytest

from experiments import kernel_opt


def test_the_issue_variants_start_from_the_environment_flags():
    first = next(iter(kernel_opt.VARIANTS.values()))
    assert (first.tflm, first.cmsis_nn) == ("", "")  # build_flags alone: the firmware before the option
    assert {(v.tflm, v.cmsis_nn) for v in kernel_opt.VARIANTS.values()} >= {("", "-O2"), ("-O3", ""), ("-O2", "-O2")}
    assert kernel_opt.VARIANTS["cmsis_nn-O3"].environ() == {"SQZ_TFLM_OPTIMIZATION": "", "SQZ_CMSIS_NN_OPTIMIZATION": "-O3"}


def test_a_variant_of_ones_own_and_the_refusals(capsys):
    assert kernel_opt.parse_variant("unrolled::-O2 -funroll-loops") == kernel_opt.Variant("unrolled", "", "-O2 -funroll-loops")
    for bad in ("nameonly", ":-O2:-O2", "a:b"):
        with pytest.raises(SystemExit):
            kernel_opt.main(["--variant", bad])
        assert "NAME:TFLM_FLAGS:CMSIS_NN_FLAGS" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        kernel_opt.main(["--variants", "Os,O9"])
    assert "unknown O9" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        kernel_opt.main(["--variants", "Os", "--variant", "Os::-O2"])
    assert "each name once" in capsys.readouterr().err


def test_table_gives_macs_per_instruction_and_the_change():
    rows = [
        {"variant": "Os", "tflm_flags": "", "cmsis_nn_flags": "", "instructions": 200.0, "status": "ok", "flash_total": 10,
         "flash_tflm": 5, "ram_total": 7, "bit_identical": 3, "images": 3},
        {"variant": "fast", "tflm_flags": "", "cmsis_nn_flags": "-O2", "instructions": 150.0, "status": "ok", "flash_total": 12,
         "flash_tflm": 6, "ram_total": 7, "bit_identical": 2, "images": 3},
    ]  # fmt: skip
    lines = kernel_opt.markdown(rows, macs=90)
    assert lines[2] == "| Os | env | env | 200 | +0.0 % | 0.450 | 10 | 5 | 7 | 3/3 |"
    assert lines[3] == "| fast | env | -O2 | 150 | -25.0 % | 0.600 | 12 | 6 | 7 | 2/3 |"
