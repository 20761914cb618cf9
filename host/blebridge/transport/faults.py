"""Fault injection on a board's serial link: drop, bit-flip and delay bytes, both directions.

A UART bridge (CP210x, CH340 at 921600 Bd on ESP32 dev kits) can lose or corrupt bytes under
load. ``sim:NAME?faults=...`` puts a :class:`FaultRelay` between the simulated board's
pseudo-terminal and the host: the relay opens the board's pty, makes a new pty pair, and copies
bytes between the two through the faults; the host opens the relay's pty exactly like a USB port,
so the host code under test is the one real boards use.

Grammar of the ``faults`` option (URL query; several faults separated by ``,``)::

    faults=KIND[.DIR]:RATE[:MS],...     seed=N

    KIND   drop    the byte is lost
           flip    one bit of the byte (chosen at random) is inverted
           delay   the stream stalls for MS milliseconds (default DEFAULT_DELAY_MS) before the
                   byte; bytes are never reordered
    DIR    board   only bytes on their way to the board (requests)
           host    only bytes on their way to the host (responses, events)
           (none)  both directions
    RATE   probability per byte, 0..1 (e.g. 0.001: one byte in a thousand)
    seed   seeds the fault positions (default: random, logged and kept as ``relay.seed``);
           the same seed hits the same byte positions of each direction's stream again

Example: ``sim:alice?faults=drop:0.001,flip.host:0.0005,delay:0.0002:30&seed=7``.

The relay also keeps what a test needs to check the host against: which frames it damaged
(``stats``), classified by decoding their undamaged bytes (event frame and its seq, response
and its id, request and its id).
"""
from __future__ import annotations

import collections
import errno
import logging
import math
import os
import random
import select
import threading
import time
import tty
from dataclasses import dataclass, field
from typing import Optional

import cbor2

from .. import protocol as P
from ..framing import cobs_decode, crc16

log = logging.getLogger("blebridge.faults")

#: Stall length of a ``delay`` fault when none is given, ms.
DEFAULT_DELAY_MS = 50.0
#: Longest stall a ``delay`` fault may ask for, ms (longer is a typo, not a test).
MAX_DELAY_MS = 60_000.0
#: Bytes read from either side at a time.
_CHUNK = 65536
#: How long the relay thread waits in select() when nothing is scheduled, s.
_POLL_S = 0.05

KINDS = ("drop", "flip", "delay")
TO_BOARD, TO_HOST = "board", "host"


@dataclass
class DirectionFaults:
    """Fault rates of one direction (probability per byte) and the stall length (ms)."""

    drop: float = 0.0
    flip: float = 0.0
    delay: float = 0.0
    delay_ms: float = DEFAULT_DELAY_MS

    def any(self) -> bool:
        return self.drop > 0 or self.flip > 0 or self.delay > 0


@dataclass
class FaultPlan:
    """What ``?faults=...&seed=N`` asked for."""

    to_board: DirectionFaults = field(default_factory=DirectionFaults)
    to_host: DirectionFaults = field(default_factory=DirectionFaults)
    seed: Optional[int] = None

    def any(self) -> bool:
        return self.to_board.any() or self.to_host.any()


def parse_faults(text: str, seed: Optional[str] = None) -> FaultPlan:
    """Parse the ``faults`` and ``seed`` options (grammar in the module docstring).
    Raises ValueError naming the bad item."""
    plan = FaultPlan()
    if seed is not None and seed != "":
        try:
            plan.seed = int(seed, 0)
        except ValueError:
            raise ValueError(f"seed={seed!r} is not an integer") from None
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        parts = item.split(":")
        if len(parts) not in (2, 3):
            raise ValueError(f"fault {item!r}: write KIND[.DIR]:RATE[:MS], e.g. drop:0.001")
        kind, _, direction = parts[0].partition(".")
        if kind not in KINDS:
            raise ValueError(f"fault {item!r}: unknown kind {kind!r} (drop, flip or delay)")
        if direction not in ("", TO_BOARD, TO_HOST):
            raise ValueError(f"fault {item!r}: unknown direction {direction!r} (board or host)")
        try:
            rate = float(parts[1])
        except ValueError:
            raise ValueError(f"fault {item!r}: rate {parts[1]!r} is not a number") from None
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"fault {item!r}: rate {rate} is not a probability (0..1)")
        ms = None
        if len(parts) == 3:
            if kind != "delay":
                raise ValueError(f"fault {item!r}: only delay takes a length in ms")
            try:
                ms = float(parts[2])
            except ValueError:
                raise ValueError(f"fault {item!r}: {parts[2]!r} is not a number of ms") from None
            if not 0.0 <= ms <= MAX_DELAY_MS:
                raise ValueError(f"fault {item!r}: delay {ms} ms is outside 0..{MAX_DELAY_MS:g}")
        targets = {TO_BOARD: [plan.to_board], TO_HOST: [plan.to_host],
                   "": [plan.to_board, plan.to_host]}[direction]
        for d in targets:
            setattr(d, kind, rate)
            if ms is not None:
                d.delay_ms = ms
    return plan


@dataclass
class FaultStats:
    """What the relay did to one direction's stream."""

    bytes: int = 0
    dropped: int = 0
    flipped: int = 0
    delays: int = 0
    frames: int = 0                 # frames (delimiters) that went through
    frames_damaged: int = 0         # frames hit by a drop or flip (a hit delimiter damages two)
    damaged_event_seqs: list = field(default_factory=list)   # seq of each damaged event frame
    damaged_response_ids: list = field(default_factory=list)
    damaged_request_ids: list = field(default_factory=list)
    damaged_other: int = 0          # empty frames, undecodable bytes


def _gap_to_next(rng: random.Random, p: float) -> float:
    """Bytes before the next fault of probability ``p`` per byte (geometric); inf when p is 0."""
    if p <= 0.0:
        return math.inf
    if p >= 1.0:
        return 0
    return math.floor(math.log(1.0 - rng.random()) / math.log(1.0 - p))


class _Stream:
    """One direction: decides faults by byte position, so a seed replays them exactly, and
    records which frames of the clean stream the faults damaged."""

    def __init__(self, name: str, faults: DirectionFaults, seed: int) -> None:
        self.name = name
        self.faults = faults
        self.stats = FaultStats()
        # One generator per kind: where faults fall depends only on the seed, kind and position.
        self._rng = {k: random.Random(f"{seed}/{name}/{k}") for k in KINDS}
        self._flip_bit = random.Random(f"{seed}/{name}/bit")
        self._at = {k: _gap_to_next(self._rng[k], getattr(faults, k)) for k in KINDS}
        self._pos = 0                    # index in the clean stream of the next byte
        self._frame = bytearray()        # clean bytes of the frame in progress
        self._cur_damaged = False
        self._next_damaged = False
        self.release_at = 0.0            # monotonic s: no byte leaves before the last one queued
        self.enabled = True

    def _reschedule(self, kind: str, first: int) -> None:
        """The next fault of ``kind`` falls on byte ``first`` or later."""
        self._at[kind] = first + _gap_to_next(self._rng[kind], getattr(self.faults, kind))

    def apply(self, data: bytes, now: float) -> list[tuple[float, bytes]]:
        """``data`` (the next bytes of the clean stream) with faults applied, as (release
        time, bytes) segments in order."""
        start = self._pos
        end = start + len(data)
        out: list[tuple[float, bytes]] = []
        seg = bytearray()
        release = max(self.release_at, now)
        pos = start
        at = self._at
        while self.enabled:
            kind = min(at, key=at.__getitem__)
            j = at[kind]
            if j >= end:
                break
            j = int(j)
            if j > pos:
                clean = data[pos - start:j - start]
                seg += clean
                self._track(clean)
                pos = j
            if kind == "delay":
                # The stream stalls before byte j; it still goes out, after the stall.
                if seg:
                    out.append((release, bytes(seg)))
                    seg = bytearray()
                release = max(release, now + self.faults.delay_ms / 1000.0)
                self.stats.delays += 1
                self._reschedule("delay", j + 1)
                continue
            b = data[j - start]
            self._track_damaged(b)
            if kind == "drop":
                self.stats.dropped += 1
            else:
                seg.append(b ^ (1 << self._flip_bit.randrange(8)))
                self.stats.flipped += 1
            pos = j + 1
            self._reschedule(kind, pos)
            for k in ("drop", "flip"):
                if at[k] < pos:               # both fell on this byte: the first one wins
                    self._reschedule(k, pos)
        if pos < end:
            clean = data[pos - start:]
            seg += clean
            self._track(clean)
        self._pos = end
        if not self.enabled:
            for k in KINDS:                  # faults resume at random positions after enable
                if at[k] < end:
                    self._reschedule(k, end)
        if seg:
            out.append((release, bytes(seg)))
        self.release_at = release
        self.stats.bytes += len(data)
        return out

    # -- which frames were damaged ---------------------------------------------------------

    def _track(self, clean: bytes) -> None:
        parts = clean.split(b"\x00")
        for p in parts[:-1]:
            self._frame += p
            self._end_frame()
        self._frame += parts[-1]

    def _track_damaged(self, b: int) -> None:
        self._cur_damaged = True
        if b == 0:
            # A delimiter lost or changed: this frame and the next run together; both are lost.
            self._next_damaged = True
            self._end_frame()
        else:
            self._frame.append(b)

    def _end_frame(self) -> None:
        st = self.stats
        st.frames += 1
        if self._cur_damaged:
            st.frames_damaged += 1
            self._classify(bytes(self._frame))
        self._frame.clear()
        self._cur_damaged, self._next_damaged = self._next_damaged, False

    def _classify(self, body: bytes) -> None:
        st = self.stats
        try:
            raw = cobs_decode(body)
            payload = raw[:-2]
            if len(raw) < 3 or crc16(payload) != int.from_bytes(raw[-2:], "little"):
                raise ValueError("not a frame")
            msg = cbor2.loads(payload)
            kind, ident = msg[0], msg[1]
        except Exception:
            st.damaged_other += 1
            return
        if kind in (P.MSG_EVT, P.MSG_EVT_BATCH):
            st.damaged_event_seqs.append(ident)
        elif kind == P.MSG_RSP:
            st.damaged_response_ids.append(ident)
        elif kind == P.MSG_REQ:
            st.damaged_request_ids.append(ident)
        else:
            st.damaged_other += 1


def _open_raw(path: str) -> int:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    return fd


class FaultRelay:
    """Copies bytes between a board's pty (``board_pty``) and a new pty (``path``, for the
    host), through the faults of ``plan``. Runs one thread; :meth:`close` stops it.

    When the board side ends (end of file, EIO: the board process died) the relay closes its
    side too, so the host sees the link go away as it would without the relay.
    """

    def __init__(self, board_pty: str, plan: FaultPlan) -> None:
        self.plan = plan
        self.seed = plan.seed if plan.seed is not None else random.SystemRandom().randrange(1 << 32)
        self.board_pty = board_pty
        self.to_board = _Stream(TO_BOARD, plan.to_board, self.seed)
        self.to_host = _Stream(TO_HOST, plan.to_host, self.seed)
        self._board_fd = _open_raw(board_pty)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)                 # raw before the host opens it, as a USB port
        tty.setraw(self._master)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._stop_r, self._stop_w = os.pipe()
        self._closed = False
        self.ended: Optional[str] = None        # why the relay stopped copying, if it did
        # Per destination: (release time, bytes) not yet written, in order.
        self._out = {TO_BOARD: collections.deque(), TO_HOST: collections.deque()}
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"blebridge-faults {board_pty}")
        self._thread.start()
        log.info("fault relay %s <-> %s, seed %d", board_pty, self.path, self.seed)

    # -- control (tests) -------------------------------------------------------------------

    def set_enabled(self, on: bool) -> None:
        """Pause (False) or resume the faults of both directions; bytes keep flowing."""
        self.to_board.enabled = self.to_host.enabled = on

    @property
    def stats(self) -> dict[str, FaultStats]:
        return {TO_BOARD: self.to_board.stats, TO_HOST: self.to_host.stats}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.write(self._stop_w, b"x")
        if self._thread is not threading.current_thread():
            self._thread.join(2.0)
        for fd in (self._board_fd, self._master, self._slave, self._stop_r, self._stop_w):
            try:
                os.close(fd)
            except OSError:
                pass

    # -- relay thread ----------------------------------------------------------------------

    def _run(self) -> None:
        fds = {self._board_fd: (self.to_host, TO_HOST), self._master: (self.to_board, TO_BOARD)}
        dest_fd = {TO_HOST: self._master, TO_BOARD: self._board_fd}
        try:
            while True:
                now = time.monotonic()
                wait = _POLL_S
                wlist = []
                for d, q in self._out.items():
                    if q:
                        if q[0][0] <= now:
                            wlist.append(dest_fd[d])
                        else:
                            wait = min(wait, q[0][0] - now)
                r, w, _ = select.select([self._board_fd, self._master, self._stop_r], wlist, [],
                                        max(wait, 0.0))
                if self._stop_r in r:
                    return
                now = time.monotonic()
                for fd in r:
                    try:
                        data = os.read(fd, _CHUNK)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        if fd == self._master and exc.errno == errno.EIO:
                            continue            # the host has not opened (or closed) its side
                        raise
                    if not data:
                        if fd == self._master:
                            continue
                        raise EOFError("the board closed its pty")
                    stream, d = fds[fd]
                    self._out[d].extend(stream.apply(data, now))
                for d, q in self._out.items():
                    fd = dest_fd[d]
                    while q and q[0][0] <= now:
                        rel, chunk = q[0]
                        try:
                            n = os.write(fd, chunk)
                        except BlockingIOError:
                            break
                        except OSError as exc:
                            if fd == self._master and exc.errno == errno.EIO:
                                q.popleft()     # nobody reads the host side: as on a UART
                                continue
                            raise
                        if n < len(chunk):
                            q[0] = (rel, chunk[n:])
                            break
                        q.popleft()
        except Exception as exc:        # EOF/EIO on the board side: the board went away
            self.ended = str(exc)
            log.debug("fault relay %s ends: %s", self.board_pty, exc)
            # Hang up the host's side so its reader sees the link end, as without the relay.
            try:
                os.close(self._master)
            except OSError:
                pass
            self._master = -1
