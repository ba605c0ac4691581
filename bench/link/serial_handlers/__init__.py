"""The project's own pyserial URL schemes, as pyserial documents them: a package listed in
`serial.protocol_handler_packages`, holding one module `protocol_<scheme>` per scheme, each exposing `Serial`.

    faulty://host:port?corrupt=P&drop=P&seed=N&direction=both   byte damage on a socket:// link (bench.link.faults)

`register()` adds the package to pyserial's list; bench.link.ports.open_port calls it, so every `--port` takes these
URLs. Importing this package changes nothing.
"""

from __future__ import annotations


def register() -> None:
    """Let `serial.serial_for_url` find this package's schemes (idempotent)."""
    import serial

    if __name__ not in serial.protocol_handler_packages:
        serial.protocol_handler_packages.append(__name__)
