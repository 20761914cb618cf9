"""Soak: simulated boards under connection churn, notification floods, scans and L2CAP transfers.

    python -m blebridge.soak [--minutes 10] [--boards 4] [--warmup 30] [--air SOCKET]
                             [--rss-limit 10] [--trace-memory N] [--json]

``make soak`` runs it for 10 minutes; tests/sim/test_soak.py runs it for seconds.

Half the boards (rounded down) are peripherals, the rest centrals, all driven from this one
process through the MicroPython ``bluetooth`` layer (one script thread per board, as one
MicroPython program per board), on one simulated air (``sim:soak-pN`` / ``sim:soak-cN``).

Peripheral: advertises whenever it has no central, serves a GATT service (a notify
characteristic, a data characteristic for writes, a control characteristic for commands, a
status characteristic with what it has received on this connection) and listens for L2CAP
channels. It checks every write and every L2CAP SDU it receives (sequence number and CRC-32).

Central, in a loop: takes a free peripheral, scans (checking the peripheral's advertising data
arrives intact), connects, exchanges MTUs, discovers the service, characteristics and the CCCD,
subscribes, asks for a flood of notifications and checks each (flood id, sequence, CRC-32),
sends a burst of writes without response, opens an L2CAP channel and sends SDUs of varying
length, reads the peripheral's status until it has counted everything, closes the channel and
disconnects. Every CHURN_EVERY-th cycle is cut short instead: a disconnect right after
connecting, a disconnect by the peripheral, or a disconnect in the middle of a flood.

Figures: cycles and transfers; calls made and events delivered; the boards' and the host's
lost / dropped / error counters at the start and the end; the start is after the warm-up
and after every central has completed a full cycle and every kind of churn has run (so caches,
buffers and threads exist), and the window lasts until that has happened once more; this
process's RSS, threads and open file descriptors at start and end, and the RSS of the board
processes and of the air. Exits 1 if any data was lost or corrupted, any lost/dropped/error
counter moved, any step failed, the RSS of this process, a board or the air grew more than
--rss-limit percent, or threads or descriptors grew; else 0.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import errno
import itertools
import json
import os
import random
import struct
import sys
import threading
import time
import tracemalloc
import zlib
from typing import Any, Callable, Optional

from .ble import advertising
from .micropython import (BLE, FLAG_NOTIFY, FLAG_READ, FLAG_WRITE, FLAG_WRITE_NO_RESPONSE, UUID,
                          runtime)

_IRQ_CENTRAL_CONNECT = 1
_IRQ_CENTRAL_DISCONNECT = 2
_IRQ_GATTS_WRITE = 3
_IRQ_SCAN_RESULT = 5
_IRQ_SCAN_DONE = 6
_IRQ_PERIPHERAL_CONNECT = 7
_IRQ_PERIPHERAL_DISCONNECT = 8
_IRQ_GATTC_SERVICE_RESULT = 9
_IRQ_GATTC_SERVICE_DONE = 10
_IRQ_GATTC_CHARACTERISTIC_RESULT = 11
_IRQ_GATTC_CHARACTERISTIC_DONE = 12
_IRQ_GATTC_DESCRIPTOR_RESULT = 13
_IRQ_GATTC_DESCRIPTOR_DONE = 14
_IRQ_GATTC_READ_RESULT = 15
_IRQ_GATTC_READ_DONE = 16
_IRQ_GATTC_WRITE_DONE = 17
_IRQ_GATTC_NOTIFY = 18
_IRQ_MTU_EXCHANGED = 21
_IRQ_L2CAP_CONNECT = 23
_IRQ_L2CAP_DISCONNECT = 24
_IRQ_L2CAP_RECV = 25
_IRQ_L2CAP_SEND_READY = 26

#: Connection handle in _IRQ_PERIPHERAL_DISCONNECT for a connect that timed out.
CONN_HANDLE_NONE = 0xFFFF

SVC = UUID("7e1a0007-5c4b-4d55-9a1e-000000000001")
NOTIFY_CHR = UUID("7e1a0007-5c4b-4d55-9a1e-000000000002")
DATA_CHR = UUID("7e1a0007-5c4b-4d55-9a1e-000000000003")
CTRL_CHR = UUID("7e1a0007-5c4b-4d55-9a1e-000000000004")
STATUS_CHR = UUID("7e1a0007-5c4b-4d55-9a1e-000000000005")
CCCD = UUID(0x2902)

#: ATT MTU both sides ask for (bytes); notify and write payloads are ATT_MTU - 3.
ATT_MTU = 247
#: L2CAP CoC MTU both sides ask for (bytes); SDUs are 1..L2CAP_MTU bytes.
L2CAP_MTU = 512
L2CAP_PSM = 0x83
#: Advertising and scan interval and window (µs): the simulated controller reports nothing
#: with the defaults on a short scan (SIMULATOR-NOTES.md).
ADV_INTERVAL_US = 20_000
SCAN_INTERVAL_US = SCAN_WINDOW_US = 20_000
#: Scan before each connection (ms).
SCAN_MS = 150
#: A connect scans this long for the peripheral before giving up (ms).
CONNECT_SCAN_MS = 10_000

#: Per full cycle: notifications in the flood, writes without response, L2CAP SDUs.
FLOOD_COUNT = 200
WRITE_COUNT = 100
SDU_COUNT = 40
#: Every CHURN_EVERY-th cycle of a central is a churn cycle (cut short); churn cycles take the
#: CHURN_KINDS in turn over all centrals.
CHURN_EVERY = 3
CHURN_KINDS = ("quick", "peer", "mid_flood")
#: The peripheral lets its handlers run every FLOOD_YIELD_EVERY notifications of a flood,
#: for FLOOD_YIELD_S (s).
FLOOD_YIELD_EVERY = 32
FLOOD_YIELD_S = 0.001
#: A churn flood is this long, so a disconnect lands in its middle.
CHURN_FLOOD_COUNT = 2000

#: Any one wait for an event or a status may take this long (s) before the step fails: generous,
#: the machine the soak runs on may be loaded.
STEP_TIMEOUT_S = 60.0
#: The warm-up and the measured window each wait at most this long (s) for every central to
#: complete a full cycle.
FULL_CYCLE_WAIT_S = 10 * STEP_TIMEOUT_S
#: Poll period of the status characteristic while waiting for the peripheral to count (s).
STATUS_POLL_S = 0.02
#: Wait before retrying a write without response refused for lack of buffers (s).
WRITE_RETRY_S = 0.001
#: A central waiting for a free peripheral looks again at least this often (s).
RESERVE_RETRY_S = 0.02
#: The peripheral's script loop looks at its queue at least this often (s).
PERIPHERAL_POLL_S = 0.05
#: Progress lines this often (s).
PROGRESS_S = 60.0
#: Stack frames kept per allocation with --trace-memory.
TRACE_FRAMES = 4
#: Default warm-up (s) before the start figures are taken: caches, threads and buffers exist.
DEFAULT_WARMUP_S = 30.0
#: RSS growth allowed between start and end (percent).
DEFAULT_RSS_LIMIT_PCT = 10.0

#: Status characteristic: session id, writes ok, writes bad, SDUs ok, SDUs bad, L2CAP bytes.
_STATUS = struct.Struct("<IIIIII")
#: Notification header: flood id, sequence, CRC-32 of the rest.
_NOTIFY_HDR = struct.Struct("<III")
#: Write header: sequence, CRC-32 of the rest.
_WRITE_HDR = struct.Struct("<II")
#: L2CAP SDU header: sequence, body length, CRC-32 of the body.
_SDU_HDR = struct.Struct("<IHI")

#: Counters (board and host diagnostics, names as `blebridge info` shows them) that count lost,
#: dropped or corrupted traffic or failed plumbing: each must stay 0 without fault injection.
LOSS_COUNTERS = (
    "crc_errors", "garbage_bytes", "oversize", "malformed", "events_dropped_scan",
    "events_dropped_other", "responses_dropped", "question_timeouts",
    "host_crc_errors", "host_garbage_bytes", "host_oversize", "host_bad_messages",
    "host_unmatched_responses", "host_late_responses", "host_calls_timed_out",
    "host_listener_errors", "host_resets", "host_links_lost", "host_link_gaps",
    "host_link_frames_lost",
)
#: Counters shown for information: stalls are flow control, not loss; the rest count calls the
#: churn makes on purpose (port_errors: calls the port refused, e.g. a notify to a central that
#: just left, counted as floods_cut).
INFO_COUNTERS = ("frames_rx", "frames_tx", "events_tx", "events_stalled", "events_queue_peak",
                 "port_errors", "unknown_handle", "not_active", "bad_args", "unknown_method", "too_large",
                 "host_frames_rx", "host_frames_tx", "host_events")


def _pattern(seed: int, n: int) -> bytes:
    """``n`` bytes that depend on ``seed`` (so a payload from another packet never passes)."""
    rng = random.Random(seed)
    return rng.randbytes(n)


class SoakError(RuntimeError):
    """A step of the soak failed (a wait ran out, a peer answered wrongly)."""


class Stats:
    """What every board did and what went wrong, shared by all script and handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.n: dict[str, int] = {}
        self.failures: list[str] = []
        #: Failures kept in full (the count is in ``n['failures']``).
        self.max_kept = 50

    def add(self, key: str, delta: int = 1) -> None:
        with self._lock:
            self.n[key] = self.n.get(key, 0) + delta

    def fail(self, what: str) -> None:
        with self._lock:
            self.n["failures"] = self.n.get("failures", 0) + 1
            if len(self.failures) < self.max_kept:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {what}")

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.n)


class _Events:
    """One board's IRQ events: counts and the last data per event, and a condition to wait on.

    Kept small on purpose (no list of every event): the soak runs for hours if asked.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.count: dict[int, int] = {}
        self.last: dict[int, tuple] = {}

    def record(self, event: int, data: tuple) -> None:
        with self.cond:
            self.count[event] = self.count.get(event, 0) + 1
            self.last[event] = data
            self.cond.notify_all()

    def seen(self, event: int) -> int:
        with self.cond:
            return self.count.get(event, 0)

    def wait(self, event: int, after: int, what: str, timeout: float = STEP_TIMEOUT_S) -> tuple:
        """The data of ``event`` once it has been seen more than ``after`` times."""
        runtime.script_waits()   # this thread now waits: its board's handlers may run
        with self.cond:
            if not self.cond.wait_for(lambda: self.count.get(event, 0) > after, timeout):
                raise SoakError(f"{what}: IRQ {event} not seen within {timeout:.0f} s")
            return self.last[event]

    def wait_for(self, predicate: Callable[[], bool], what: str,
                 timeout: float = STEP_TIMEOUT_S) -> None:
        runtime.script_waits()
        with self.cond:
            if not self.cond.wait_for(predicate, timeout):
                raise SoakError(f"{what}: not within {timeout:.0f} s")


def _copy(data: tuple) -> tuple:
    return tuple(bytes(x) if isinstance(x, memoryview) else x for x in data)


# -- peripheral --------------------------------------------------------------------------------


class _Link:
    """A peripheral's view of its current central: what arrived, checked."""

    def __init__(self, conn: int) -> None:
        self.conn = conn
        self.session = 0
        self.writes_ok = self.writes_bad = 0
        self.next_write = 0
        self.sdus_ok = self.sdus_bad = 0
        self.next_sdu = 0
        self.l2cap_bytes = 0
        self.cid: Optional[int] = None
        self.rx = bytearray()


class Peripheral:
    """Advertises, serves the soak service, checks what it is sent, floods notifications."""

    def __init__(self, name: str, port: str, stats: Stats) -> None:
        self.name, self.stats = name, stats
        self.ble = BLE(port=port)
        self.adv_data = advertising.payload(flags=advertising.FLAGS_GENERAL_LE_ONLY, name=name)
        self._q: list[tuple] = []
        self._qcond = threading.Condition()
        self._link: Optional[_Link] = None
        self._status_dirty = False
        self._advertising = False
        self._stop = False
        self._rxbuf = bytearray(L2CAP_MTU * 4)
        ble = self.ble
        ble.active(True)
        ble.config(mtu=ATT_MTU)
        ((self.notify_h, self.data_h, self.ctrl_h, self.status_h),) = ble.gatts_register_services((
            (SVC, ((NOTIFY_CHR, FLAG_READ | FLAG_NOTIFY),
                   (DATA_CHR, FLAG_WRITE | FLAG_WRITE_NO_RESPONSE),
                   (CTRL_CHR, FLAG_WRITE),
                   (STATUS_CHR, FLAG_READ))),))
        ble.gatts_set_buffer(self.data_h, ATT_MTU - 3)
        ble.gatts_set_buffer(self.notify_h, ATT_MTU - 3)
        ble.gatts_write(self.status_h, bytes(_STATUS.size))
        self.addr = ble.config("mac")
        ble.irq(self._irq)
        ble.l2cap_listen(L2CAP_PSM, L2CAP_MTU)
        self.thread = threading.Thread(target=self._run, name=f"soak {name}", daemon=True)

    # Handlers: on the board's dispatcher thread; they check data and hand work to the script.
    def _irq(self, event: int, data: tuple) -> Any:
        try:
            return self._handle(event, data)
        except Exception as exc:   # an escaping exception would switch the handler off
            self.stats.fail(f"{self.name}: handler for IRQ {event}: {exc!r}")
            return None

    def _handle(self, event: int, data: tuple) -> Any:
        if event == _IRQ_CENTRAL_CONNECT:
            self._link = _Link(data[0])
            self._advertising = False   # a connection ends advertising
            self._status_dirty = True
        elif event == _IRQ_CENTRAL_DISCONNECT:
            link = self._link
            if link is not None and link.conn == data[0]:
                self._link = None   # the script loop advertises again
        elif event == _IRQ_GATTS_WRITE:
            conn, handle = data
            link = self._link
            if link is None or link.conn != conn:
                self.stats.fail(f"{self.name}: write on unknown connection {conn}")
                return None
            value = self.ble.gatts_read(handle)
            if handle == self.data_h:
                self._check_write(link, value)
            elif handle == self.ctrl_h:
                self._command(link, value)
        elif event == _IRQ_L2CAP_CONNECT:
            link = self._link
            if link is not None and link.conn == data[0]:
                link.cid, link.rx = data[1], bytearray()
        elif event == _IRQ_L2CAP_RECV:
            self._receive(data[0], data[1])
        elif event == _IRQ_L2CAP_DISCONNECT:
            link = self._link
            if link is not None and link.cid == data[1]:
                link.cid = None
        return None

    def _check_write(self, link: _Link, value: bytes) -> None:
        ok = len(value) == ATT_MTU - 3
        if ok:
            seq, crc = _WRITE_HDR.unpack_from(value)
            body = value[_WRITE_HDR.size:]
            ok = seq == link.next_write and zlib.crc32(body) == crc and body == _pattern(seq, len(body))
            link.next_write = seq + 1
        if ok:
            link.writes_ok += 1
        else:
            link.writes_bad += 1
            self.stats.fail(f"{self.name}: write {link.next_write - 1} arrived wrong ({len(value)} B)")
        self._status_dirty = True

    def _receive(self, conn: int, cid: int) -> None:
        link = self._link
        while True:
            n = self.ble.l2cap_recvinto(conn, cid, self._rxbuf)
            if link is not None and link.conn == conn:
                link.rx += self._rxbuf[:n]
                link.l2cap_bytes += n
            # Less than a buffer: drained (a closed channel is forgotten once drained, so
            # asking again could name a channel that no longer exists).
            if n < len(self._rxbuf):
                break
        if link is None or link.conn != conn:
            return
        rx = link.rx
        while len(rx) >= _SDU_HDR.size:
            seq, length, crc = _SDU_HDR.unpack_from(rx)
            if len(rx) < _SDU_HDR.size + length:
                break
            body = bytes(rx[_SDU_HDR.size:_SDU_HDR.size + length])
            del rx[:_SDU_HDR.size + length]
            if seq == link.next_sdu and zlib.crc32(body) == crc and body == _pattern(~seq, length):
                link.sdus_ok += 1
            else:
                link.sdus_bad += 1
                self.stats.fail(f"{self.name}: L2CAP SDU {seq} (expected {link.next_sdu}, "
                                f"{length} B) arrived wrong")
            link.next_sdu = seq + 1
        self._status_dirty = True

    def _command(self, link: _Link, value: bytes) -> None:
        kind, arg1, arg2 = value[:1], *struct.unpack_from("<II", value, 1)
        if kind == b"S":      # a new session: status counts from here
            link.session = arg1
            self._status_dirty = True
        elif kind == b"N":    # flood: arg1 notifications, flood id arg2
            self._post(("flood", link.conn, arg1, arg2))
        elif kind == b"D":    # disconnect me
            self._post(("disconnect", link.conn))
        else:
            self.stats.fail(f"{self.name}: unknown command {value!r}")

    def _post(self, item: tuple) -> None:
        with self._qcond:
            self._q.append(item)
            self._qcond.notify_all()

    # The script: one thread per board, as a MicroPython program's main loop.
    def _run(self) -> None:
        while not self._stop:
            try:
                self._step()
            except Exception as exc:
                self.stats.fail(f"{self.name}: {exc!r}")
                time.sleep(PERIPHERAL_POLL_S)

    def _step(self) -> None:
        if self._link is None and not self._advertising:
            self._advertising = True
            self.ble.gap_advertise(ADV_INTERVAL_US, self.adv_data)
            self.stats.add("advertise_starts")
        if self._status_dirty:
            self._status_dirty = False
            link = self._link
            if link is not None:
                self.ble.gatts_write(self.status_h, _STATUS.pack(
                    link.session, link.writes_ok, link.writes_bad, link.sdus_ok, link.sdus_bad,
                    link.l2cap_bytes))
        runtime.script_waits()
        with self._qcond:
            self._qcond.wait_for(lambda: self._q or self._stop, PERIPHERAL_POLL_S)
            items, self._q = self._q, []
        for item in items:
            if item[0] == "flood":
                self._flood(*item[1:])
            elif item[0] == "disconnect":
                self.ble.gap_disconnect(item[1])
                self.stats.add("peer_disconnects")

    def _flood(self, conn: int, count: int, flood_id: int) -> None:
        body_len = ATT_MTU - 3 - _NOTIFY_HDR.size
        for seq in range(count):
            if seq % FLOOD_YIELD_EVERY == FLOOD_YIELD_EVERY - 1:
                # As a board script's loop would: let this board's handlers run, so a
                # disconnect asked for in the middle of the flood is seen in the middle.
                runtime.script_waits()
                time.sleep(FLOOD_YIELD_S)
                with self._qcond:
                    if ("disconnect", conn) in self._q:
                        self.stats.add("floods_cut")
                        return
            link = self._link
            if link is None or link.conn != conn:
                self.stats.add("floods_cut")
                return   # the central left (a churn cycle)
            body = _pattern(flood_id * 65536 + seq, body_len)
            try:
                self.ble.gatts_notify(conn, self.notify_h,
                                      _NOTIFY_HDR.pack(flood_id, seq, zlib.crc32(body)) + body)
            except OSError as exc:
                # The central left in the middle (a churn cycle): its disconnect event waits
                # behind this loop (handlers run when the script waits).
                if exc.errno != errno.ENOTCONN:
                    raise
                self.stats.add("floods_cut")
                return
            self.stats.add("notifications_sent")

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop = True
        with self._qcond:
            self._qcond.notify_all()
        self.thread.join(STEP_TIMEOUT_S)


# -- central -----------------------------------------------------------------------------------


class Pool:
    """The peripherals no central is using, handed to waiting centrals first come, first served
    (a central that gives one back and asks again queues behind the others)."""

    def __init__(self, peripherals: list[Peripheral]) -> None:
        self.cond = threading.Condition()
        self.free = list(peripherals)
        self.queue: collections.deque[object] = collections.deque()

    def take(self, turn: int, stopping: Callable[[], bool]) -> Optional[Peripheral]:
        """A free peripheral (the ``turn``-th of those free, so pairs vary); None once stopping."""
        me = object()
        runtime.script_waits()   # this thread waits: its board's handlers may run
        with self.cond:
            self.queue.append(me)
            try:
                while not stopping():
                    if self.queue[0] is me and self.free:
                        return self.free.pop(turn % len(self.free))
                    self.cond.wait(RESERVE_RETRY_S)
                return None
            finally:
                self.queue.remove(me)
                self.cond.notify_all()

    def give(self, peripheral: Peripheral) -> None:
        with self.cond:
            self.free.append(peripheral)
            self.cond.notify_all()



class Central:
    """Scans, connects, and runs the soak's transfers against one free peripheral per cycle."""

    def __init__(self, name: str, port: str, stats: Stats, pool: "Pool", index: int,
                 next_churn: Callable[[], str]) -> None:
        self.name, self.stats, self.pool, self.index = name, stats, pool, index
        self.next_churn = next_churn
        self.ble = BLE(port=port)
        self.ev = _Events()
        self.cycle = 0
        #: Cycles that went through every step.
        self.full_cycles = 0
        self._stop = False
        self._conn: Optional[int] = None
        # Scan: the advertising data expected from the target, and what was seen.
        self._scan_target: Optional[tuple[bytes, bytes]] = None
        self._scan_hits = self._scan_bad = self._scan_results = 0
        # Flood being received: id, next sequence, counts.
        self._flood_id = 0
        self._flood_next = 0
        self._flood_ok = self._flood_bad = 0
        # Discovery results of the current step.
        self._found: list[tuple] = []
        self.ble.active(True)
        self.ble.config(mtu=ATT_MTU)
        self.ble.irq(self._irq)
        self.thread = threading.Thread(target=self._run, name=f"soak {name}", daemon=True)

    def _irq(self, event: int, data: tuple) -> Any:
        try:
            if event == _IRQ_GATTC_NOTIFY:
                self._check_notify(bytes(data[2]))
            elif event == _IRQ_SCAN_RESULT:
                self._check_scan(data)
            elif event in (_IRQ_GATTC_SERVICE_RESULT, _IRQ_GATTC_CHARACTERISTIC_RESULT,
                           _IRQ_GATTC_DESCRIPTOR_RESULT):
                self._found.append(_copy(data))
            self.ev.record(event, _copy(data) if event != _IRQ_SCAN_RESULT else ())
        except Exception as exc:   # an escaping exception would switch the handler off
            self.stats.fail(f"{self.name}: handler for IRQ {event}: {exc!r}")
        return None

    def _check_scan(self, data: tuple) -> None:
        self._scan_results += 1
        target = self._scan_target
        if target is None or bytes(data[1]) != target[0]:
            return
        self._scan_hits += 1
        if bytes(data[4]) != target[1]:
            self._scan_bad += 1

    def _check_notify(self, value: bytes) -> None:
        with self.ev.cond:
            if len(value) != ATT_MTU - 3:
                self._flood_bad += 1
            else:
                flood_id, seq, crc = _NOTIFY_HDR.unpack_from(value)
                body = value[_NOTIFY_HDR.size:]
                if (flood_id == self._flood_id and seq == self._flood_next and zlib.crc32(body) == crc
                        and body == _pattern(flood_id * 65536 + seq, len(body))):
                    self._flood_ok += 1
                else:
                    self._flood_bad += 1
                self._flood_next = seq + 1
            if self._flood_bad:
                self.stats.fail(f"{self.name}: notification {self._flood_next - 1} of flood "
                                f"{self._flood_id} arrived wrong")
                self._flood_bad = 0
                self.stats.add("notifications_bad")

    # -- the script ---------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop:
            peripheral = self._reserve()
            if peripheral is None:
                return
            try:
                self._cycle(peripheral)
            except Exception as exc:
                self.stats.fail(f"{self.name} cycle {self.cycle} with {peripheral.name}: {exc!r}")
            finally:
                try:
                    self._disconnect()
                except Exception as exc:
                    self.stats.fail(f"{self.name}: cleaning up after cycle {self.cycle}: {exc!r}")
                    self._conn = None
                self.pool.give(peripheral)
            self.cycle += 1

    def _reserve(self) -> Optional[Peripheral]:
        return self.pool.take(self.cycle + self.index, lambda: self._stop)

    def _disconnect(self) -> None:
        conn = self._conn
        if conn is None:
            return
        before = self.ev.seen(_IRQ_PERIPHERAL_DISCONNECT)
        if self.ble.gap_disconnect(conn):
            self.ev.wait(_IRQ_PERIPHERAL_DISCONNECT, before, "disconnect")
        self._conn = None

    def _cycle(self, p: Peripheral) -> None:
        ble, ev, st = self.ble, self.ev, self.stats
        churn = self.next_churn() if self.cycle % CHURN_EVERY == CHURN_EVERY - 1 else None

        # Scan: the peripheral's advertising data must arrive as sent.
        addr_type, addr = p.addr
        self._scan_target = (bytes(addr), p.adv_data)
        self._scan_hits = self._scan_bad = self._scan_results = 0
        before = ev.seen(_IRQ_SCAN_DONE)
        ble.gap_scan(SCAN_MS, SCAN_INTERVAL_US, SCAN_WINDOW_US)
        ev.wait(_IRQ_SCAN_DONE, before, "scan")
        self._scan_target = None
        st.add("scans")
        st.add("scan_results", self._scan_results)
        st.add("scan_hits", self._scan_hits)
        if self._scan_bad:
            st.add("scan_bad", self._scan_bad)
            st.fail(f"{self.name}: {self._scan_bad} advertising reports of {p.name} arrived wrong")

        # Connect.
        before = ev.seen(_IRQ_PERIPHERAL_DISCONNECT), ev.seen(_IRQ_PERIPHERAL_CONNECT)
        ble.gap_connect(addr_type, addr, CONNECT_SCAN_MS)
        ev.wait_for(lambda: ev.count.get(_IRQ_PERIPHERAL_CONNECT, 0) > before[1]
                    or ev.count.get(_IRQ_PERIPHERAL_DISCONNECT, 0) > before[0], "connect")
        if ev.count.get(_IRQ_PERIPHERAL_CONNECT, 0) == before[1]:
            conn_none = ev.last[_IRQ_PERIPHERAL_DISCONNECT][0]
            if conn_none != CONN_HANDLE_NONE:
                raise SoakError(f"disconnect of connection {conn_none} while connecting")
            st.add("connect_timeouts")
            return
        self._conn = conn = ev.last[_IRQ_PERIPHERAL_CONNECT][0]
        st.add("connections")
        if churn == "quick":
            st.add("churn_quick")
            return   # _run disconnects at once
        if churn is not None:
            st.add(f"churn_{churn}")

        before = ev.seen(_IRQ_MTU_EXCHANGED)
        ble.gattc_exchange_mtu(conn)
        mtu = ev.wait(_IRQ_MTU_EXCHANGED, before, "MTU exchange")[1]
        if mtu != ATT_MTU:
            raise SoakError(f"ATT MTU {mtu}, asked for {ATT_MTU}")

        handles = self._discover(conn, p)
        notify_h, data_h, ctrl_h, status_h, cccd_h = handles
        self._write(conn, cccd_h, b"\x01\x00")   # subscribe
        session = random.getrandbits(32)
        self._write(conn, ctrl_h, b"S" + struct.pack("<II", session, 0))

        # Notification flood, checked as it arrives.
        flood_count = CHURN_FLOOD_COUNT if churn in ("peer", "mid_flood") else FLOOD_COUNT
        with ev.cond:
            self._flood_id = (self._flood_id + 1) & 0xFFFF
            self._flood_next = self._flood_ok = 0
        self._write(conn, ctrl_h, b"N" + struct.pack("<II", flood_count, self._flood_id))
        if churn == "peer":
            before = ev.seen(_IRQ_PERIPHERAL_DISCONNECT)
            self._write(conn, ctrl_h, b"D" + struct.pack("<II", 0, 0))
            ev.wait(_IRQ_PERIPHERAL_DISCONNECT, before, "disconnect by the peripheral")
            self._conn = None
            st.add("notifications_received", self._flood_ok)
            return
        if churn == "mid_flood":
            ev.wait_for(lambda: self._flood_ok >= FLOOD_COUNT // 4 or self._flood_bad > 0,
                        "first quarter of a flood")
            st.add("notifications_received", self._flood_ok)
            return   # _run disconnects in the middle of the flood
        try:
            ev.wait_for(lambda: self._flood_next >= flood_count, "notification flood")
        finally:
            st.add("notifications_received", self._flood_ok)
        if self._flood_ok != flood_count:
            st.add("notifications_lost", flood_count - self._flood_ok)
            raise SoakError(f"{flood_count - self._flood_ok} of {flood_count} notifications lost")
        st.add("floods")

        # Writes without response, counted by the peripheral.
        body_len = ATT_MTU - 3 - _WRITE_HDR.size
        for seq in range(WRITE_COUNT):
            body = _pattern(seq, body_len)
            value = _WRITE_HDR.pack(seq, zlib.crc32(body)) + body
            while True:
                try:
                    ble.gattc_write(conn, data_h, value, 0)
                    break
                except OSError:
                    st.add("write_retries")   # out of buffers: retry, as perf_gatt_char_write does
                    runtime.script_waits()
                    time.sleep(WRITE_RETRY_S)
            st.add("writes_sent")
        status = self._status(conn, status_h, session,
                              lambda s: s[1] + s[2] >= WRITE_COUNT, "writes counted")
        st.add("writes_ok", status[1])
        if status[1] != WRITE_COUNT:
            raise SoakError(f"peripheral counted {status[1]} good writes of {WRITE_COUNT}")

        # L2CAP: SDUs of varying length, counted by the peripheral.
        before = ev.seen(_IRQ_L2CAP_CONNECT)
        ble.l2cap_connect(conn, L2CAP_PSM, L2CAP_MTU)
        _, cid, _, _, peer_mtu = ev.wait(_IRQ_L2CAP_CONNECT, before, "L2CAP connect")
        rng = random.Random(self.cycle)
        for seq in range(SDU_COUNT):
            length = rng.randint(1, peer_mtu - _SDU_HDR.size)
            body = _pattern(~seq, length)
            ready = ev.seen(_IRQ_L2CAP_SEND_READY)
            if not ble.l2cap_send(conn, cid, _SDU_HDR.pack(seq, length, zlib.crc32(body)) + body):
                st.add("l2cap_stalls")
                ev.wait(_IRQ_L2CAP_SEND_READY, ready, "L2CAP send ready")
            st.add("sdus_sent")
            st.add("l2cap_bytes_sent", _SDU_HDR.size + length)
        status = self._status(conn, status_h, session,
                              lambda s: s[3] + s[4] >= SDU_COUNT, "SDUs counted")
        st.add("sdus_ok", status[3])
        if status[3] != SDU_COUNT:
            raise SoakError(f"peripheral counted {status[3]} good SDUs of {SDU_COUNT}")
        before = ev.seen(_IRQ_L2CAP_DISCONNECT)
        ble.l2cap_disconnect(conn, cid)
        ev.wait(_IRQ_L2CAP_DISCONNECT, before, "L2CAP disconnect")
        st.add("full_cycles")
        self.full_cycles += 1

    def _discover(self, conn: int, p: Peripheral) -> tuple[int, int, int, int, int]:
        ble, ev = self.ble, self.ev
        self._found = []
        before = ev.seen(_IRQ_GATTC_SERVICE_DONE)
        ble.gattc_discover_services(conn, SVC)
        ev.wait(_IRQ_GATTC_SERVICE_DONE, before, "service discovery")
        services = [f for f in self._found if f[3] == SVC]
        if len(services) != 1:
            raise SoakError(f"service discovery found {len(services)} soak services")
        _, start, end, _ = services[0]
        self._found = []
        before = ev.seen(_IRQ_GATTC_CHARACTERISTIC_DONE)
        ble.gattc_discover_characteristics(conn, start, end)
        ev.wait(_IRQ_GATTC_CHARACTERISTIC_DONE, before, "characteristic discovery")
        by_uuid = {f[4]: f[2] for f in self._found}
        handles = tuple(by_uuid.get(u) for u in (NOTIFY_CHR, DATA_CHR, CTRL_CHR, STATUS_CHR))
        if handles != (p.notify_h, p.data_h, p.ctrl_h, p.status_h):
            raise SoakError(f"characteristic discovery found handles {handles}, the peripheral "
                            f"has {(p.notify_h, p.data_h, p.ctrl_h, p.status_h)}")
        self._found = []
        before = ev.seen(_IRQ_GATTC_DESCRIPTOR_DONE)
        ble.gattc_discover_descriptors(conn, p.notify_h, p.data_h - 2)
        ev.wait(_IRQ_GATTC_DESCRIPTOR_DONE, before, "descriptor discovery")
        cccds = [f[1] for f in self._found if f[2] == CCCD]
        if len(cccds) != 1:
            raise SoakError(f"descriptor discovery found {len(cccds)} CCCDs on the notify characteristic")
        self.stats.add("discoveries")
        return p.notify_h, p.data_h, p.ctrl_h, p.status_h, cccds[0]

    def _write(self, conn: int, handle: int, value: bytes) -> None:
        before = self.ev.seen(_IRQ_GATTC_WRITE_DONE)
        self.ble.gattc_write(conn, handle, value, 1)
        _, _, status = self.ev.wait(_IRQ_GATTC_WRITE_DONE, before, f"write to {handle}")
        if status != 0:
            raise SoakError(f"write to handle {handle} answered ATT status {status}")
        self.stats.add("writes_with_response")

    def _status(self, conn: int, handle: int, session: int, done: Callable[[tuple], bool],
                what: str) -> tuple:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while True:
            before = self.ev.seen(_IRQ_GATTC_READ_DONE), self.ev.seen(_IRQ_GATTC_READ_RESULT)
            self.ble.gattc_read(conn, handle)
            _, _, status = self.ev.wait(_IRQ_GATTC_READ_DONE, before[0], "status read")
            self.stats.add("reads")
            if status != 0 or self.ev.seen(_IRQ_GATTC_READ_RESULT) == before[1]:
                raise SoakError(f"status read answered ATT status {status}")
            value = self.ev.last[_IRQ_GATTC_READ_RESULT][2]
            if len(value) == _STATUS.size:
                fields = _STATUS.unpack(value)
                if fields[0] == session and done(fields):
                    return fields
            if time.monotonic() > deadline:
                raise SoakError(f"{what}: the peripheral's status is {value.hex()} after "
                                f"{STEP_TIMEOUT_S:.0f} s")
            runtime.script_waits()
            time.sleep(STATUS_POLL_S)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop = True
        self.thread.join(STEP_TIMEOUT_S * 4)


# -- resources ---------------------------------------------------------------------------------


def _proc_status_kb(pid: Any, key: str) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _air_pid(socket_path: str) -> Optional[int]:
    """The pid of the air process serving ``socket_path`` (None: not a process of its own)."""
    needle = os.path.abspath(socket_path).encode()
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"blebridge.sim.air" in args and needle in args:
            return int(pid)
    return None


@dataclasses.dataclass
class Resources:
    """This process's RSS (kB), threads (Python and kernel tasks) and descriptors; others' RSS."""

    rss_kb: int
    threads: int
    tasks: int
    fds: int
    others_rss_kb: dict[str, Optional[int]]

    @classmethod
    def measure(cls, others: dict[str, Optional[int]]) -> "Resources":
        return cls(rss_kb=_proc_status_kb("self", "VmRSS") or 0,
                   threads=threading.active_count(),
                   tasks=len(os.listdir("/proc/self/task")),
                   fds=len(os.listdir("/proc/self/fd")),
                   others_rss_kb={name: (_proc_status_kb(pid, "VmRSS") if pid else None)
                                  for name, pid in others.items()})


# -- the run -----------------------------------------------------------------------------------


class Soak:
    def __init__(self, boards: int, air: Optional[str]) -> None:
        from .sim import launcher

        self.stats = Stats()
        # Churn cycles take the kinds in turn over all centrals, so a short run sees each.
        self._churn = itertools.cycle(CHURN_KINDS)
        self._churn_lock = threading.Lock()
        self.air = os.path.abspath(air or launcher.default_air_socket())
        suffix = f"?air={air}" if air else ""
        n_p = boards // 2
        self.peripherals: list[Peripheral] = []
        self.centrals: list[Central] = []
        try:
            for i in range(n_p):
                self.peripherals.append(Peripheral(f"soak-p{i}", f"sim:soak-p{i}{suffix}", self.stats))
            pool = Pool(self.peripherals)
            for i in range(boards - n_p):
                self.centrals.append(Central(f"soak-c{i}", f"sim:soak-c{i}{suffix}", self.stats,
                                             pool, i, self._next_churn))
        except BaseException:
            self.close()
            raise
        self.bles = [(x.name, x.ble) for x in (*self.peripherals, *self.centrals)]
        self.pids: dict[str, Optional[int]] = {}
        for name, ble in self.bles:
            sim_board = getattr(ble.board.transport, "sim_board", None)
            self.pids[name] = getattr(sim_board, "pid", None)
        self.pids["air"] = _air_pid(self.air)
        self.delivered_at_open = {name: ble.session.delivered for name, ble in self.bles}

    def start(self) -> None:
        for x in (*self.peripherals, *self.centrals):
            x.start()

    def _next_churn(self) -> str:
        with self._churn_lock:
            return next(self._churn)

    def cycles_done(self) -> dict[str, int]:
        """Full cycles per central and churn cycles per kind, so far."""
        s = self.stats.snapshot()
        out = {c.name: c.full_cycles for c in self.centrals}
        out.update({f"churn_{k}": s.get(f"churn_{k}", 0) for k in CHURN_KINDS})
        return out

    def wait_cycles(self, after: dict[str, int], log: Callable[[str], None]) -> None:
        """Until every central has completed a full cycle, and a churn cycle of every kind has
        run, since ``after`` (a cycles_done()); at most FULL_CYCLE_WAIT_S: a soak whose cycles
        all fail reports that instead of hanging."""
        t0 = time.monotonic()
        next_log = t0 + PROGRESS_S
        while time.monotonic() < t0 + FULL_CYCLE_WAIT_S:
            now = self.cycles_done()
            missing = [k for k, n in after.items() if now[k] <= n]
            if not missing:
                return
            if time.monotonic() >= next_log:
                next_log += PROGRESS_S
                log(f"waiting for a cycle of: {', '.join(missing)} "
                    f"({self.stats.snapshot().get('failures', 0)} failures so far)")
            time.sleep(0.05)

    def stop(self) -> None:
        for c in self.centrals:
            c.stop()
        for p in self.peripherals:
            p.stop()

    def close(self) -> None:
        for x in (*self.centrals, *self.peripherals):
            try:
                x.ble.close()
            except Exception:
                pass

    def counters(self) -> dict[str, dict[str, int]]:
        """Every board's diagnostics (board and host counters) and the layer's deliveries."""
        out = {}
        for name, ble in self.bles:
            d = ble.board.diagnostics()
            d["delivered"] = ble.session.delivered
            out[name] = d
        return out

    def host_backlog(self) -> dict[str, int]:
        """Per board: events received from the wire and not (yet) handed to the bluetooth layer."""
        return {name: ble.session.events_due() for name, ble in self.bles}


def _sum(counters: dict[str, dict[str, int]], key: str) -> int:
    return sum(int(c.get(key, 0) or 0) for c in counters.values())


def _mb(kb: Optional[int]) -> str:
    return "-" if kb is None else f"{kb / 1024:.1f} MB"


def run(minutes: float, boards: int, warmup_s: float, air: Optional[str], rss_limit_pct: float,
        log: Callable[[str], None], trace_memory: int = 0) -> dict[str, Any]:
    """Run the soak; returns the report (``ok`` and ``reasons`` say whether it passed).

    ``trace_memory``: the report also lists that many source lines whose Python allocations
    grew most between start and end (tracemalloc; slows everything down).
    """
    if trace_memory:
        tracemalloc.start(TRACE_FRAMES)
    t_open = time.monotonic()
    soak = Soak(boards, air)
    try:
        log(f"soak: {boards} boards ({len(soak.peripherals)} peripherals, {len(soak.centrals)} "
            f"centrals) on air {soak.air}; {warmup_s:.0f} s warm-up, then {minutes:g} min "
            f"(opened in {time.monotonic() - t_open:.1f} s)")
        c_open = soak.counters()
        soak.start()
        _sleep(warmup_s)
        # Warm-up ends once every central has been through every step: on a loaded machine
        # that takes longer than warmup_s, and the start figures must see every code path.
        soak.wait_cycles({k: 0 for k in soak.cycles_done()}, log)
        c_start = soak.counters()
        s_start = soak.stats.snapshot()
        r_start = Resources.measure(soak.pids)
        m_start = tracemalloc.take_snapshot() if trace_memory else None
        t_start = time.monotonic()
        at_start = soak.cycles_done()
        log(f"start: rss {_mb(r_start.rss_kb)}, threads {r_start.threads} (tasks {r_start.tasks}), "
            f"fds {r_start.fds}")
        end_at = t_start + minutes * 60
        next_progress = t_start + PROGRESS_S
        while time.monotonic() < end_at:
            _sleep(min(end_at, next_progress) - time.monotonic())
            if time.monotonic() >= next_progress and time.monotonic() < end_at:
                next_progress += PROGRESS_S
                s, r = soak.stats.snapshot(), Resources.measure(soak.pids)
                log(f"[{time.monotonic() - t_start:5.0f} s] cycles {s.get('connections', 0)} "
                    f"full {s.get('full_cycles', 0)}, notifications {s.get('notifications_received', 0)}, "
                    f"SDUs {s.get('sdus_ok', 0)}, failures {s.get('failures', 0)}; rss "
                    f"{_mb(r.rss_kb)}, threads {r.threads} (tasks {r.tasks}), fds {r.fds}")
        # The measured window holds at least one full cycle of every central, however slow.
        soak.wait_cycles(at_start, log)
        # End figures while the workload still runs, as the start ones were taken.
        r_end = Resources.measure(soak.pids)
        growth: list[str] = []
        if m_start is not None:
            diff = tracemalloc.take_snapshot().compare_to(m_start, "traceback")
            for stat in diff[:trace_memory]:
                growth.append(f"{stat.size_diff / 1024:+.1f} KiB in {stat.count_diff:+d} blocks: "
                              + " <- ".join(f"{f.filename.rsplit('/', 2)[-1]}:{f.lineno}"
                                            for f in reversed(stat.traceback[-TRACE_FRAMES:])))
        t_end = time.monotonic()
        at_end = soak.cycles_done()
        window_cycles = {k: at_end[k] - n for k, n in at_start.items()}
        soak.stop()
        s_end = soak.stats.snapshot()
        # Quiet now: everything the boards sent has reached the host; let it be delivered.
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while any(soak.host_backlog().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        c_end = soak.counters()
        backlog = soak.host_backlog()
        stuck = [x.name for x in (*soak.peripherals, *soak.centrals) if x.thread.is_alive()]
    finally:
        soak.close()
    rep = _report(minutes, boards, warmup_s, t_end - t_start, soak, c_open, c_start, c_end,
                  s_start, s_end, r_start, r_end, backlog, stuck, window_cycles, rss_limit_pct)
    if trace_memory:
        rep["memory_growth"] = growth
    return rep


def _sleep(seconds: float) -> None:
    if seconds > 0:
        time.sleep(seconds)


def _report(minutes: float, boards: int, warmup_s: float, seconds: float, soak: Soak,
            c_open: dict, c_start: dict, c_end: dict, s_start: dict, s_end: dict, r_start: Resources,
            r_end: Resources, backlog: dict[str, int], stuck: list[str],
            window_cycles: dict[str, int], rss_limit_pct: float) -> dict[str, Any]:
    reasons: list[str] = []
    work = {k: s_end.get(k, 0) - s_start.get(k, 0) for k in sorted(set(s_end) | set(s_start))}
    if s_end.get("failures"):
        reasons.append(f"{s_end['failures']} failed steps or corrupted data (whole run)")
    idle = [name for name, n in window_cycles.items() if not n]
    if idle:
        reasons.append(f"not one cycle in the measured window: {', '.join(idle)}")
    counters: dict[str, dict[str, int]] = {}
    for key in ("frames_tx", "host_frames_tx", "host_events", "delivered", "events_tx",
                *LOSS_COUNTERS, *INFO_COUNTERS):
        if key in counters:
            continue
        start, end = _sum(c_start, key), _sum(c_end, key)
        counters[key] = {"start": start, "end": end, "delta": end - start}
    # Loss counters are checked over the whole run (warm-up included), from just after the
    # boards were opened (and reset: the host counts that reset).
    whole_run = {}
    for key in LOSS_COUNTERS:
        per_board = {n: int(c.get(key, 0) or 0) - int(c_open[n].get(key, 0) or 0)
                     for n, c in c_end.items()}
        whole_run[key] = sum(per_board.values())
        if whole_run[key]:
            reasons.append(f"{key} grew by {whole_run[key]} "
                           f"({ {n: v for n, v in per_board.items() if v} })")
    lost = sum(backlog.values())
    if lost:
        reasons.append(f"{lost} events received by the host never reached the bluetooth layer "
                       f"({backlog})")
    if stuck:
        reasons.append(f"script threads did not stop: {', '.join(stuck)}")
    growth = (r_end.rss_kb - r_start.rss_kb) / r_start.rss_kb * 100 if r_start.rss_kb else 0.0
    if growth > rss_limit_pct:
        reasons.append(f"host RSS grew {growth:.1f} % (limit {rss_limit_pct:g} %)")
    if r_end.threads > r_start.threads or r_end.tasks > r_start.tasks:
        reasons.append(f"threads grew: {r_start.threads} -> {r_end.threads} "
                       f"(tasks {r_start.tasks} -> {r_end.tasks})")
    if r_end.fds > r_start.fds:
        reasons.append(f"open file descriptors grew: {r_start.fds} -> {r_end.fds}")
    others = {}
    for name, start_kb in r_start.others_rss_kb.items():
        end_kb = r_end.others_rss_kb.get(name)
        g = (end_kb - start_kb) / start_kb * 100 if start_kb and end_kb else None
        others[name] = {"start_kb": start_kb, "end_kb": end_kb,
                        "growth_pct": None if g is None else round(g, 2)}
        if g is not None and g > rss_limit_pct:
            reasons.append(f"{name} process RSS grew {g:.1f} % (limit {rss_limit_pct:g} %)")
    return {
        "ok": not reasons, "reasons": reasons,
        "minutes": minutes, "boards": boards, "warmup_s": warmup_s, "seconds": round(seconds, 1),
        "air": soak.air, "work": work, "work_whole_run": s_end,
        "cycles_in_window": window_cycles, "failures": soak.stats.failures,
        "counters": counters, "loss_counters_whole_run": whole_run, "events_lost_host": lost,
        "per_board_end": c_end,
        "resources": {
            "rss_kb": [r_start.rss_kb, r_end.rss_kb], "rss_growth_pct": round(growth, 2),
            "threads": [r_start.threads, r_end.threads], "tasks": [r_start.tasks, r_end.tasks],
            "fds": [r_start.fds, r_end.fds], "processes": others,
        },
    }


def format_report(rep: dict[str, Any]) -> str:
    w = rep["work"]
    secs = rep["seconds"] or 1.0
    lines = [f"soak: {rep['boards']} boards, {rep['seconds']:.0f} s measured after "
             f"{rep['warmup_s']:.0f} s warm-up (figures below: the measured window)"]

    def rate(key: str) -> str:
        return f"{w.get(key, 0):>10}  ({w.get(key, 0) / secs:8.1f} /s)"

    lines += [
        "work",
        f"  connections            {rate('connections')}",
        f"  full cycles            {rate('full_cycles')}",
        f"  churn (quick/peer/mid) {w.get('churn_quick', 0)}/{w.get('churn_peer', 0)}/"
        f"{w.get('churn_mid_flood', 0)}",
        f"  scans                  {rate('scans')}   reports {w.get('scan_results', 0)}, "
        f"of the target {w.get('scan_hits', 0)}",
        f"  notifications received {rate('notifications_received')}   sent "
        f"{w.get('notifications_sent', 0)}",
        f"  writes w/o response    {rate('writes_ok')}   sent {w.get('writes_sent', 0)}, "
        f"retries {w.get('write_retries', 0)}",
        f"  L2CAP SDUs             {rate('sdus_ok')}   sent {w.get('sdus_sent', 0)}, "
        f"{w.get('l2cap_bytes_sent', 0)} B, stalls {w.get('l2cap_stalls', 0)}",
        f"  reads / writes w/ rsp  {w.get('reads', 0)} / {w.get('writes_with_response', 0)}",
        f"  floods cut by churn    {w.get('floods_cut', 0)}   (port_errors "
        f"{rep['counters']['port_errors']['delta']}: calls refused by the port)",
        f"  connect timeouts       {w.get('connect_timeouts', 0)}",
        "integrity (whole run)",
        f"  failed steps / corrupt {rep['work_whole_run'].get('failures', 0)}   notifications bad "
        f"{rep['work_whole_run'].get('notifications_bad', 0)}, lost "
        f"{rep['work_whole_run'].get('notifications_lost', 0)}; scan reports bad "
        f"{rep['work_whole_run'].get('scan_bad', 0)}",
    ]
    c = rep["counters"]
    lines.append("counters, all boards          start          end        delta")

    def row(label: str, key: str) -> str:
        v = c[key]
        return f"  {label:24}{v['start']:>11}  {v['end']:>11}  {v['delta']:>11}"

    lines += [row("calls made (host frames_tx)", "host_frames_tx"),
              row("events sent by boards", "events_tx"),
              row("events received by host", "host_events"),
              row("events delivered (layer)", "delivered"),
              row("events stalled", "events_stalled")]
    lines.append(f"  events lost on the host: {rep['events_lost_host']} (received, never delivered)")
    lines.append("lost / dropped / error counters, whole run (must be 0)")
    lines.append("  " + ", ".join(f"{k} {v}" for k, v in rep["loss_counters_whole_run"].items()))
    r = rep["resources"]
    lines += [
        "resources                     start          end",
        f"  host RSS             {_mb(r['rss_kb'][0]):>13} {_mb(r['rss_kb'][1]):>12}   "
        f"{r['rss_growth_pct']:+.1f} %",
        f"  host threads         {r['threads'][0]:>13} {r['threads'][1]:>12}   "
        f"(kernel tasks {r['tasks'][0]} -> {r['tasks'][1]})",
        f"  host open fds        {r['fds'][0]:>13} {r['fds'][1]:>12}",
    ]
    for name, p in r["processes"].items():
        g = "" if p["growth_pct"] is None else f"   {p['growth_pct']:+.1f} %"
        lines.append(f"  {name + ' RSS':20} {_mb(p['start_kb']):>13} {_mb(p['end_kb']):>12}{g}")
    if rep.get("memory_growth"):
        lines.append("Python allocations that grew most (tracemalloc, innermost frame last)")
        lines += [f"  {g}" for g in rep["memory_growth"]]
    if rep["failures"]:
        lines.append("failures (first ones)")
        lines += [f"  {f}" for f in rep["failures"]]
    lines.append("PASS" if rep["ok"] else "FAIL: " + "; ".join(rep["reasons"]))
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blebridge.soak",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="measured time after the warm-up (default 10)")
    parser.add_argument("--boards", type=int, default=4,
                        help="simulated boards, half peripherals, half centrals (default 4)")
    parser.add_argument("--warmup", type=float, default=DEFAULT_WARMUP_S,
                        help=f"seconds of workload before the start figures (default {DEFAULT_WARMUP_S:g})")
    parser.add_argument("--air", help="air socket (default: env BLEBRIDGE_AIR, else the user's air)")
    parser.add_argument("--rss-limit", type=float, default=DEFAULT_RSS_LIMIT_PCT,
                        help=f"RSS growth allowed, percent (default {DEFAULT_RSS_LIMIT_PCT:g})")
    parser.add_argument("--trace-memory", type=int, default=0, metavar="N",
                        help="list the N source lines whose allocations grew most (slow)")
    parser.add_argument("--json", action="store_true",
                        help="print the report as one JSON object (progress goes to stderr)")
    ns = parser.parse_args(argv)
    if ns.boards < 2:
        parser.error("--boards must be at least 2 (a peripheral and a central)")
    if ns.minutes <= 0 or ns.warmup < 0:
        parser.error("--minutes must be positive and --warmup not negative")

    def log(text: str) -> None:
        print(text, file=sys.stderr if ns.json else sys.stdout, flush=True)

    try:
        rep = run(ns.minutes, ns.boards, ns.warmup, ns.air, ns.rss_limit, log, ns.trace_memory)
    except (OSError, RuntimeError) as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 1
    if ns.json:
        print(json.dumps(rep, indent=2))
    else:
        print(format_report(rep))
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
