"""A fake board: a small Python "firmware" speaking the blebridge protocol on a pseudo-terminal.

The host opens ``FakeBoard.path`` exactly as it opens a USB port or a sim board. The fake
answers the core methods (handshake, echo, diagnostics, bench_events, reset) like the firmware
and lets a test inject faults: any method's answer (or none), responses in another order, raw
bytes, events, a reboot (BOOT with a new boot id), an unplug (the pty master closes).
"""
from __future__ import annotations

import os
import select
import threading
import tty
from typing import Any, Callable, Optional

import cbor2

from blebridge import protocol as P
from blebridge.framing import FrameDecoder, encode_frame

#: Result of a handler: (status, result), or None to send no response at all.
Handler = Callable[[list], Optional[tuple[int, Any]]]

_MAX_FRAME = P.LIMITS["MAX_FRAME"]


class FakeBoard:
    def __init__(self, *, proto: tuple[int, int] = (P.PROTO_MAJOR, P.PROTO_MINOR), boot_id: int = 1,
                 board: str = "fake", send_boot: bool = False) -> None:
        self.proto = proto
        self.boot_id = boot_id
        self.board = board
        self.master, self._slave = os.openpty()
        # Raw mode before the host opens the slave: no echo, no CR/LF translation of frames.
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.handlers: dict[str, Handler] = {}
        self.requests: list[tuple[int, str, list]] = []   # (id, method name, args) in arrival order
        self.event_seq = 0            # number of the next event frame (protocol 2.0)
        self.hold = False             # collect responses instead of sending them
        self.held: list[bytes] = []
        self.decoder = FrameDecoder()
        self._wlock = threading.Lock()
        self._stop_r, self._stop_w = os.pipe()
        self._closed = False
        self.request_seen = threading.Condition()
        self._thread = threading.Thread(target=self._serve, daemon=True, name="fakeboard")
        self._thread.start()
        if send_boot:
            self.send_event(P.EV_BOOT, boot_id, *proto)

    # -- fault injection -------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        with self._wlock:
            os.write(self.master, data)

    def send_message(self, msg: list) -> None:
        self.send_raw(encode_frame(cbor2.dumps(msg)))

    def _next_seq(self) -> int:
        seq = self.event_seq
        self.event_seq = (seq + 1) % P.LIMITS["EVENT_SEQ_MOD"]
        return seq

    def send_event(self, code: int, *fields: Any) -> None:
        self.send_message([P.MSG_EVT, self._next_seq(), code, *fields])

    def send_batch(self, events: list[list]) -> None:
        self.send_message([P.MSG_EVT_BATCH, self._next_seq(), *events])

    def lose_event_frames(self, n: int) -> None:
        """As if the link lost the next ``n`` event frames: their numbers are skipped."""
        self.event_seq = (self.event_seq + n) % P.LIMITS["EVENT_SEQ_MOD"]

    def reboot(self, boot_id: int) -> None:
        """Restart as the firmware does: new boot id, event frames counted from 0, BOOT."""
        self.boot_id = boot_id
        self.event_seq = 0
        self.send_event(P.EV_BOOT, boot_id, *self.proto)

    def release_held(self, reverse: bool = True) -> None:
        """Send the held responses (last first by default) and stop holding."""
        frames, self.held = self.held, []
        self.hold = False
        for f in reversed(frames) if reverse else frames:
            self.send_raw(f)

    def unplug(self) -> None:
        """Close the pty master: the host's next read fails as on a USB unplug."""
        self._closed = True
        os.write(self._stop_w, b"x")
        self._thread.join(2)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    close = unplug

    def wait_requests(self, n: int, timeout: float = 5.0) -> bool:
        with self.request_seen:
            return self.request_seen.wait_for(lambda: len(self.requests) >= n, timeout)

    # -- firmware ------------------------------------------------------------------------

    def _respond(self, rid: Any, status: int, result: Any) -> None:
        frame = encode_frame(cbor2.dumps([P.MSG_RSP, rid, status, result]))
        if self.hold:
            self.held.append(frame)
        else:
            self.send_raw(frame)

    def _serve(self) -> None:
        while not self._closed:
            ready, _, _ = select.select([self.master, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            try:
                data = os.read(self.master, 65536)
            except OSError:           # EIO: the host closed the slave and nobody holds it
                continue
            for payload in self.decoder.feed(data):
                self._handle(payload)

    def _handle(self, payload: bytes) -> None:
        try:
            msg = cbor2.loads(payload)
            kind, rid, mid, *args = msg
            assert kind == P.MSG_REQ
        except Exception:
            self._respond(None, P.STATUS["MALFORMED"], None)
            return
        m = P.METHODS_BY_ID.get(mid)
        name = m.name if m else f"method_{mid}"
        with self.request_seen:
            self.requests.append((rid, name, args))
            self.request_seen.notify_all()
        if name in self.handlers:
            answer = self.handlers[name](args)
            if answer is not None:
                self._respond(rid, *answer)
            return
        if m is None:
            self._respond(rid, P.STATUS["UNKNOWN_METHOD"], None)
        elif name == "handshake":
            self._respond(rid, 0, self.handshake_result())
        elif name == "echo":
            self._respond(rid, 0, args[0])
        elif name == "diagnostics":
            d = self.decoder
            self._respond(rid, 0, {"frames_rx": d.frames, "crc_errors": d.crc_errors,
                                   "garbage_bytes": d.garbage_bytes, "uptime_ms": 1234})
        elif name == "reset":
            self._respond(rid, 0, None)
        elif name == "bench_events":
            self._respond(rid, 0, None)
            self._bench(*args)
        else:
            self._respond(rid, P.STATUS["EOPNOTSUPP"], None)

    def handshake_result(self) -> dict:
        return {
            "proto": list(self.proto), "fw_version": "0.0-fake", "fw_build": "test", "board": self.board,
            "caps": {"roles": ["central", "peripheral"], "l2cap": True, "pairing": True, "ext_adv": False,
                     "max_connections": 4, "max_mtu": 247, "max_l2cap_mtu": 1024, "max_attrs": 64},
            "addr_type": 1, "addr": bytes([1, 2, 3, 4, 5, 0xC6]), "boot_id": self.boot_id, "port": "fake",
            "event_seq": self.event_seq,
        }

    def _bench(self, count: int, payload_len: int) -> None:
        """Pack BENCH events into EVT_BATCH frames up to MAX_FRAME, as the firmware drains."""
        payload = bytes((i * 7 + 1) & 0xFF for i in range(payload_len))
        batch: list[list] = []
        size = 3                      # array header of up to 65535 elements
        for seq in range(count):
            ev = [P.EV_BENCH, seq, payload]
            n = len(cbor2.dumps(ev))
            if batch and size + n > _MAX_FRAME:
                self.send_batch(batch)
                batch, size = [], 3
            batch.append(ev)
            size += n
        if batch:
            self.send_batch(batch)
