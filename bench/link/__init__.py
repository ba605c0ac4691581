"""The serial link to a board and the one client on it: frames (COBS + CRC-32), the protocol generated from
mcu/protocol/protocol.json, transports (socket, RFC 2217, ser2net), fault injection, and `device.Device`, the client,
over `channel.Channel` (requests, retries, deadlines), with `ports.open_port`, `line` (rate, damage estimate, chunk
size), `errors` and `replies` (typed results).
"""
