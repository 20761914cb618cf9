"""Fixtures of the CLI tests (helpers: cli_helpers.py)."""
from __future__ import annotations

import os
import pty
from typing import Any, Iterator

import pytest

from cli_helpers import ADV_COMPANY, ADV_MANUFACTURER, ADV_NAME, ADV_SERVICE, board_name


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A pseudo-terminal nobody answers on: a serial port with no blebridge firmware behind it."""
    master, slave = pty.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


@pytest.fixture
def advertiser() -> Iterator[Any]:
    """A simulated board advertising ADV_NAME and ADV_SERVICE, with ADV_MANUFACTURER in its scan
    response (every 20 ms); ``.info.addr_str`` is the address scans show."""
    from blebridge import calls, open_board
    from blebridge.ble import advertising

    board = open_board(f"sim:{board_name('adv')}")
    try:
        calls.ble_active(board, on=True)
        calls.gap_advertise_start(
            board, interval_us=20_000,
            adv_data=advertising.payload(flags=advertising.FLAGS_GENERAL_LE_ONLY, name=ADV_NAME,
                                         services=[ADV_SERVICE]),
            resp_data=advertising.payload(manufacturer=(ADV_COMPANY, ADV_MANUFACTURER)),
            connectable=True, scannable=True, extended=False, timeout_ms=0)
        yield board
    finally:
        board.close()
