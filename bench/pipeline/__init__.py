"""The main job end to end: model, int8, parity, firmware on the emulated board, benchmark, report (`python -m bench.pipeline`)."""
