"""The device benchmark: parity, latency and memory measured on a board over its serial port, and the report
(`python -m bench.on_device`).
"""
