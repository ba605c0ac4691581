"""The errors of the serial link and its client, a small typed tree under `BenchError`; each message says what to check.

`PortUnavailable` (cannot open; `busy` set when another program holds it), `DeviceTimeout`, `ProtocolFailure`,
`DeviceStatusError` (the device answered an error status: `status`, `detail`, `device_message`), `DeviceCrashed`,
`DeviceWasReset`, `IncompatibleDevice` (handshake refused). bench.on_device.run names each as a board's status.
"""

from __future__ import annotations

from bench.link.protocol import Status


class BenchError(Exception):
    """Base of the errors of the serial benchmark; the message says what to check."""


class PortUnavailable(BenchError):
    def __init__(self, message: str, busy: bool = False):
        super().__init__(message)
        self.busy = busy


class DeviceTimeout(BenchError):
    """No (usable) reply within the deadline, after the retries."""


class ProtocolFailure(BenchError):
    """Replies arrived but never a valid one for the request, or one that contradicts it."""


class DeviceStatusError(BenchError):
    """The device answered with an error status."""

    def __init__(self, command: str, status: Status, detail: int, message: str):
        super().__init__(f"{command}: the device answered {status.name} (detail {detail}){': ' + message if message else ''}")
        self.command, self.status, self.detail, self.device_message = command, status, detail, message

    @classmethod
    def of_reply(cls, command: str, reply) -> DeviceStatusError:
        """The error a not-ok reply (a protocol Message: status, fields `detail` and `message`) stands for."""
        message = bytes(reply.fields.get("message", b"")).decode("ascii", "replace")
        return cls(command, reply.status, int(reply.fields.get("detail", 0)), message)


class DeviceCrashed(BenchError):
    """The firmware reported a fault (or printed a crash banner) and stopped."""

    def __init__(self, text: str):
        super().__init__(f"the device crashed: {text}")
        self.text = text


class DeviceWasReset(BenchError):
    """The device rebooted (BOOT event or banner); its state (a half-loaded input) is gone."""

    def __init__(self, text: str):
        super().__init__(f"the device reset: {text}")
        self.text = text


class IncompatibleDevice(BenchError):
    """The device runs another protocol version, model or tensor layout than the artifact."""
