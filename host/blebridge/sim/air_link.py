"""Messages between a sim board (firmware/ports/sim) and the air, over a Unix stream socket.

Same framing as the host link (blebridge.framing: COBS, CRC-16, 0x00 delimiter); each frame
holds one CBOR array:
  request  ``[0, id, "op", args...]``                sim -> air
  response ``[1, id, errno, result]``                air -> sim; errno 0 or negative (-EINVAL)
  event    ``[2, "NAME", fields...]``                air -> sim, in order

The first request of a connection is ``hello(name)``. The ops, their arguments and the events
are listed in firmware/ports/sim/README.md (the contract both sides implement).
"""
from __future__ import annotations

from typing import Any

import cbor2

from ..framing import FrameDecoder, encode_frame

MSG_REQ = 0
MSG_RSP = 1
MSG_EVT = 2

__all__ = ["MSG_REQ", "MSG_RSP", "MSG_EVT", "FrameDecoder", "encode_frame", "encode_message",
           "decode_message"]


def encode_message(msg: list[Any]) -> bytes:
    """One framed CBOR message ready to write on the socket."""
    return encode_frame(cbor2.dumps(msg))


def decode_message(payload: bytes) -> list[Any]:
    """The CBOR array of one frame payload. Raises ValueError when it is not an array."""
    msg = cbor2.loads(payload)
    if not isinstance(msg, list) or not msg:
        raise ValueError(f"air message is not a CBOR array: {msg!r}")
    return msg
