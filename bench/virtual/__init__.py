"""A virtual board: the firmware's protocol answered on the host, with the TFLM host engine behind it (`python -m bench.virtual.device`)."""
