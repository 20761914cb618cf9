"""RPC client: one board, many calls in flight, ordered event delivery.

  board.py       Board (calls, listeners, reset and loss), open_board; threads and invariants
  dispatch.py    Dispatcher: the listeners and the thread that calls them, in wire order
  read_token.py  the read token: callers of board.call() read descriptor-backed ports themselves
Below it: blebridge.wire (Event, BoardInfo, requests, version check), blebridge.transport
(ports; ``auto`` probes boards with transport.probe.probe_handshake). Contract for the API layers:
docs/design.md, "Python host RPC client contract".
"""
from __future__ import annotations

from ..transport.probe import probe_handshake
from ..wire import BoardInfo, Event, check_version, encode_request
from .board import (DEFAULT_TIMEOUT_S, HANDSHAKE_ATTEMPT_S, HANDSHAKE_TIMEOUT_S, SWEEP_PERIOD_S, Board,
                    open_board)
from .read_token import READER_RESUME_S

__all__ = [
    "Board", "open_board", "Event", "BoardInfo", "check_version", "encode_request", "probe_handshake",
    "DEFAULT_TIMEOUT_S", "HANDSHAKE_TIMEOUT_S", "HANDSHAKE_ATTEMPT_S", "SWEEP_PERIOD_S",
    "READER_RESUME_S",
]
