"""One simulated board on the air: its Bumble device, its session with the port, its ops.

A :class:`Board` is the air side of one bb_sim process. It owns the socket session (responses,
events under the flow-control window, questions to the host), the Bumble device and controller
that exist while the board's radio is on, and one object per BLE layer that performs the ops:

  gap.py          :class:`Gap`          address, advertising, scanning, connections
  gatt_server.py  :class:`GattServer`   local services, peer reads and writes, notifications
  gatt_client.py  :class:`GattClient`   discovery, reads, writes, MTU exchange
  l2cap.py        :class:`L2cap`        LE credit-based channels
  security.py     :class:`Security`     SMP pairing, passkeys, bonds kept by the host

An op named ``x`` (firmware/ports/sim/README.md) is the method ``op_x`` of the board or of one
of its layers; :meth:`Board.handle` dispatches it and answers with its result or errno.

Invariant: no op handler waits for anything only the board can provide (a question's answer,
a passkey): the board blocks in its port call until the response, and answers arrive as later
ops. Work that needs answers (peer reads with authorisation, L2CAP accept, pairing, bond
storage, erase) runs in tasks. Events to a board are flow-controlled: at most
EVENT_WINDOW_BYTES unacknowledged (the port's ``ack`` op), the rest held back.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import errno
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Optional

import cbor2
from bumble import core, hci
from bumble.device import Connection, Device
from bumble.link import LocalLink

from ..protocol import CONSTANTS
from .controller import AirController, new_controller_and_host
from .gap import HCI_REMOTE_USER_TERMINATED, Gap
from .gatt_client import GattClient
from .gatt_server import MAX_ATT_MTU, GattServer
from .l2cap import L2cap
from .port_link import MSG_EVT, MSG_POST, MSG_REQ, MSG_RSP, AirError, encode_frame, encode_message
from .security import HostKeyStore, Security

logger = logging.getLogger(__name__)

#: A question the board has not answered by then gets the safe default here too. The core
#: answers after QUESTION_TIMEOUT_MS itself; this margin only covers a board that went away.
QUESTION_TIMEOUT_S = CONSTANTS["defaults"]["QUESTION_TIMEOUT_MS"] / 1000 + 2.0
#: Bytes of events a board may have received and not acknowledged (ack op), counted as they
#: sit in the port's queue: CBOR payload plus EVENT_RECORD_OVERHEAD each. Must stay well under
#: the port's BB_SIM_AIR_EVQ_BYTES (32768), which also takes events sent before a reset, and
#: above the port's BB_SIM_AIR_ACK_MIN_BYTES (2048) plus one message (it acks only that often).
#: The port's copy: BB_SIM_AIR_WINDOW_BYTES (firmware/core/bb_config.h).
EVENT_WINDOW_BYTES = 8192
#: While a board's radio is backlogged (see Board._hold_while_radio_backlogged), how often the
#: queue is looked at again without a "flow" event (s).
BACKLOG_RECHECK_S = 0.05
EVENT_RECORD_OVERHEAD = 2
#: Longest wait (s) for each connection's termination when the radio goes off.
POWER_DOWN_DISCONNECT_TIMEOUT_S = 2


def address_for_name(name: str) -> hci.Address:
    """Stable static random address of board NAME: SHA-256 of the name, top two bits set."""
    raw = bytearray(hashlib.sha256(name.encode("utf-8")).digest()[:6])
    raw[5] |= 0xC0  # static random: the two most significant bits of the MSB (last byte) are 1
    return hci.Address(bytes(raw), hci.Address.RANDOM_DEVICE_ADDRESS)


@dataclasses.dataclass
class BoardConfig:
    """bb_config_t as the port sends it (config op), plus read_request."""

    addr_mode: int = 1
    gap_name: str = ""
    appearance: int = 0
    mtu: int = MAX_ATT_MTU
    bond: bool = True
    mitm: bool = False
    io: int = CONSTANTS["io"]["NO_INPUT_OUTPUT"]
    le_secure: bool = True
    tx_power: int = 0
    read_request: bool = False


@dataclasses.dataclass
class Answer:
    """The host's answer to a question (``answer`` op); the default is a timed-out one."""

    timed_out: bool = True
    found: bool = False
    u: int = 0
    data: Optional[bytes] = None


class BoardDevice(Device):
    """A Bumble Device that hands raw advertising reports to its board."""

    board: Optional[Board] = None

    def on_advertising_report(self, report) -> None:  # type: ignore[override]
        if self.board is not None:
            self.board.gap.on_advertising_report(report)
        else:
            super().on_advertising_report(report)

    async def get_long_term_key(self, connection_handle: int, rand: bytes, ediv: int) -> Optional[bytes]:
        """The LTK a peripheral answers a central's LE Enable Encryption with.

        Bumble 0.0.236 answers a legacy bond's request with the key the *central* distributed
        (``keys.ltk_peripheral`` in its naming), while its central encrypts with the one the
        peripheral distributed (``keys.ltk_central``); and it distributes legacy keys with EDIV 0
        and Rand 0, so the request does not tell them apart. Every re-encryption of a legacy bond
        then ended the link with MIC Failure (0x3D). Outside pairing, a peripheral with a legacy
        bond answers with its own key when the request names that key's EDIV/Rand.
        """
        connection = self.lookup_connection(connection_handle)
        if connection is not None and connection.role == hci.Role.PERIPHERAL \
                and self.keystore is not None \
                and self.smp_manager.get_long_term_key(connection, rand, ediv) is None:
            keys = await self.keystore.get(str(connection.peer_address))
            own = keys.ltk_central if keys is not None and keys.ltk is None else None
            if own is not None and (own.ediv or 0) == ediv \
                    and bytes(own.rand or bytes(len(rand))) == bytes(rand):
                return own.value
        return await super().get_long_term_key(connection_handle, rand, ediv)


def silence(controller: Any) -> None:
    """Stop a controller that leaves the link from advertising or initiating.

    Bumble's advertisers run on timers of their own, which removing the controller from the
    link does not cancel: a board powered down (reset) while advertising left its old
    controller advertising the board's address for the rest of the air's life. A central then
    connected to that ghost (Bumble's initiator completes on any advertisement from the
    address) while the board, advertising again on its new controller, never saw the
    connection: aioble's advertise() timed out though the central's connect had returned (the
    hil suite on labgrid's long-lived boards, 13 of 41 aioble tests).
    """
    legacy = getattr(controller, "le_legacy_advertiser", None)
    if legacy is not None:
        legacy.stop()
    for adv_set in list(getattr(controller, "advertising_sets", {}).values()):
        adv_set.stop()
    controller.pending_le_connection = None


def _op_table(*owners: object) -> dict[str, Callable[..., Awaitable[Any]]]:
    """Op name -> handler: every ``op_<name>`` method of the owners (each name once)."""
    table: dict[str, Callable[..., Awaitable[Any]]] = {}
    for owner in owners:
        for attr in dir(type(owner)):
            if attr.startswith("op_"):
                if attr[3:] in table:
                    raise RuntimeError(f"op {attr[3:]} is defined twice")
                table[attr[3:]] = getattr(owner, attr)
    return table


class Board:
    """The air side of one bb_sim process: its Bumble device and every op of its port."""

    def __init__(self, link: LocalLink, name: str, writer: asyncio.StreamWriter) -> None:
        self.link = link
        self.name = name
        self.writer = writer
        self.address = address_for_name(name)
        self.config = BoardConfig(gap_name=name)
        self.device: Optional[BoardDevice] = None
        self.controller: Optional[AirController] = None
        #: Gets every HCI packet of the board's Bumble host (a capture, air.py), or None.
        self.snooper: Optional[Any] = None
        self.gap = Gap(self)
        self.gatts = GattServer(self)
        self.gattc = GattClient(self)
        self.l2cap = L2cap(self)
        self.security = Security(self)
        self._ops = _op_table(self, self.gap, self.gatts, self.gattc, self.l2cap, self.security)
        self._next_ref = 1
        self._questions: dict[int, asyncio.Future[Answer]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Framed messages for the board not yet written (see _release, flush).
        self._outbox: list[bytes] = []
        self._flush_scheduled = False
        #: Events held back by the window: (frame, bytes they take in the port's queue).
        self._held: collections.deque[tuple[bytes, int]] = collections.deque()
        #: Bytes of events sent and not yet acknowledged by the port.
        self._unacked = 0

    def _reset_state(self) -> None:
        for layer in (self.gap, self.gatts, self.l2cap, self.security):
            layer.reset()

    # -- session with the port --------------------------------------------------------------
    def spawn(self, coro: Awaitable[Any], what: str) -> asyncio.Task[Any]:
        """Run ``coro`` as a task of this board (cancelled at power-down; failures logged)."""
        async def guarded() -> None:
            try:
                await coro
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: %s failed", self.name, what)

        task = asyncio.get_running_loop().create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def emit(self, name: str, *fields: Any) -> None:
        """Send event ``name`` to the board (in order; held back while the window is full)."""
        logger.debug("%s <- %s %r", self.name, name, fields)
        payload = cbor2.dumps([MSG_EVT, name, *fields])
        self._held.append((encode_frame(payload), len(payload) + EVENT_RECORD_OVERHEAD))
        self._release()

    def respond(self, msg_id: int, err: int, result: Any) -> None:
        # The port is blocked on this: it leaves at once, ahead of events held back by the
        # window (the port delivers events only after its call returns, so it cannot tell).
        self._outbox.append(encode_message([MSG_RSP, msg_id, err, result]))
        self.flush()

    def _release(self) -> None:
        # Events go out while the board has room for them: at most EVENT_WINDOW_BYTES not yet
        # acknowledged (ack op). A port call must read every event sent before its response,
        # so without this bound a peer flooding the board overflows the port's event queue.
        while self._held and (self._unacked == 0
                              or self._unacked + self._held[0][1] <= EVENT_WINDOW_BYTES):
            frame, size = self._held.popleft()
            self._unacked += size
            self._outbox.append(frame)
        # Events released in one step of the loop (a read's result and its done, a write and
        # the notification it caused) leave in one socket write, so the board reads them in
        # one go and the core reports them in one batch, as a stack reports what one radio
        # event caused.
        if self._outbox and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write what is in the outbox now (it is written at the end of the loop step anyway)."""
        self._flush_scheduled = False
        frames, self._outbox = self._outbox, []
        if frames and not self.writer.is_closing():
            self.writer.write(b"".join(frames))

    async def op_ack(self, consumed: int) -> None:
        # Clamped: events sent before a reset dropped the count may still be acknowledged.
        self._unacked = max(0, self._unacked - int(consumed))
        self._release()

    async def ask(self, name: str, *fields: Any) -> Answer:
        """Raise a board->host question and wait for its answer (or the safe default)."""
        ref = self._next_ref
        self._next_ref = (self._next_ref + 1) & 0xFFFFFFFF or 1
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._questions[ref] = future
        self.emit(name, ref, *fields)
        try:
            return await asyncio.wait_for(future, QUESTION_TIMEOUT_S)
        except asyncio.TimeoutError:
            logger.warning("%s: question %s %d not answered", self.name, name, ref)
            return Answer()
        finally:
            self._questions.pop(ref, None)

    async def op_answer(self, kind: int, ref: int, timed_out: bool, found: bool, u: int,
                        data: Optional[bytes] = None) -> None:
        del kind
        future = self._questions.get(ref)
        if future is None or future.done():
            raise AirError(errno.ENOENT, "answer", f"no open question {ref}")
        future.set_result(Answer(bool(timed_out), bool(found), int(u),
                                 bytes(data) if data is not None else None))

    def dev(self, op: str) -> BoardDevice:
        """The board's device; EPERM for ``op`` while its radio is off."""
        if self.device is None:
            raise AirError(errno.EPERM, op, "radio not active")
        return self.device

    def conn(self, handle: int, op: str) -> Connection:
        """Connection ``handle`` of the board; ENOTCONN for ``op`` when there is none."""
        connection = self.dev(op).lookup_connection(handle)
        if connection is None:
            raise AirError(errno.ENOTCONN, op, f"no connection {handle}")
        return connection

    def connection_alive(self, connection: Connection) -> bool:
        """True while ``connection`` is still one of the board's (radio on, not closed)."""
        return self.device is not None and self.device.lookup_connection(connection.handle) \
            is connection

    async def handle(self, msg: list[Any]) -> None:
        """Perform one request of the port and send its response (a post: no response)."""
        if len(msg) >= 2 and msg[0] == MSG_POST and isinstance(msg[1], str):
            # Nobody waits for a post (gatts_notify, ack): a failure is only logged.
            await self._perform(msg[1], msg[2:])
            await self._hold_while_radio_backlogged()
            return
        if len(msg) < 3 or msg[0] != MSG_REQ or not isinstance(msg[2], str):
            logger.warning("%s: ignored malformed message %r", self.name, msg)
            return
        err, result = await self._perform(msg[2], msg[3:])
        self.respond(msg[1], err, result)

    async def _hold_while_radio_backlogged(self) -> None:
        """Take no further message from the port while the radio has more packets queued than
        its controller has buffers: the port's posts then wait on the socket, and the script's
        gatts_notify calls on them, as on a board whose TX buffers are full. Without this, a
        script's notification flood (posts are not answered) queued up here without bound,
        and anything sent after it (a write's response) waited behind all of it."""
        device = self.device
        if device is None:
            return
        queue = device.host.le_acl_packet_queue or device.host.acl_packet_queue
        if queue is None or queue.pending <= queue.max_in_flight:
            return
        flowed = asyncio.Event()

        def on_flow() -> None:
            flowed.set()

        queue.on("flow", on_flow)
        try:
            while self.device is device and queue.pending > queue.max_in_flight:
                flowed.clear()
                # Bounded: a connection's queue flushed at disconnect emits no "flow".
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(flowed.wait(), BACKLOG_RECHECK_S)
        finally:
            queue.remove_listener("flow", on_flow)

    async def _perform(self, op: str, args: list[Any]) -> tuple[int, Any]:
        """Run op ``op``: (0, result), or (-errno, None) when it failed (logged)."""
        handler = self._ops.get(op)
        if handler is None:
            logger.warning("%s: unknown op %r", self.name, op)
            return -errno.EOPNOTSUPP, None
        logger.debug("%s -> %s %r", self.name, op, args)
        try:
            return 0, await handler(*args)
        except AirError as exc:
            logger.info("%s: %s", self.name, exc)
            return -exc.errno, None
        except TypeError as exc:
            logger.warning("%s: %s: bad arguments: %s", self.name, op, exc)
            return -errno.EINVAL, None
        except (core.InvalidArgumentError, ValueError) as exc:
            logger.info("%s: %s: %s", self.name, op, exc)
            return -errno.EINVAL, None
        except hci.HCI_Error as exc:
            logger.info("%s: %s: %s", self.name, op, exc)
            return -errno.EIO, None
        except Exception:
            logger.exception("%s: %s failed", self.name, op)
            return -errno.EIO, None

    # -- radio ------------------------------------------------------------------------------
    async def power_up(self) -> None:
        controller, host = new_controller_and_host(self.link, f"board:{self.name}")
        host.snooper = self.snooper     # before power-on: the capture starts with the reset
        device = BoardDevice(name=self.config.gap_name or self.name, address=self.address,
                             host=host)
        device.board = self
        device.keystore = HostKeyStore(self.security)
        device.pairing_config_factory = self.security.pairing_config
        device.on(device.EVENT_CONNECTION, self.gap.on_connection)
        self.l2cap.hook(device)
        self.gatts.hook_read_blob(device)
        self.controller, self.device = controller, device
        await device.power_on()
        self.gatts.configure(device)

    def set_snooper(self, snooper: Optional[Any]) -> None:
        """Give every HCI packet of this board to ``snooper`` from now on (None: stop)."""
        self.snooper = snooper
        if self.device is not None:
            self.device.host.snooper = snooper

    async def power_down(self) -> None:
        device, controller = self.device, self.controller
        self.gap.stop_timers()
        for task in list(self._tasks):
            task.cancel()
        for future in list(self._questions.values()):
            if not future.done():
                future.cancel()
        self.security.cancel_passkeys()
        self.device = self.controller = None
        if device is not None:
            device.board = None
            for connection in list(device.connections.values()):
                try:
                    await asyncio.wait_for(connection.disconnect(HCI_REMOTE_USER_TERMINATED),
                                           POWER_DOWN_DISCONNECT_TIMEOUT_S)
                except Exception:
                    logger.debug("%s: disconnect at power-down failed", self.name, exc_info=True)
        if controller is not None:
            silence(controller)
            if controller in self.link.controllers:
                self.link.remove_controller(controller)
        self._reset_state()

    # -- ops: platform and configuration ----------------------------------------------------
    async def op_activate(self, on: bool) -> bool:
        if on and self.device is None:
            await self.power_up()
        elif not on and self.device is not None:
            await self.power_down()
        return self.device is not None

    async def op_reset(self) -> None:
        await self.power_down()
        # The port discarded its queued events before asking: start the window afresh.
        self._held.clear()
        self._unacked = 0
        self.config = BoardConfig(gap_name=self.name)
        self.address = address_for_name(self.name)

    async def op_config(self, addr_mode: int, gap_name: str, appearance: int, mtu: int,
                        bond: bool, mitm: bool, io: int, le_secure: bool, tx_power: int,
                        read_request: bool = False) -> None:
        if not 23 <= mtu <= 0xFFFF:
            raise AirError(errno.EINVAL, "config", f"mtu {mtu}")
        if io not in CONSTANTS["io"].values():
            raise AirError(errno.EINVAL, "config", f"io {io}")
        self.config = BoardConfig(addr_mode, gap_name, appearance, mtu, bond, mitm, io,
                                  le_secure, tx_power, read_request)
        if self.device is not None:
            self.gatts.configure(self.device)
