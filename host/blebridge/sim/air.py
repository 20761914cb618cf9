"""The simulated air: one Bumble device per simulated board, all on one virtual link.

Run it as ``python -m blebridge.sim.air --socket PATH [--idle-exit SECONDS] [--log FILE]``; the
launcher (blebridge.sim.launcher) does this when a ``sim:NAME`` board needs an air. Each board
process (firmware/ports/sim, ``bb_sim``) connects to the Unix socket, says ``hello(NAME)`` and
then forwards every port call as an op (see port_link.py and firmware/ports/sim/README.md).

Every op is performed for real on Bumble's host API (advertising sets, scanning, LE
connections, ATT/GATT server and client, L2CAP credit-based channels, SMP pairing), so peers see
genuine protocol behaviour. The package, one module per layer:

  air.py          this process: the socket server, the boards on the air, in-process peers
  port_link.py    messages on the socket (framing, request/response/event, AirError)
  board.py        one board: its session with the port, its Bumble device, op dispatch
  gap.py gatt_server.py gatt_client.py l2cap.py security.py   the ops, by BLE layer
  controller.py   :class:`AirController`, the virtual controller with the stock one's
                  advertising, scanning and connection-cancel quirks fixed

Captures: a connection whose first request is ``capture(NAME, PATH)`` (instead of ``hello``)
asks the air to write the HCI traffic of the next board NAME that joins to PATH, in btsnoop
format (Bumble's BtSnooper; Wireshark and tshark read it): every packet between the board's Bumble
host and its controller, so advertising, connections, L2CAP, ATT and SMP, from its first
power-up until it leaves the air. (The next board, not one on the air: a board NAME that is
leaving as a new one starts must not take the new one's capture with it.) ``launcher.request_capture`` sends it; ``blebridge sim start NAME
--capture FILE`` uses it. ``--capture-dir DIR`` captures every board to ``DIR/NAME.btsnoop``.

In-process use (tests adding virtual peers written directly on Bumble)::

    air = AirThread.start(socket_path)           # an Air serving socket_path on its own loop
    phone = air.run(air.air.add_peer("phone"))   # a Bumble Device on the same link
    air.run(phone.start_scanning())              # any coroutine, run on the air's loop
    air.stop()
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import cbor2
from bumble import hci
from bumble.device import Device
from bumble.link import LocalLink
from bumble.snoop import BtSnooper

from .board import EVENT_RECORD_OVERHEAD, EVENT_WINDOW_BYTES, Board, address_for_name
from .controller import new_controller_and_host
from .port_link import MSG_REQ, MSG_RSP, FrameDecoder, addr_fields, decode_message, encode_message

# Named, not __name__: run with -m this module is __main__.
logger = logging.getLogger("blebridge.sim.air")

__all__ = ["Air", "AirThread", "address_for_name", "log_path_for", "main",
           "EVENT_WINDOW_BYTES", "EVENT_RECORD_OVERHEAD"]

_T = TypeVar("_T")


class Capture(BtSnooper):
    """A btsnoop file of one board's HCI packets, flushed after each packet so that a capture
    can be read while its board still runs (and is whole when the air is killed)."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(open(path, "wb"))
        self.output.flush()     # the header: a board that never powers up leaves a valid, empty capture

    def snoop(self, hci_packet: bytes, direction: Any) -> None:
        if self.output.closed:
            return
        super().snoop(hci_packet, direction)
        self.output.flush()

    def close(self) -> None:
        self.output.close()


class Air:
    """Serves boards on a Unix socket; holds the shared link and any in-process peers."""

    def __init__(self, idle_exit: Optional[float] = None) -> None:
        self.link = LocalLink()
        self.boards: dict[str, Board] = {}
        self.peers: dict[str, Device] = {}
        self.idle_exit = idle_exit
        self.socket_path: Optional[Path] = None
        self._server: Optional[asyncio.base_events.Server] = None
        self._idle_timer: Optional[asyncio.TimerHandle] = None
        self.closed = asyncio.Event()
        #: Captures by board name, for the next board of that name to join (it takes it).
        self.pending_captures: dict[str, Capture] = {}
        #: Directory every board without a capture of its own is captured to (--capture-dir).
        self.capture_dir: Optional[Path] = None

    async def start(self, socket_path: str | os.PathLike[str]) -> None:
        path = Path(socket_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()  # the launcher only starts an air when nothing listens there
        self._server = await asyncio.start_unix_server(self._serve, path=str(path))
        self.socket_path = path
        logger.info("air listening on %s", path)
        self._arm_idle_timer()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for board in list(self.boards.values()):
            await board.power_down()
            board.flush()
            board.writer.close()
            if board.snooper is not None:
                board.snooper.close()
        self.boards.clear()
        for capture in self.pending_captures.values():
            capture.close()
        self.pending_captures.clear()
        for peer in list(self.peers.values()):
            for connection in list(peer.connections.values()):
                try:
                    await asyncio.wait_for(connection.disconnect(), 1)
                except Exception:
                    pass
        if self.socket_path is not None and self.socket_path.exists():
            try:
                self.socket_path.unlink()
            except OSError:
                pass
        self.closed.set()

    async def add_peer(self, name: str, address: Optional[hci.Address] = None) -> Device:
        """A Bumble Device on this air's link (its own AirController), powered on.

        The address defaults to the one a board called NAME would get. The caller owns the
        device: give it services, advertise, scan, connect, pair with Bumble's own API.
        """
        if name in self.peers or name in self.boards:
            raise ValueError(f"a device named {name!r} is already on the air")
        _controller, host = new_controller_and_host(self.link, f"peer:{name}")
        device = Device(name=name, address=address or address_for_name(name), host=host)
        await device.power_on()
        self.peers[name] = device
        return device

    def capture(self, name: str, path: str | os.PathLike[str]) -> None:
        """Write the HCI traffic of the next board NAME that joins to ``path`` (btsnoop) until
        it leaves the air (see the module doc); OSError when the file cannot be written."""
        old = self.pending_captures.pop(name, None)
        if old is not None:
            old.close()
        capture = Capture(os.fspath(path))
        self.pending_captures[name] = capture
        logger.info("the next board %s will be captured to %s", name, capture.path)


    def _arm_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self.idle_exit is not None and not self.boards:
            self._idle_timer = asyncio.get_running_loop().call_later(
                self.idle_exit, lambda: asyncio.ensure_future(self._idle_close()))

    async def _idle_close(self) -> None:
        if not self.boards:
            logger.info("no board for %.0f s: exiting", self.idle_exit or 0)
            await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        board: Optional[Board] = None
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                for payload in decoder.feed(chunk):
                    try:
                        msg = decode_message(payload)
                    except (ValueError, cbor2.CBORDecodeError) as exc:
                        logger.warning("undecodable air message: %s", exc)
                        continue
                    if board is None:
                        board = self._hello(msg, writer)
                        if board is None:
                            return
                        continue
                    await board.handle(msg)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            logger.exception("board connection failed")
        finally:
            if board is not None:
                logger.info("board %s left", board.name)
                if self.boards.get(board.name) is board:
                    del self.boards[board.name]
                await board.power_down()
                board.flush()
                if board.snooper is not None:
                    board.snooper.close()
                    logger.info("capture of board %s written to %s", board.name, board.snooper.path)
            writer.close()
            if self._server is not None:
                self._arm_idle_timer()

    def _capture_request(self, msg: list[Any], writer: asyncio.StreamWriter) -> None:
        # [REQ, id, "capture", name, path] -> [RSP, id, 0 | -errno, None | why]
        if len(msg) < 5 or not isinstance(msg[3], str) or not isinstance(msg[4], str):
            writer.write(encode_message([MSG_RSP, msg[1], -errno.EINVAL, "capture(name, path)"]))
            return
        try:
            self.capture(msg[3], msg[4])
        except OSError as exc:
            writer.write(encode_message([MSG_RSP, msg[1], -(exc.errno or errno.EIO),
                                         f"cannot write {msg[4]}: {exc.strerror or exc}"]))
            return
        writer.write(encode_message([MSG_RSP, msg[1], 0, None]))

    def _hello(self, msg: list[Any], writer: asyncio.StreamWriter) -> Optional[Board]:
        if len(msg) >= 3 and msg[0] == MSG_REQ and msg[2] == "capture":
            self._capture_request(msg, writer)
            return None
        if len(msg) < 4 or msg[0] != MSG_REQ or msg[2] != "hello" or not isinstance(msg[3], str):
            logger.warning("first message is not hello: %r", msg)
            writer.write(encode_message([MSG_RSP, msg[1] if len(msg) > 1 else None,
                                         -errno.EPROTO, None]))
            return None
        name = msg[3]
        if name in self.boards or name in self.peers:
            logger.warning("board %s is already on the air", name)
            writer.write(encode_message([MSG_RSP, msg[1], -errno.EADDRINUSE, None]))
            return None
        board = Board(self.link, name, writer)
        self.boards[name] = board
        if name not in self.pending_captures and self.capture_dir is not None:
            try:
                self.capture(name, self.capture_dir / f"{name}.btsnoop")
            except OSError as exc:
                logger.warning("cannot capture board %s: %s", name, exc)
        capture = self.pending_captures.pop(name, None)
        if capture is not None:
            board.set_snooper(capture)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        logger.info("board %s joined as %s", name, board.address)
        board.respond(msg[1], 0, list(addr_fields(board.address)))
        return board


class AirThread:
    """An :class:`Air` on its own event loop in a daemon thread (for tests and tools)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.air: Air = None  # type: ignore[assignment]
        self._thread = threading.Thread(target=self.loop.run_forever, name="blebridge-air",
                                        daemon=True)

    @classmethod
    def start(cls, socket_path: str | os.PathLike[str]) -> AirThread:
        self = cls()
        self._thread.start()

        async def make() -> Air:
            air = Air(idle_exit=None)
            await air.start(socket_path)
            return air

        self.air = self.run(make())
        return self

    @property
    def socket_path(self) -> str:
        return str(self.air.socket_path)

    def run(self, coro: Awaitable[_T], timeout: float = 10.0) -> _T:
        """Run a coroutine on the air's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def call(self, fn: Callable[[], _T], timeout: float = 10.0) -> _T:
        """Call a plain function on the air's loop (Bumble objects are not thread-safe)."""

        async def wrapper() -> _T:
            return fn()

        return self.run(wrapper(), timeout)

    def stop(self) -> None:
        try:
            self.run(self.air.close(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)


def log_path_for(socket_path: str | os.PathLike[str]) -> Path:
    """The air's log file: next to its socket, named after it (air.sock -> air.log)."""
    path = Path(socket_path)
    return path.with_name(path.stem + ".log")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blebridge.sim.air",
                                     description="Simulated BLE air for sim:NAME boards.")
    parser.add_argument("--socket", required=True, help="Unix socket the boards connect to")
    parser.add_argument("--idle-exit", type=float, default=30.0,
                        help="exit after this many seconds without a board (default 30)")
    parser.add_argument("--log", default=None, help="log file (default: next to the socket)")
    parser.add_argument("--debug", action="store_true", help="log every op and event")
    parser.add_argument("--capture-dir", default=None,
                        help="write every board's HCI traffic to DIR/NAME.btsnoop (Wireshark reads it)")
    args = parser.parse_args(argv)

    log_file = args.log or str(log_path_for(args.socket))
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=log_file, level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("bumble").setLevel(logging.WARNING)

    async def run() -> None:
        air = Air(idle_exit=args.idle_exit)
        if args.capture_dir:
            air.capture_dir = Path(args.capture_dir)
            air.capture_dir.mkdir(parents=True, exist_ok=True)
        loop = asyncio.get_running_loop()
        import signal

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(air.close()))
        await air.start(args.socket)
        await air.closed.wait()

    try:
        asyncio.run(run())
    except Exception:
        logger.exception("air failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
