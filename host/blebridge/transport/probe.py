"""One handshake over a raw, open port: no Board, no threads (the ``auto`` scheme's probe).

It speaks the wire format (blebridge.wire) itself so that the transports need nothing from the
RPC client (blebridge.rpc), which sits above them.
"""
from __future__ import annotations

import time
from typing import Any, Optional

import cbor2

from .. import protocol as P
from ..framing import FrameDecoder
from ..wire import BoardInfo, encode_request
from .reader import READ_POLL_S, make_reader


def probe_handshake(ser: Any, timeout: float) -> Optional[BoardInfo]:
    """Handshake on an open transport without a Board (no threads): BoardInfo, or None if no
    valid answer came within ``timeout`` s. Used by ``auto`` to find a board that answers."""
    read = make_reader(ser, min(READ_POLL_S, timeout))
    dec = FrameDecoder()
    ser.write(b"\x00" + encode_request(0, "handshake", (P.PROTO_MAJOR, P.PROTO_MINOR)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        data = read()
        for f in dec.feed(data) if data else ():
            try:
                msg = cbor2.loads(f)
            except Exception:
                continue
            if isinstance(msg, list) and len(msg) >= 4 and msg[0] == P.MSG_RSP and msg[1] == 0:
                if msg[2] != 0:
                    return None
                return BoardInfo.from_handshake(msg[3])
    return None
