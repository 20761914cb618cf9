"""Event frame sequence numbers: finding event frames the link lost.

The firmware numbers every board->host frame that carries events (``[2, seq, ...]`` and
``[3, seq, ...]``, protocol/README.md "Lost frames"), counting modulo EVENT_SEQ_MOD from 0 at
boot. A frame that fails its CRC or COBS decoding is dropped by the framing layer, which cannot
know what it held; the next event frame's number then jumps, and :class:`EventSeq` turns the
jump into a :class:`LinkGap` with the number of event frames lost.

This is API-neutral: :class:`blebridge.rpc.Board` keeps one EventSeq per link, counts gaps in
``host_counters()`` and hands each gap, in wire order with the events, to its gap listeners;
each API layer decides how to show it. Losses on the link are not the board's event queue
overflow (EVENTS_DROPPED, ``events_dropped_*``): those events never left the board.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

from . import protocol as P

#: Event frame numbers count modulo this (from the schema).
EVENT_SEQ_MOD = P.LIMITS["EVENT_SEQ_MOD"]


class LinkGap(NamedTuple):
    """Event frames lost on the link, found when a frame arrived with a later number."""

    frames_lost: int        # event frames lost in this gap (at least 1)
    expected_seq: int       # the number the next frame should have carried
    received_seq: int       # the number it carried
    gaps: int               # gaps on this link so far, this one included
    total_frames_lost: int  # event frames lost on this link so far, this gap included

    def describe(self) -> str:
        s = "" if self.frames_lost == 1 else "s"
        return (f"{self.frames_lost} event frame{s} lost on the link (seq {self.expected_seq}"
                f"..{(self.received_seq - 1) % EVENT_SEQ_MOD}); the events in them are gone "
                f"({self.total_frames_lost} lost in {self.gaps} gap{'' if self.gaps == 1 else 's'} so far)")


class EventSeq:
    """Expected number of the next event frame; not thread-safe (one reader at a time).

    Unsynchronised after open until the first event frame or the handshake (whose result says
    the next number, ``event_seq``): before that a jump cannot be told from a late start.
    A frame carrying BOOT starts the count again (the board restarted; that is reported as a
    reset, not as lost frames). A jump of d frames (modulo EVENT_SEQ_MOD) is d frames lost;
    a board that restarted and whose BOOT frame was lost also shows as a jump, one that runs the
    count backwards: Board then checks the boot id with a handshake and reports a reset.
    """

    __slots__ = ("expected", "gaps", "frames_lost", "frames")

    def __init__(self) -> None:
        self.expected: Optional[int] = None
        self.gaps = 0
        self.frames_lost = 0
        self.frames = 0           # numbered frames received

    def unsync(self) -> None:
        """A new link (reopen): the next number is unknown again."""
        self.expected = None

    def _gap(self, expected: int, received: int) -> LinkGap:
        lost = (received - expected) % EVENT_SEQ_MOD
        self.gaps += 1
        self.frames_lost += lost
        return LinkGap(lost, expected, received, self.gaps, self.frames_lost)

    def frame(self, seq: int, boot: bool = False) -> Optional[LinkGap]:
        """An event frame numbered ``seq`` arrived (``boot``: it carries BOOT). A gap, or None."""
        self.frames += 1
        expected = self.expected
        self.expected = (seq + 1) % EVENT_SEQ_MOD
        if expected is None or seq == expected or boot:
            return None
        return self._gap(expected, seq)

    def sync(self, next_seq: object) -> Optional[LinkGap]:
        """The handshake said the next event frame is ``next_seq``. Frames the host expected
        before that number and never saw are a gap."""
        if not isinstance(next_seq, int) or isinstance(next_seq, bool) or not 0 <= next_seq < EVENT_SEQ_MOD:
            return None
        expected, self.expected = self.expected, next_seq
        if expected is None or expected == next_seq:
            return None
        return self._gap(expected, next_seq)
