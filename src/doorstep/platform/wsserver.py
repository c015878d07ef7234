"""The WebSocket protocol Doorstep's servers run: uvicorn's own, plus one ASGI extension.

A live event goes to thousands of connections at once, and every one of them gets the same
bytes: a server's frames are not masked (RFC 6455, 5.1), so one text frame built once serves
them all. Through the ASGI `send`, each connection would instead pay for Starlette's checks,
uvicorn's send and websockets' framing again: about half the fan-out's time beside the write
itself (docs/performance.md, "Real-time fan-out").

The extension, `scope["extensions"]["doorstep.prebuilt_frame"] = {"write": write}`, offers a
`write(frame: bytes) -> bool` that puts a complete frame on the connection's transport when the
connection is open and its client keeps up, and otherwise returns False, so the caller uses the
ASGI `send`, which waits for the socket and ends a closed connection the usual way. The frame is
never compressed: with permessage-deflate negotiated, a frame without RSV1 is an uncompressed
message (RFC 7692, 6), and the compressor's context is untouched.

`doorstep serve` runs uvicorn with `ws=WS_PROTOCOL`; gunicorn takes the same protocol through
`doorstep.gunicorn_worker.Worker`. Under another server the extension is simply absent.
"""

from __future__ import annotations

import struct
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

EXTENSION = "doorstep.prebuilt_frame"
WS_PROTOCOL = "doorstep.platform.wsserver:FramedWebSocketProtocol"


def text_frame(text: str) -> bytes:
    """`text` as one unmasked, final text frame (what a server sends)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x81, 126, size)
    else:
        header = struct.pack("!BBQ", 0x81, 127, size)
    return header + payload


class FramedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets (sans-I/O) protocol offering the `doorstep.prebuilt_frame` write."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        if not self.close_sent:  # the handshake was accepted and the scope built
            self.scope["extensions"][EXTENSION] = {"write": self.write_prebuilt}

    def write_prebuilt(self, frame: bytes) -> bool:
        """Write a complete frame now, or return False when this connection cannot take it
        right now: not open yet or any more, or its client reads slowly (writing paused)."""
        if (
            not self.handshake_complete
            or self.close_sent
            or self.disconnected
            or self.initial_response is not None
            or not self.writable.is_set()
            or self.conn.state is not State.OPEN
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(frame)
        return True
