"""pyserial's handler module for faulty:// (found through bench.serial_handlers.register()); the port itself is
bench.faults.Serial."""

from bench.faults import Serial

__all__ = ["Serial"]
