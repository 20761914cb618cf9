"""blebridge: script a BLE board running blebridge firmware from desktop Python.

    from blebridge import open_board
    with open_board("sim:alice") as board:        # or "/dev/ttyACM0", "rfc2217://rig:4000", "auto"
        print(board.info)
        board.call("ble_active", True)

The RPC contract used by the API layers is in docs/design.md; transports are listed in
blebridge.transport; exceptions in blebridge.errors.
"""
from __future__ import annotations

from .errors import (BlebridgeError, BoardError, BoardLost, BoardReset, CallTimeout, PortOpenError,
                     ProtocolError, SecretStoreError, VersionMismatch)
from .linkseq import LinkGap
from .rpc import Board, BoardInfo, Event, open_board
from .transport import open_transport

__version__ = "0.1.0"

__all__ = [
    "open_board", "Board", "BoardInfo", "Event", "LinkGap", "open_transport",
    "BlebridgeError", "BoardError", "BoardLost", "BoardReset", "CallTimeout", "PortOpenError",
    "ProtocolError", "SecretStoreError", "VersionMismatch", "__version__",
]
