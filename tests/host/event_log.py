"""Record a board's events for a test: the list and a condition notified on each one."""
from __future__ import annotations

import threading

from blebridge.rpc import Board, Event


def collect(board: Board) -> tuple[list[Event], threading.Condition]:
    seen: list[Event] = []
    cond = threading.Condition()

    def listener(ev: Event) -> None:
        with cond:
            seen.append(ev)
            cond.notify_all()

    board.add_event_listener(listener)
    return seen, cond
