"""Messages between a sim board's port (firmware/ports/sim) and the air, over a Unix stream socket.

Same framing as the host link (blebridge.framing: COBS, CRC-16, 0x00 delimiter); each frame
holds one CBOR array:
  request  ``[0, id, "op", args...]``                sim -> air
  response ``[1, id, errno, result]``                air -> sim; errno 0 or negative (-EINVAL)
  event    ``[2, "NAME", fields...]``                air -> sim, in order
  post     ``[3, "op", args...]``                    sim -> air; performed in order with the
                                                    requests, no response (failures are logged)

The first request of a connection is ``hello(name)`` (or, from a tool rather than a board,
``capture(name, path)``: blebridge.sim.air, "Captures"). The ops, their arguments and the events
are listed in firmware/ports/sim/README.md (the contract both sides implement).
"""
from __future__ import annotations

import errno
from typing import Any

import cbor2
from bumble import hci

from ..framing import FrameDecoder, encode_frame

MSG_REQ = 0
MSG_RSP = 1
MSG_EVT = 2
MSG_POST = 3

#: The connection handle of ops and events that concern no connection (bb_port.h BB_CONN_NONE).
CONN_NONE = 0xFFFF

__all__ = ["MSG_REQ", "MSG_RSP", "MSG_EVT", "MSG_POST", "CONN_NONE", "AirError", "FrameDecoder",
           "encode_frame", "encode_message", "decode_message", "addr_fields"]


class AirError(Exception):
    """An op failed; ``errno`` is the positive errno the board gets (negated on the wire)."""

    def __init__(self, err: int, op: str, detail: str = "") -> None:
        self.errno = err
        name = errno.errorcode.get(err, str(err))
        super().__init__(f"{op}: {name}" + (f": {detail}" if detail else ""))


def encode_message(msg: list[Any]) -> bytes:
    """One framed CBOR message ready to write on the socket."""
    return encode_frame(cbor2.dumps(msg))


def decode_message(payload: bytes) -> list[Any]:
    """The CBOR array of one frame payload. Raises ValueError when it is not an array."""
    msg = cbor2.loads(payload)
    if not isinstance(msg, list) or not msg:
        raise ValueError(f"air message is not a CBOR array: {msg!r}")
    return msg


def addr_fields(address: hci.Address) -> tuple[int, bytes]:
    """An address as ops and events carry it: (addr_type 0 public / 1 random, 6 bytes LSB first)."""
    # Bumble's identity types (2, 3) are public/random on air.
    return address.address_type & 1, bytes(address)
