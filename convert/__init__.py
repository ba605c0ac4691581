"""Keras SqueezeNet -> full-int8 TFLite -> the artifact folder the firmware and the host checks consume.

Entry points: `python -m convert` (`convert.__main__`), `convert.artifact.convert_model` / `load_artifact`,
and `convert.tflm_host` (the TFLM host interpreter in a subprocess, shared with the parity and
virtual-device stages). Modules, one job each: quantize (conversion), inspect_tflite (reading a .tflite),
preflight (checks), tflm_ops (TFLM's op table), boards (memory budgets), codegen (C++ package),
cxx_check (cross-compiling it), report (report.md/json), errors. `python -m convert.compress` (weights in
TFLM's DECODE formats) is compress (its CLI), compress_artifact, compress_plan, compress_board_fit, compress_check,
compress_report; the TFLM source trees are tflm_tree (lookup, making) and tflm_sources (pinned archives).
"""
