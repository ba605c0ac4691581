"""Host parity: the same int8 model on Keras float, LiteRT reference kernels and TFLM on the host, compared with
gates, per-layer localisation and a report (`python -m bench.parity`).
"""
