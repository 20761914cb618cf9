"""Raw access to a simulated board for the end-to-end tests: frames written straight to its
pseudo-terminal (no client-side checks), and its counters as `blebridge info` shows them."""
from __future__ import annotations

import itertools
import os
import re
import select
import subprocess
import sys
import time
import tty
from pathlib import Path
from typing import Any, Optional


REPO = Path(__file__).resolve().parents[2]
HOST = REPO / "host"
if str(HOST) not in sys.path:
    sys.path.insert(0, str(HOST))

import cbor2  # noqa: E402

from blebridge import protocol as P  # noqa: E402
from blebridge.framing import FrameDecoder, cobs_encode, crc16  # noqa: E402

#: Seconds a raw request may take before the test fails (the board answers in milliseconds).
ANSWER_TIMEOUT_S = 5.0
#: Seconds one `blebridge info` run may take (interpreter start, handshake, diagnostics).
CLI_TIMEOUT_S = 60.0


def frame_of(payload: bytes) -> bytes:
    """Wire frame of ``payload`` with no size check (framing.encode_frame refuses > MAX_FRAME)."""
    crc = crc16(payload)
    return cobs_encode(payload + bytes((crc & 0xFF, crc >> 8))) + b"\x00"


class RawLink:
    """The host end of a board's byte stream with no client-side checks.

    Responses and events are collected as they arrive; `request` waits for the response with a
    given id (None for the `[1, null, MALFORMED, null]` answer to an unparseable request).
    """

    def __init__(self, pty: str) -> None:
        self.fd = os.open(pty, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        self.decoder = FrameDecoder()
        self.responses: list[list] = []
        self.events: list[tuple[int, tuple]] = []
        self._ids = itertools.count(100)
        # A leading delimiter ends any half frame a previous opener left in the board's decoder.
        self.write(b"\x00")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.fd, view)
            except BlockingIOError:
                select.select([], [self.fd], [], 0.05)
                self.pump(0)
                continue
            view = view[n:]

    def pump(self, timeout: float) -> None:
        """Read what the board sent within ``timeout`` s and sort it into responses and events."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not data:
            raise EOFError("the board closed its pseudo-terminal")
        for payload in self.decoder.feed(data):
            msg = cbor2.loads(payload)
            if msg[0] == P.MSG_RSP:
                self.responses.append(msg)
            elif msg[0] == P.MSG_EVT:              # [2, seq, code, fields...]
                self.events.append((msg[2], tuple(msg[3:])))
            elif msg[0] == P.MSG_EVT_BATCH:        # [3, seq, [code, fields...], ...]
                self.events.extend((e[0], tuple(e[1:])) for e in msg[2:])

    def wait_response(self, rid: Optional[int], timeout: float = ANSWER_TIMEOUT_S) -> list:
        deadline = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.responses):
                if msg[1] == rid:
                    return self.responses.pop(i)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no response with id {rid!r} within {timeout} s; "
                                     f"got {self.responses!r}")
            self.pump(min(remaining, 0.05))

    def wait_event(self, code: int, timeout: float = ANSWER_TIMEOUT_S) -> tuple:
        deadline = time.monotonic() + timeout
        while True:
            for i, (c, fields) in enumerate(self.events):
                if c == code:
                    del self.events[i]
                    return fields
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no event {code} within {timeout} s")
            self.pump(min(remaining, 0.05))

    def request(self, payload: bytes, rid: Optional[int]) -> list:
        """Send ``payload`` as one frame; the response `[1, id, status, result]` for ``rid``."""
        self.write(frame_of(payload))
        return self.wait_response(rid)

    def call_id(self, method_id: int, *args: Any) -> tuple[int, Any]:
        """Request by method number with any arguments: (status, result)."""
        rid = next(self._ids)
        rsp = self.request(cbor2.dumps([P.MSG_REQ, rid, method_id, *args]), rid)
        return rsp[2], rsp[3]

    def call(self, method: str, *args: Any) -> tuple[int, Any]:
        return self.call_id(P.METHODS[method].id, *args)

    def ok(self, method: str, *args: Any) -> Any:
        """Result of a call that must succeed."""
        status, result = self.call(method, *args)
        assert status == 0, f"{method}: status {P.STATUS_NAMES.get(status, status)}"
        return result

    def diagnostics(self) -> dict[str, int]:
        return self.ok("diagnostics")

    def assert_answers_echo(self) -> None:
        data = bytes(range(1, 40)) + b"\x00still here"
        assert self.ok("echo", data) == data


def cli_board_counters(spec: str) -> dict[str, int]:
    """The "board counters" section of `python -m blebridge info --port SPEC`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HOST) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("BLEBRIDGE_PORT", None)
    r = subprocess.run([sys.executable, "-m", "blebridge", "info", "--port", spec], env=env,
                       capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert r.returncode == 0, r.stderr
    section = r.stdout.split("board counters\n", 1)[1].split("host counters", 1)[0]
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"^\s+(\w+)\s+(\d+)$", section, re.MULTILINE)}
