"""pyserial's handler module for faulty:// (found through bench.link.serial_handlers.register()); the port itself is
bench.link.faults.Serial."""

from bench.link.faults import Serial

__all__ = ["Serial"]
