"""A script flooding notifications does not starve the rest of its connection.

bb_sim posts gatts_notify (no answer awaited), so a script can hand notifications to the air
faster than the simulated radio sends them; the air then stops taking the board's messages
until its controller has buffers again (Board._hold_while_radio_backlogged), as a board's
stack does when its TX buffers are full. Without that, a write's response queued behind every
notification of the flood (seconds, then more as the flood went on).
"""
from __future__ import annotations

import threading
import time

from blebridge.micropython.bench import BridgePair

_IRQ_GATTC_WRITE_DONE = 17
#: Writes answered while the flood runs.
WRITES = 3
#: Bound on one write's answer during the flood (s); an unthrottled air needed 10 s or more on
#: the 2-core reference machine, a throttled one about 10 ms.
WRITE_DONE_TIMEOUT_S = 8.0
#: How long the flood runs before the first write (s): unthrottled, the script hands the air
#: about 100,000 notifications a second, which its radio sends at about 2,000 a second.
FLOOD_HEAD_START_S = 1.0


def test_write_is_answered_while_the_peer_floods_notifications(sim_firmware: str) -> None:
    del sim_firmware  # the fixture skips the test when the firmware is not built
    # The suite's own air (tests/conftest.py), a process of its own as for a user: an air in
    # this process would share the interpreter lock with the flood and slow it to its pace.
    pair = BridgePair(("sim:flood-p", "sim:flood-c"))
    stop = threading.Event()
    started = threading.Event()
    flood: threading.Thread | None = None
    try:
        pair.connect()
        payload = bytes(pair.att_mtu - 3)

        def run_flood() -> None:
            while not stop.is_set():
                pair.p.ble.gatts_notify(pair._conn_p, pair._handle, payload)
                started.set()

        flood = threading.Thread(target=run_flood, name="flood", daemon=True)
        flood.start()
        assert started.wait(60), "the flood did not get under way"
        time.sleep(FLOOD_HEAD_START_S)   # the flood's length before the writes, not a wait
        for i in range(1, WRITES + 1):
            pair.c.ble.gattc_write(pair._conn_c, pair._handle, b"w", 1)
            pair.c.wait(_IRQ_GATTC_WRITE_DONE, i, timeout=WRITE_DONE_TIMEOUT_S)
    finally:
        stop.set()
        if flood is not None:
            flood.join(10)
        pair.close()
