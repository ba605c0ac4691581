"""Opening a `--port` URL: `open_port(url)` returns a pyserial port for any URL the bench takes, or raises
`PortUnavailable` with what to check (busy, nothing listening, no such port, permission, a refusing RFC 2217 server).

The transport layer under bench.link.device.Device: local ports, socket:// (QEMU, the virtual device), rfc2217://
through bench.link.transport, loop://, and the project's own schemes (faulty://, bench.link.serial_handlers).
"""

from __future__ import annotations

import errno
from typing import Any

from bench.link.errors import PortUnavailable
from bench.link.line import DEFAULT_BAUD


def open_port(url: str, baud: int = DEFAULT_BAUD, *, open_timeout_s: float = 5.0):
    """A pyserial port for `url` (/dev/ttyUSB0, COM3, socket://host:port, rfc2217://host:port, loop://,
    faulty://... of bench.link.serial_handlers). Raises PortUnavailable naming what to check."""
    import serial

    from bench.link.serial_handlers import register

    register()  # the project's own schemes (faulty://), through pyserial's protocol_handler_packages

    kwargs: dict[str, Any] = {"baudrate": baud, "timeout": 0.05, "write_timeout": open_timeout_s}
    if "://" not in url:
        kwargs["exclusive"] = True  # a second program on a local port would steal bytes: refuse instead
    try:
        if url.startswith("rfc2217://"):
            from bench.link.transport import open_rfc2217  # pyserial's client, settings negotiated once (see there)

            return open_rfc2217(url, **kwargs)
        return serial.serial_for_url(url, **kwargs)
    except serial.SerialException as error:
        text = str(error)
        if url.startswith("rfc2217://") and ("RFC2217" in text or "waiting for option" in text):
            from bench.link.transport import rfc2217_refused

            raise PortUnavailable(rfc2217_refused(url, text)) from error
        code = getattr(error, "errno", None)
        if code == errno.EBUSY or "exclusively lock" in text or "busy" in text.lower() or "Access is denied" in text:
            raise PortUnavailable(
                f"{url} is busy: another program (a serial monitor, another benchmark, pio device monitor) has it open; close it",
                busy=True,
            ) from error
        if "Connection refused" in text or "could not open port" in text and "://" in url:
            raise PortUnavailable(
                f"{url}: nothing is listening there ({text}); start the emulator (pio run -e qemu_stm32f405 -t upload) "
                "or python -m bench.virtual.device first"
            ) from error
        if code == errno.ENOENT or "No such file" in text or "FileNotFoundError" in text:
            raise PortUnavailable(f"{url}: no such port; is the board plugged in? (ls /dev/ttyUSB* /dev/ttyACM*)") from error
        if code == errno.EACCES or "Permission denied" in text:
            raise PortUnavailable(f"{url}: permission denied; add yourself to the dialout group (or uucp) and log in again") from error
        raise PortUnavailable(f"{url}: cannot open ({text})") from error
    except OSError as error:  # pyserial's RFC 2217 client lets a socket error during negotiation through
        if url.startswith("rfc2217://"):
            raise PortUnavailable(f"{url}: the server closed the connection while it opened ({error}); is its board attached?") from error
        raise PortUnavailable(f"{url}: cannot open ({error})") from error
