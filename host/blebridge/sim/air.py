"""The simulated air: one Bumble device per simulated board, all on one virtual link.

Run it as ``python -m blebridge.sim.air --socket PATH [--idle-exit SECONDS] [--log FILE]``; the
launcher (blebridge.sim.launcher) does this when a ``sim:NAME`` board needs an air. Each board
process (firmware/ports/sim, ``bb_sim``) connects to the Unix socket, says ``hello(NAME)`` and
then forwards every port call as an op (see air_link.py and firmware/ports/sim/README.md).

Every op is performed for real on Bumble's host API (advertising sets, scanning, LE
connections, ATT/GATT server and client, L2CAP credit-based channels, SMP pairing), so peers see
genuine protocol behaviour. The controller is :class:`AirController` (air_controller.py), which
fixes the stock virtual controller's advertising, scanning and connection-cancel quirks.

Invariant: no op handler waits for anything only the board can provide (a question's answer,
a passkey): the board blocks in its port call until the response, and answers arrive as later
ops. Work that needs answers (peer reads with authorisation, L2CAP accept, pairing, bond
storage, erase) runs in tasks. Events to a board are flow-controlled: at most
EVENT_WINDOW_BYTES unacknowledged (the port's ``ack`` op), the rest held back.

In-process use (tests adding virtual peers written directly on Bumble)::

    air = AirThread.start(socket_path)           # an Air serving socket_path on its own loop
    phone = air.run(air.air.add_peer("phone"))   # a Bumble Device on the same link
    air.run(phone.start_scanning())              # any coroutine, run on the air's loop
    air.stop()
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import contextvars
import dataclasses
import errno
import hashlib
import logging
import os
import struct
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Optional, TypeVar

import cbor2
from bumble import att, core, gatt, hci, l2cap, pairing, smp
from bumble.device import (
    AdvertisingEventProperties,
    AdvertisingParameters,
    Connection,
    ConnectionParametersPreferences,
    Device,
)
from bumble.gatt_client import ServiceProxy
from bumble.host import Host
from bumble.keys import KeyStore, PairingKeys
from bumble.transport.common import AsyncPipeSink

from ..protocol import CONSTANTS, LIMITS
from .air_controller import AirController
from .air_link import (MSG_EVT, MSG_REQ, MSG_RSP, FrameDecoder, decode_message, encode_frame,
                       encode_message)

logger = logging.getLogger("blebridge.sim.air")

_T = TypeVar("_T")

CONN_NONE = 0xFFFF
FLAG = CONSTANTS["flag"]
ATT_ERR = CONSTANTS["att_error"]
PASSKEY = CONSTANTS["passkey_action"]
SECRET = CONSTANTS["secret_type"]
ADV = CONSTANTS["adv_type"]

#: A question the board has not answered by then gets the safe default here too. The core
#: answers after QUESTION_TIMEOUT_MS itself; this margin only covers a board that went away.
QUESTION_TIMEOUT_S = CONSTANTS["defaults"]["QUESTION_TIMEOUT_MS"] / 1000 + 2.0
#: A PASSKEY_ACTION not answered (gap_passkey) within this rejects the pairing (schema doc).
PASSKEY_TIMEOUT_S = CONSTANTS["defaults"]["QUESTION_TIMEOUT_MS"] / 1000
#: Largest ATT MTU the air negotiates (Bumble's server maximum; MAX_ATTR_LEN + 5).
MAX_ATT_MTU = 517
#: L2CAP CoC segment size (bytes) and receive credits per channel. Small on purpose: an SDU of
#: MAX_L2CAP_SDU bytes needs more segments than one credit window, so senders really stall
#: and resume on returned credits, as on a radio.
L2CAP_MPS = 247
L2CAP_CREDITS = 4
#: Bytes of events a board may have received and not acknowledged (ack op), counted as they
#: sit in the port's queue: CBOR payload plus EVENT_RECORD_OVERHEAD each. Must stay well under
#: the port's BB_SIM_AIR_EVQ_BYTES (32768), which also takes events sent before a reset.
EVENT_WINDOW_BYTES = 8192
EVENT_RECORD_OVERHEAD = 2
#: Longest wait (s) for a just-started connection attempt to reach the controller before a
#: connect_cancel is sent to it (it takes a few loop steps: one HCI command round trip).
CONNECT_START_TIMEOUT_S = 1.0
#: Bounds of a Bumble scan, ms (Core Vol 4 Part E 7.8.64: 2.5 ms .. 10.24 s).
SCAN_INTERVAL_MIN_MS, SCAN_INTERVAL_MAX_MS = 2.5, 10240.0
#: Advertising interval bounds, ms (legacy minimum 20 ms; 10.24 s maximum).
ADV_INTERVAL_MIN_MS, ADV_INTERVAL_MAX_MS = 20.0, 10240.0
#: HCI reasons: remote user terminated (sent to the peer), local host terminated (reported
#: to the side that disconnected), unknown connection identifier (a cancelled connect).
HCI_REMOTE_USER_TERMINATED = 0x13
HCI_LOCAL_HOST_TERMINATED = 0x16
HCI_UNKNOWN_CONNECTION_ID = 0x02
#: Status of GATTS_INDICATE_DONE when no confirmation came (errno ETIMEDOUT) / link lost (EIO).
INDICATE_TIMEOUT_STATUS = errno.ETIMEDOUT
INDICATE_FAILED_STATUS = errno.EIO
#: Bumble's per-connection key store keys are at most this many bonds enumerated on erase.
MAX_BONDS_ENUMERATED = 64

_in_blob_read: contextvars.ContextVar[bool] = contextvars.ContextVar("_in_blob_read", default=False)


class AirError(Exception):
    """An op failed; ``errno`` is the positive errno the board gets (negated on the wire)."""

    def __init__(self, err: int, op: str, detail: str = "") -> None:
        self.errno = err
        name = errno.errorcode.get(err, str(err))
        super().__init__(f"{op}: {name}" + (f": {detail}" if detail else ""))


def address_for_name(name: str) -> hci.Address:
    """Stable static random address of board NAME: SHA-256 of the name, top two bits set."""
    raw = bytearray(hashlib.sha256(name.encode("utf-8")).digest()[:6])
    raw[5] |= 0xC0  # static random: the two most significant bits of the MSB (last byte) are 1
    return hci.Address(bytes(raw), hci.Address.RANDOM_DEVICE_ADDRESS)


def _addr_fields(address: hci.Address) -> tuple[int, bytes]:
    # Bumble's identity types (2, 3) are public/random on air.
    return address.address_type & 1, bytes(address)


def _uuid_bytes(uuid: core.UUID) -> bytes:
    return uuid.to_bytes()


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
    timed_out: bool = True
    found: bool = False
    u: int = 0
    data: Optional[bytes] = None


# ------------------------------------------------------------------------------------------
# Bond storage through the host
# ------------------------------------------------------------------------------------------
def _key_to_list(key: Optional[PairingKeys.Key]) -> Optional[list[Any]]:
    if key is None:
        return None
    return [key.value, key.authenticated, key.ediv, key.rand]


def _key_from_list(item: Optional[list[Any]]) -> Optional[PairingKeys.Key]:
    if item is None:
        return None
    value, authenticated, ediv, rand = item
    return PairingKeys.Key(value=value, authenticated=authenticated, ediv=ediv, rand=rand)


def encode_bond(keys: PairingKeys) -> bytes:
    """Compact CBOR of the keys a bond needs (fits MAX_SECRET; CSRK and link keys dropped)."""
    return cbor2.dumps([
        int(keys.address_type) if keys.address_type is not None else None,
        _key_to_list(keys.ltk),
        _key_to_list(keys.ltk_central),
        _key_to_list(keys.ltk_peripheral),
        _key_to_list(keys.irk),
    ])


def decode_bond(value: bytes) -> PairingKeys:
    address_type, ltk, ltk_central, ltk_peripheral, irk = cbor2.loads(value)
    return PairingKeys(
        address_type=hci.AddressType(address_type) if address_type is not None else None,
        ltk=_key_from_list(ltk),
        ltk_central=_key_from_list(ltk_central),
        ltk_peripheral=_key_from_list(ltk_peripheral),
        irk=_key_from_list(irk),
    )


def bond_key(name: str) -> bytes:
    """Secret key of a bond: address type byte + 6 address bytes (LSB first)."""
    address = hci.Address(name)
    return bytes([address.address_type & 1]) + bytes(address)


def bond_name(key: bytes) -> str:
    return str(hci.Address(key[1:7], key[0]))


class HostKeyStore(KeyStore):
    """Bumble key store whose bonds live on the host: GET_SECRET / SET_SECRET questions."""

    def __init__(self, board: Board) -> None:
        self.board = board

    async def get(self, name: str) -> Optional[PairingKeys]:
        answer = await self.board.ask("GET_SECRET", SECRET["PEER_SEC"], 0, bond_key(name))
        if not answer.found or not answer.data:
            return None
        try:
            keys = decode_bond(answer.data)
        except (ValueError, TypeError, cbor2.CBORDecodeError):
            logger.warning("%s: bond for %s is not readable, ignored", self.board.name, name)
            return None
        self.board.bonded_peers.add(name)
        return keys

    async def update(self, name: str, keys: PairingKeys) -> None:
        if not self.board.config.bond:
            return
        value = encode_bond(keys)
        if len(value) > LIMITS["MAX_SECRET"]:
            logger.error("%s: bond for %s is %d bytes, over MAX_SECRET", self.board.name, name,
                         len(value))
            return
        answer = await self.board.ask("SET_SECRET", SECRET["PEER_SEC"], bond_key(name), value)
        if answer.found:
            self.board.bonded_peers.add(name)

    async def delete(self, name: str) -> None:
        await self.board.ask("SET_SECRET", SECRET["PEER_SEC"], bond_key(name), None)
        self.board.bonded_peers.discard(name)

    async def get_all(self) -> list[tuple[str, PairingKeys]]:
        bonds: list[tuple[str, PairingKeys]] = []
        for index in range(MAX_BONDS_ENUMERATED):
            answer = await self.board.ask("GET_SECRET", SECRET["PEER_SEC"], index, None)
            if not answer.found or answer.data is None:
                break
            # By index the host returns key || value (7 address bytes, then the bond).
            key, value = answer.data[:7], answer.data[7:]
            try:
                bonds.append((bond_name(key), decode_bond(value)))
            except (ValueError, TypeError, cbor2.CBORDecodeError):
                continue
        return bonds

    async def delete_all(self) -> None:
        for name, _keys in await self.get_all():
            await self.delete(name)

    async def get_resolving_keys(self) -> list[tuple[bytes, hci.Address]]:
        # Boards use static random addresses (no privacy): nothing to resolve. Not asking
        # here also keeps power-on free of questions.
        return []


class HostPairingDelegate(pairing.PairingDelegate):
    """Passkey entry, display and numeric comparison through PASSKEY_ACTION / gap_passkey."""

    def __init__(self, board: Board, connection: Connection, io: int) -> None:
        super().__init__(io_capability=pairing.PairingDelegate.IoCapability(io))
        self.board = board
        self.connection = connection
        self._display_passkey: Optional[int] = None

    async def get_number(self) -> Optional[int]:
        answer = await self.board.ask_passkey(self.connection.handle, PASSKEY["INPUT"], 0)
        return None if answer is None else answer

    async def generate_passkey(self) -> int:
        proposed = await super().generate_passkey()
        answer = await self.board.ask_passkey(self.connection.handle, PASSKEY["DISPLAY"],
                                              proposed)
        if answer is None:
            raise AirError(errno.ETIMEDOUT, "pairing", "PASSKEY_ACTION DISPLAY not answered")
        self._display_passkey = answer
        return answer

    async def compare_numbers(self, number: int, digits: int) -> bool:
        answer = await self.board.ask_passkey(self.connection.handle,
                                              PASSKEY["NUMERIC_COMPARISON"], number)
        return bool(answer)


class BoardDevice(Device):
    """A Bumble Device that hands raw advertising reports to its board."""

    board: Optional[Board] = None

    def on_advertising_report(self, report) -> None:  # type: ignore[override]
        if self.board is not None:
            self.board.on_advertising_report(report)
        else:
            super().on_advertising_report(report)


def _new_controller_and_host(link, name: str) -> tuple[AirController, Host]:
    controller = AirController(name, link=link)
    host = Host(controller, AsyncPipeSink(controller))
    return controller, host


# ------------------------------------------------------------------------------------------
# One simulated board
# ------------------------------------------------------------------------------------------
class Board:
    """The air side of one bb_sim process: its Bumble device and every op of its port."""

    def __init__(self, air: Air, name: str, writer: asyncio.StreamWriter) -> None:
        self.air = air
        self.name = name
        self.writer = writer
        self.address = address_for_name(name)
        self.config = BoardConfig(gap_name=name)
        self.device: Optional[BoardDevice] = None
        self.controller: Optional[AirController] = None
        self.bonded_peers: set[str] = set()
        self._next_ref = 1
        self._questions: dict[int, asyncio.Future[Answer]] = {}
        self._passkeys: dict[int, asyncio.Future[tuple[int, int]]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Framed messages for the board not yet written (see _release, flush).
        self._outbox: list[bytes] = []
        self._flush_scheduled = False
        #: Events held back by the window: (frame, bytes they take in the port's queue).
        self._held: collections.deque[tuple[bytes, int]] = collections.deque()
        #: Bytes of events sent and not yet acknowledged by the port.
        self._unacked = 0
        self._reset_state()

    def _reset_state(self) -> None:
        self.values: dict[int, bytearray] = {}
        self.attr_flags: dict[int, int] = {}
        self.adv_set = None
        self.adv_timer: Optional[asyncio.TimerHandle] = None
        self.scanning = False
        self.scan_timer: Optional[asyncio.TimerHandle] = None
        self.connect_task: Optional[asyncio.Task[None]] = None
        self.local_disconnects: set[int] = set()
        self.l2cap_servers: dict[int, l2cap.LeCreditBasedChannelServer] = {}
        self.channels: dict[tuple[int, int], l2cap.LeCreditBasedChannel] = {}
        self.stalled: set[tuple[int, int]] = set()
        self.pairing: set[int] = set()
        self.conn_authenticated: dict[int, bool] = {}

    # -- plumbing ---------------------------------------------------------------------------
    def spawn(self, coro: Awaitable[Any], what: str) -> asyncio.Task[Any]:
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

    async def ask_passkey(self, conn: int, action: int, passkey: int) -> Optional[int]:
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._passkeys[conn] = future
        self.emit("PASSKEY_ACTION", conn, action, passkey)
        try:
            _action, value = await asyncio.wait_for(future, PASSKEY_TIMEOUT_S)
            return value
        except asyncio.TimeoutError:
            logger.info("%s: PASSKEY_ACTION %d on %d not answered", self.name, action, conn)
            return None
        finally:
            if self._passkeys.get(conn) is future:
                del self._passkeys[conn]

    def dev(self, op: str) -> BoardDevice:
        if self.device is None:
            raise AirError(errno.EPERM, op, "radio not active")
        return self.device

    def conn(self, handle: int, op: str) -> Connection:
        connection = self.dev(op).lookup_connection(handle)
        if connection is None:
            raise AirError(errno.ENOTCONN, op, f"no connection {handle}")
        return connection

    async def handle(self, msg: list[Any]) -> None:
        if len(msg) < 3 or msg[0] != MSG_REQ or not isinstance(msg[2], str):
            logger.warning("%s: ignored malformed message %r", self.name, msg)
            return
        msg_id, op, args = msg[1], msg[2], msg[3:]
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            self.respond(msg_id, -errno.EOPNOTSUPP, None)
            return
        logger.debug("%s -> %s %r", self.name, op, args)
        try:
            result = await handler(*args)
        except AirError as exc:
            logger.info("%s: %s", self.name, exc)
            self.respond(msg_id, -exc.errno, None)
        except TypeError as exc:
            logger.warning("%s: %s: bad arguments: %s", self.name, op, exc)
            self.respond(msg_id, -errno.EINVAL, None)
        except (core.InvalidArgumentError, ValueError) as exc:
            logger.info("%s: %s: %s", self.name, op, exc)
            self.respond(msg_id, -errno.EINVAL, None)
        except hci.HCI_Error as exc:
            logger.info("%s: %s: %s", self.name, op, exc)
            self.respond(msg_id, -errno.EIO, None)
        except Exception:
            logger.exception("%s: %s failed", self.name, op)
            self.respond(msg_id, -errno.EIO, None)
        else:
            self.respond(msg_id, 0, result)

    # -- radio ------------------------------------------------------------------------------
    async def power_up(self) -> None:
        controller, host = _new_controller_and_host(self.air.link, f"board:{self.name}")
        device = BoardDevice(name=self.config.gap_name or self.name, address=self.address,
                             host=host)
        device.board = self
        device.keystore = HostKeyStore(self)
        device.pairing_config_factory = self._pairing_config
        device.on(device.EVENT_CONNECTION, self._on_connection)
        self._hook_l2cap(device)
        self._hook_read_blob(device)
        self.controller, self.device = controller, device
        await device.power_on()
        device.gatt_server.max_mtu = min(self.config.mtu, MAX_ATT_MTU)
        self._apply_gap_values()

    async def power_down(self) -> None:
        device, controller = self.device, self.controller
        for timer in (self.adv_timer, self.scan_timer):
            if timer is not None:
                timer.cancel()
        if self.connect_task is not None:
            self.connect_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        for future in list(self._questions.values()) + list(self._passkeys.values()):
            if not future.done():
                future.cancel()
        self.device = self.controller = None
        if device is not None:
            device.board = None
            for connection in list(device.connections.values()):
                try:
                    await asyncio.wait_for(connection.disconnect(HCI_REMOTE_USER_TERMINATED), 2)
                except Exception:
                    logger.debug("%s: disconnect at power-down failed", self.name, exc_info=True)
        if controller is not None and controller in self.air.link.controllers:
            self.air.link.remove_controller(controller)
        self._reset_state()

    def _apply_gap_values(self) -> None:
        if self.device is None:
            return
        for attribute in self.device.gatt_server.attributes:
            if attribute.type == gatt.GATT_DEVICE_NAME_CHARACTERISTIC:
                attribute.value = self.config.gap_name.encode("utf-8")[:248]
            elif attribute.type == gatt.GATT_APPEARANCE_CHARACTERISTIC:
                attribute.value = struct.pack("<H", self.config.appearance)

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
            self.device.gatt_server.max_mtu = min(mtu, MAX_ATT_MTU)
            self._apply_gap_values()

    async def op_addr_get(self) -> list[Any]:
        return list(_addr_fields(self.address))

    async def op_addr_set(self, addr: bytes) -> None:
        if len(addr) != 6 or addr[5] & 0xC0 != 0xC0:
            raise AirError(errno.EINVAL, "addr_set", "not a static random address")
        if self.adv_set is not None or self.scanning:
            raise AirError(errno.EBUSY, "addr_set", "advertising or scanning")
        self.address = hci.Address(bytes(addr), hci.Address.RANDOM_DEVICE_ADDRESS)
        if self.device is not None:
            self.device.random_address = self.device.static_address = self.address
            await self.device.send_command(
                hci.HCI_LE_Set_Random_Address_Command(random_address=self.address))

    # -- ops: GAP ---------------------------------------------------------------------------
    async def op_adv_start(self, interval_us: int, adv_data: bytes, resp_data: bytes,
                           connectable: bool, scannable: bool, extended: bool, timeout_ms: int,
                           tx_power: Optional[int] = None, peer_type: Optional[int] = None,
                           peer_addr: Optional[bytes] = None) -> None:
        device = self.dev("adv_start")
        directed = peer_addr is not None
        limit = LIMITS["MAX_ADV_EXT"] if extended else LIMITS["MAX_ADV_LEGACY"]
        if len(adv_data) > limit or len(resp_data) > limit:
            raise AirError(errno.E2BIG, "adv_start", f"data over {limit} bytes")
        if extended and connectable and scannable:
            raise AirError(errno.EINVAL, "adv_start", "extended advertising cannot be both "
                           "connectable and scannable")
        if directed and not connectable:
            raise AirError(errno.EINVAL, "adv_start", "directed advertising is connectable")
        await self._adv_stop()
        interval_ms = min(max(interval_us / 1000, ADV_INTERVAL_MIN_MS), ADV_INTERVAL_MAX_MS)
        peer = (hci.Address(bytes(peer_addr), peer_type or 0) if directed else hci.Address.ANY)
        params = AdvertisingParameters(
            advertising_event_properties=AdvertisingEventProperties(
                is_connectable=connectable,
                is_scannable=scannable and not directed,
                is_directed=directed,
                is_legacy=not extended,
            ),
            primary_advertising_interval_min=interval_ms,
            primary_advertising_interval_max=interval_ms,
            peer_address=peer,
            advertising_tx_power=tx_power if tx_power is not None else self.config.tx_power,
        )
        self.adv_set = await device.create_advertising_set(
            advertising_parameters=params,
            random_address=self.address,
            advertising_data=bytes(adv_data) if not (directed and not extended) else b"",
            scan_response_data=bytes(resp_data) if scannable and not directed else b"",
            auto_start=True,
            auto_restart=False,
        )
        if timeout_ms:
            self.adv_timer = asyncio.get_running_loop().call_later(
                timeout_ms / 1000, lambda: self.spawn(self._adv_timed_out(), "advertising timeout"))

    async def _adv_timed_out(self) -> None:
        self.adv_timer = None
        if self.adv_set is not None:
            await self._adv_stop()
            self.emit("ADVERTISE_DONE", 0)

    async def _adv_stop(self) -> None:
        if self.adv_timer is not None:
            self.adv_timer.cancel()
            self.adv_timer = None
        adv_set, self.adv_set = self.adv_set, None
        if adv_set is not None:
            if adv_set.enabled:
                await adv_set.stop()
            await adv_set.remove()

    async def op_adv_stop(self) -> None:
        self.dev("adv_stop")
        await self._adv_stop()

    async def op_scan_start(self, duration_ms: int, interval_us: int, window_us: int,
                            active: bool, filter_duplicates: bool) -> None:
        device = self.dev("scan_start")
        if self.scanning:
            await self._scan_stop(report=False)
        interval = min(max(interval_us / 1000, SCAN_INTERVAL_MIN_MS), SCAN_INTERVAL_MAX_MS)
        window = min(max(window_us / 1000, SCAN_INTERVAL_MIN_MS), interval)
        await device.start_scanning(legacy=False, active=active, scan_interval=interval,
                                    scan_window=window, filter_duplicates=filter_duplicates)
        self.scanning = True
        if duration_ms:
            self.scan_timer = asyncio.get_running_loop().call_later(
                duration_ms / 1000, lambda: self.spawn(self._scan_stop(report=True), "scan end"))

    async def _scan_stop(self, report: bool) -> None:
        if self.scan_timer is not None:
            self.scan_timer.cancel()
            self.scan_timer = None
        if not self.scanning:
            return
        self.scanning = False
        if self.device is not None:
            await self.device.stop_scanning()
        if report:
            self.emit("SCAN_DONE")

    async def op_scan_stop(self) -> None:
        self.dev("scan_stop")
        await self._scan_stop(report=True)

    def on_advertising_report(self, report) -> None:
        if not self.scanning:
            return
        event_type = report.event_type
        if event_type & 0x10:  # legacy PDU
            if event_type & 0x08:
                adv_type = ADV["SCAN_RSP"]
            elif event_type & 0x04:
                adv_type = ADV["ADV_DIRECT_IND"]
            elif event_type & 0x01:
                adv_type = ADV["ADV_IND"]
            elif event_type & 0x02:
                adv_type = ADV["ADV_SCAN_IND"]
            else:
                adv_type = ADV["ADV_NONCONN_IND"]
        else:
            adv_type = ADV["EXT_ADV"]
        addr_type, addr = _addr_fields(report.address)
        self.emit("SCAN_RESULT", addr_type, addr, adv_type, report.rssi, bytes(report.data))

    async def op_connect(self, peer_type: int, peer_addr: bytes, scan_duration_ms: int,
                         min_interval_us: int = 0, max_interval_us: int = 0, latency: int = 0,
                         supervision_timeout_ms: int = 0) -> None:
        device = self.dev("connect")
        if self.connect_task is not None:
            raise AirError(errno.EALREADY, "connect", "a connection is already pending")
        peer = hci.Address(bytes(peer_addr), peer_type & 1)
        default = ConnectionParametersPreferences.default
        prefs = ConnectionParametersPreferences(
            connection_interval_min=(min_interval_us / 1000) or default.connection_interval_min,
            connection_interval_max=(max_interval_us / 1000) or default.connection_interval_max,
            max_latency=latency,
            supervision_timeout=supervision_timeout_ms or default.supervision_timeout,
        )
        timeout = scan_duration_ms / 1000 if scan_duration_ms else None

        async def connect() -> None:
            try:
                await device.connect_le(peer, {hci.HCI_LE_1M_PHY: prefs}, timeout=timeout)
            except (core.TimeoutError, core.ConnectionError, hci.HCI_Error, asyncio.TimeoutError) \
                    as exc:
                reason = getattr(exc, "error_code", None)
                if not isinstance(reason, int) or reason == 0 or reason > 0xFF:
                    reason = HCI_UNKNOWN_CONNECTION_ID
                logger.info("%s: connect to %s ended: %s", self.name, peer, exc)
                self.emit("PERIPHERAL_DISCONNECT", CONN_NONE, peer_type & 1, bytes(peer_addr),
                          reason)
            finally:
                self.connect_task = None

        self.connect_task = self.spawn(connect(), "connect")

    async def op_connect_cancel(self) -> None:
        device = self.dev("connect_cancel")
        task = self.connect_task
        if task is None:
            raise AirError(errno.ENOENT, "connect_cancel", "no connection pending")
        # Bumble marks the device connecting only once the controller has acknowledged LE
        # Create Connection; a cancel before that would be a no-op and the connect would then
        # wait forever. Let the connect task get there (a few loop steps) first.
        deadline = asyncio.get_running_loop().time() + CONNECT_START_TIMEOUT_S
        while not task.done() and not device.is_le_connecting \
                and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0)
        if task.done():
            raise AirError(errno.ENOENT, "connect_cancel", "the connection attempt has ended")
        await device.cancel_connection()

    async def op_disconnect(self, conn: int) -> None:
        connection = self.conn(conn, "disconnect")
        self.local_disconnects.add(conn)
        await asyncio.wait_for(connection.disconnect(HCI_REMOTE_USER_TERMINATED), 5)

    async def op_conn_update(self, conn: int, min_interval_us: int, max_interval_us: int,
                             latency: int, supervision_timeout_ms: int) -> None:
        connection = self.conn(conn, "conn_update")
        self.spawn(connection.update_parameters(min_interval_us / 1000, max_interval_us / 1000,
                                                latency, supervision_timeout_ms),
                   "connection update")

    # -- connection events ------------------------------------------------------------------
    def _on_connection(self, connection: Connection) -> None:
        if connection.transport != core.PhysicalTransport.LE:
            return
        handle = connection.handle
        addr_type, addr = _addr_fields(connection.peer_address)
        self._hook_gatt_client(connection)
        connection.on(connection.EVENT_DISCONNECTION,
                      lambda reason: self._on_disconnection(connection, addr_type, addr, reason))
        connection.on(connection.EVENT_CONNECTION_ATT_MTU_UPDATE,
                      lambda: self.emit("MTU_EXCHANGED", handle, connection.att_mtu))
        connection.on(connection.EVENT_CONNECTION_PARAMETERS_UPDATE,
                      lambda: self._on_parameters_update(connection))
        connection.on(connection.EVENT_CONNECTION_ENCRYPTION_CHANGE,
                      lambda: self._on_encryption_change(connection))
        connection.on(connection.EVENT_PAIRING_START, lambda: self.pairing.add(handle))
        connection.on(connection.EVENT_PAIRING, lambda keys: self._on_pairing(connection, keys))
        connection.on(connection.EVENT_PAIRING_FAILURE,
                      lambda reason: self._on_pairing_failure(connection, reason))
        if connection.role == hci.Role.CENTRAL:
            self.emit("PERIPHERAL_CONNECT", handle, addr_type, addr)
        else:
            self.emit("CENTRAL_CONNECT", handle, addr_type, addr)
            if self.adv_set is not None:
                # The controller stopped the set when the connection came in.
                self.spawn(self._adv_ended_by_connection(), "advertising end")

    async def _adv_ended_by_connection(self) -> None:
        if self.adv_timer is not None:
            self.adv_timer.cancel()
            self.adv_timer = None
        adv_set, self.adv_set = self.adv_set, None
        if adv_set is not None:
            await adv_set.remove()
        self.emit("ADVERTISE_DONE", 1)

    def _on_disconnection(self, connection: Connection, addr_type: int, addr: bytes,
                          reason: int) -> None:
        handle = connection.handle
        if handle in self.local_disconnects:
            self.local_disconnects.discard(handle)
            reason = HCI_LOCAL_HOST_TERMINATED
        for key in [k for k in self.channels if k[0] == handle]:
            channel = self.channels.pop(key)
            self.stalled.discard(key)
            self.emit("L2CAP_DISCONNECT", handle, key[1], channel.psm, 0)
        self.pairing.discard(handle)
        self.conn_authenticated.pop(handle, None)
        future = self._passkeys.pop(handle, None)
        if future is not None and not future.done():
            future.cancel()
        if connection.role == hci.Role.CENTRAL:
            self.emit("PERIPHERAL_DISCONNECT", handle, addr_type, addr, reason)
        else:
            self.emit("CENTRAL_DISCONNECT", handle, addr_type, addr, reason)

    def _on_parameters_update(self, connection: Connection) -> None:
        p = connection.parameters
        self.emit("CONNECTION_UPDATE", connection.handle, round(p.connection_interval / 1.25),
                  p.peripheral_latency, round(p.supervision_timeout / 10), 0)

    # -- GATT server ------------------------------------------------------------------------
    def _permissions(self, flags: int) -> att.Attribute.Permissions:
        perms = att.Attribute.Permissions(0)
        if flags & FLAG["READ"]:
            perms |= att.Attribute.READABLE
        if flags & (FLAG["WRITE"] | FLAG["WRITE_NO_RESPONSE"]):
            perms |= att.Attribute.WRITEABLE
        if flags & (FLAG["READ_ENCRYPTED"] | FLAG["READ_AUTHENTICATED"] | FLAG["READ_LESC"]):
            perms |= att.Attribute.READ_REQUIRES_ENCRYPTION
        if flags & (FLAG["READ_AUTHENTICATED"] | FLAG["READ_LESC"]):
            perms |= att.Attribute.READ_REQUIRES_AUTHENTICATION
        if flags & (FLAG["WRITE_ENCRYPTED"] | FLAG["WRITE_AUTHENTICATED"] | FLAG["WRITE_LESC"]):
            perms |= att.Attribute.WRITE_REQUIRES_ENCRYPTION
        if flags & (FLAG["WRITE_AUTHENTICATED"] | FLAG["WRITE_LESC"]):
            perms |= att.Attribute.WRITE_REQUIRES_AUTHENTICATION
        return perms

    def _value(self, box: list[int]) -> att.AttributeValue:
        """Read/write callbacks of one local attribute; box[0] is its handle once assigned."""

        async def read(connection: Connection) -> bytes:
            handle = box[0]
            flags = self.attr_flags.get(handle, 0)
            if not flags & FLAG["READ"]:
                raise att.ATT_Error(ATT_ERR["READ_NOT_PERMITTED"])
            self._check_lesc(connection, flags & FLAG["READ_LESC"])
            if (flags & FLAG["READ_AUTHORIZED"] or self.config.read_request) \
                    and not _in_blob_read.get():
                answer = await self.ask("GATTS_READ_REQUEST", connection.handle, handle)
                if answer.u:
                    raise att.ATT_Error(answer.u & 0xFF)
            return bytes(self.values.get(handle, b""))

        async def write(connection: Connection, value: bytes) -> None:
            handle = box[0]
            flags = self.attr_flags.get(handle, 0)
            if not flags & (FLAG["WRITE"] | FLAG["WRITE_NO_RESPONSE"]):
                raise att.ATT_Error(ATT_ERR["WRITE_NOT_PERMITTED"])
            self._check_lesc(connection, flags & FLAG["WRITE_LESC"])
            # Only the ATT limit refuses a write here. The registered max_len is not: the
            # core truncates to the attribute's current buffer, which gatts_set_buffer may have
            # grown since registration, as MicroPython's stacks do (they never refuse).
            if len(value) > LIMITS["MAX_ATTR_LEN"]:
                raise att.ATT_Error(att.ATT_INVALID_ATTRIBUTE_LENGTH_ERROR)
            # The core stores the write (truncation, append mode) and the port sends the
            # stored value back (gatts_value), so this copy only bridges that round trip.
            self.values[handle] = bytearray(value)
            self.emit("GATTS_WRITE", connection.handle, handle, bytes(value), 0)

        return att.AttributeValue(read=read, write=write)

    def _check_lesc(self, connection: Connection, needed: int) -> None:
        if needed and not (connection.encryption and connection.sc):
            raise att.ATT_Error(ATT_ERR["INSUFFICIENT_AUTHENTICATION"])

    async def op_gatts_register(self, services: list[Any]) -> list[Any]:
        device = self.dev("gatts_register")
        built: list[tuple[gatt.Service, list[tuple[gatt.Characteristic, list[Any], list[Any]]]]] = []
        boxes: list[tuple[list[int], int, bytes]] = []
        for svc_uuid, chrs in services:
            chr_objs = []
            # max_len is the core's business (it truncates writes to its buffer): not kept here.
            for chr_uuid, flags, _max_len, init, dscs in chrs:
                dsc_objs = []
                dsc_boxes = []
                for dsc_uuid, dflags, _dmax_len, dinit in dscs:
                    box = [0]
                    descriptor = gatt.Descriptor(core.UUID.from_bytes(bytes(dsc_uuid)),
                                                 self._permissions(dflags),
                                                 self._value(box))
                    dsc_objs.append(descriptor)
                    dsc_boxes.append(box)
                    boxes.append((box, dflags, bytes(dinit)))
                box = [0]
                characteristic = gatt.Characteristic(
                    core.UUID.from_bytes(bytes(chr_uuid)),
                    gatt.Characteristic.Properties(flags & 0xFF),
                    self._permissions(flags),
                    self._value(box),
                    descriptors=dsc_objs,
                )
                boxes.append((box, flags, bytes(init)))
                chr_objs.append((characteristic, box, dsc_boxes))
            built.append((gatt.Service(core.UUID.from_bytes(bytes(svc_uuid)),
                                       [c for c, _b, _d in chr_objs]), chr_objs))

        server = device.gatt_server
        server.services.clear()
        server.attributes.clear()
        server.attributes_by_handle.clear()
        device.add_default_services()
        self._apply_gap_values()
        device.add_services([service for service, _chrs in built])

        self.values.clear()
        self.attr_flags.clear()
        result = []
        for service, chr_objs in built:
            chr_results = []
            for characteristic, box, dsc_boxes in chr_objs:
                box[0] = characteristic.handle
                for descriptor, dbox in zip(characteristic.descriptors, dsc_boxes):
                    dbox[0] = descriptor.handle
                cccd = 0
                for attribute in server.attributes[characteristic.handle:
                                                   characteristic.end_group_handle]:
                    if attribute.type == gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR:
                        cccd = attribute.handle
                chr_results.append([characteristic.handle - 1, characteristic.handle, cccd,
                                    [dbox[0] for dbox in dsc_boxes]])
            result.append([service.handle, chr_results])
        for box, flags, init in boxes:
            self.attr_flags[box[0]] = flags
            self.values[box[0]] = bytearray(init)
        return result

    async def op_gatts_value(self, handle: int, data: bytes) -> None:
        if handle not in self.values:
            raise AirError(errno.EINVAL, "gatts_value", f"no local attribute {handle}")
        self.values[handle] = bytearray(data)

    def _local_attribute(self, handle: int, op: str) -> att.Attribute:
        attribute = self.dev(op).gatt_server.get_attribute(handle)
        if attribute is None or handle not in self.values:
            raise AirError(errno.EINVAL, op, f"no local attribute {handle}")
        return attribute

    async def op_gatts_notify(self, conn: int, handle: int, data: Optional[bytes]) -> None:
        device = self.dev("gatts_notify")
        attribute = self._local_attribute(handle, "gatts_notify")
        if conn == CONN_NONE:
            # Send the current value to every subscriber, as its CCCD asks.
            value = bytes(self.values[handle]) if data is None else bytes(data)
            for bearer, cccds in list(device.gatt_server.subscribers.items()):
                cccd = cccds.get(handle)
                if not cccd or len(cccd) != 2 or not isinstance(bearer, Connection):
                    continue
                if cccd[0] & 0x01:
                    await device.notify_subscriber(bearer, attribute, value, force=True)
                elif cccd[0] & 0x02:
                    self._indicate(bearer, attribute, handle, value)
            return
        connection = self.conn(conn, "gatts_notify")
        value = bytes(self.values[handle]) if data is None else bytes(data)
        await device.notify_subscriber(connection, attribute, value, force=True)

    async def op_gatts_indicate(self, conn: int, handle: int, data: Optional[bytes]) -> None:
        attribute = self._local_attribute(handle, "gatts_indicate")
        connection = self.conn(conn, "gatts_indicate")
        value = bytes(self.values[handle]) if data is None else bytes(data)
        self._indicate(connection, attribute, handle, value)

    def _indicate(self, connection: Connection, attribute: att.Attribute, handle: int,
                  value: bytes) -> None:
        device = self.dev("gatts_indicate")

        async def indicate() -> None:
            status = 0
            try:
                await device.indicate_subscriber(connection, attribute, value, force=True)
            except (TimeoutError, asyncio.TimeoutError):
                status = INDICATE_TIMEOUT_STATUS
            except Exception:
                logger.info("%s: indication on %d failed", self.name, connection.handle,
                            exc_info=True)
                status = INDICATE_FAILED_STATUS
            if device.lookup_connection(connection.handle) is connection or status == 0:
                self.emit("GATTS_INDICATE_DONE", connection.handle, handle, status)

        self.spawn(indicate(), "indicate")

    def _hook_read_blob(self, device: Device) -> None:
        # A long read is one Read plus Read Blobs; the host is asked once, on the Read.
        server = device.gatt_server
        original = server.on_att_read_blob_request

        def on_att_read_blob_request(bearer, request):
            token = _in_blob_read.set(True)
            try:
                return original(bearer, request)
            finally:
                _in_blob_read.reset(token)

        server.on_att_read_blob_request = on_att_read_blob_request  # type: ignore[method-assign]

    # -- GATT client ------------------------------------------------------------------------
    def _hook_gatt_client(self, connection: Connection) -> None:
        client = connection.gatt_client
        on_notification = client.on_att_handle_value_notification
        on_indication = client.on_att_handle_value_indication

        def notification(pdu) -> None:
            self.emit("GATTC_NOTIFY", connection.handle, pdu.attribute_handle,
                      bytes(pdu.attribute_value))
            on_notification(pdu)

        def indication(pdu) -> None:
            self.emit("GATTC_INDICATE", connection.handle, pdu.attribute_handle,
                      bytes(pdu.attribute_value))
            on_indication(pdu)

        client.on_att_handle_value_notification = notification  # type: ignore[method-assign]
        client.on_att_handle_value_indication = indication  # type: ignore[method-assign]

    def _gattc(self, conn: int, op: str, done: str, body: Callable[[Connection], Awaitable[None]],
               *done_fields: Any) -> None:
        connection = self.conn(conn, op)

        async def run() -> None:
            status = 0
            try:
                await body(connection)
            except att.ATT_Error as exc:
                status = exc.error_code
            except Exception:
                logger.info("%s: %s on %d failed", self.name, op, conn, exc_info=True)
                status = ATT_ERR["UNLIKELY_ERROR"]
            if device_connection_alive(self, connection):
                self.emit(done, conn, *done_fields, status)

        self.spawn(run(), op)

    async def op_gattc_services(self, conn: int, uuid: Optional[bytes] = None) -> None:
        async def body(connection: Connection) -> None:
            uuids = [core.UUID.from_bytes(bytes(uuid))] if uuid else []
            for service in await connection.gatt_client.discover_services(uuids):
                self.emit("GATTC_SERVICE_RESULT", conn, service.handle, service.end_group_handle,
                          _uuid_bytes(service.uuid))

        self._gattc(conn, "gattc_services", "GATTC_SERVICE_DONE", body)

    async def op_gattc_chars(self, conn: int, start: int, end: int,
                             uuid: Optional[bytes] = None) -> None:
        want = core.UUID.from_bytes(bytes(uuid)) if uuid else None

        async def body(connection: Connection) -> None:
            client = connection.gatt_client
            handle = max(start, 1)
            while handle <= end:
                response = await client.send_request(att.ATT_Read_By_Type_Request(
                    starting_handle=handle, ending_handle=end,
                    attribute_type=gatt.GATT_CHARACTERISTIC_ATTRIBUTE_TYPE))
                if response.op_code == att.Opcode.ATT_ERROR_RESPONSE:
                    if response.error_code != att.ATT_ATTRIBUTE_NOT_FOUND_ERROR:
                        raise att.ATT_Error(response.error_code)
                    return
                if not response.attributes:
                    return
                for decl_handle, value in response.attributes:
                    properties, value_handle = struct.unpack_from("<BH", value)
                    chr_uuid = core.UUID.from_bytes(value[3:])
                    if want is None or chr_uuid == want:
                        self.emit("GATTC_CHARACTERISTIC_RESULT", conn, decl_handle, value_handle,
                                  properties, _uuid_bytes(chr_uuid))
                handle = response.attributes[-1][0] + 1

        self._gattc(conn, "gattc_chars", "GATTC_CHARACTERISTIC_DONE", body)

    async def op_gattc_dscs(self, conn: int, start: int, end: int,
                            uuid: Optional[bytes] = None) -> None:
        want = core.UUID.from_bytes(bytes(uuid)) if uuid else None

        async def body(connection: Connection) -> None:
            if start < 1 or start > end:
                return
            for descriptor in await connection.gatt_client.discover_descriptors(
                    start_handle=start, end_handle=end):
                if want is None or descriptor.type == want:
                    self.emit("GATTC_DESCRIPTOR_RESULT", conn, descriptor.handle,
                              _uuid_bytes(descriptor.type))

        self._gattc(conn, "gattc_dscs", "GATTC_DESCRIPTOR_DONE", body)

    async def op_gattc_read(self, conn: int, handle: int) -> None:
        async def body(connection: Connection) -> None:
            value = await connection.gatt_client.read_value(handle)
            self.emit("GATTC_READ_RESULT", conn, handle, bytes(value))

        self._gattc(conn, "gattc_read", "GATTC_READ_DONE", body, handle)

    async def op_gattc_write(self, conn: int, handle: int, data: bytes, with_response: bool) -> None:
        connection = self.conn(conn, "gattc_write")
        # A Write Request or Command carries at most ATT_MTU - 3 value bytes. Longer data is
        # cut to that, as NimBLE's ATT client does (MicroPython's ble_mtu tests expect it);
        # Bumble would put the oversized PDU on the link as it is.
        value = bytes(data[:connection.att_mtu - 3])
        if not with_response:
            await connection.gatt_client.write_value(handle, value, with_response=False)
            return

        async def body(connection: Connection) -> None:
            await connection.gatt_client.write_value(handle, value, with_response=True)

        self._gattc(conn, "gattc_write", "GATTC_WRITE_DONE", body, handle)

    async def op_gattc_mtu(self, conn: int) -> None:
        connection = self.conn(conn, "gattc_mtu")
        client = connection.gatt_client
        if client.mtu_exchange_done:
            raise AirError(errno.EALREADY, "gattc_mtu", "MTU already exchanged")

        async def exchange() -> None:
            # Bumble's client sets the bearer's MTU itself (Connection.on_att_mtu_update), which
            # emits the one MTU_EXCHANGED of this side; reporting again here would double it.
            await client.request_mtu(min(self.config.mtu, MAX_ATT_MTU))

        self.spawn(exchange(), "MTU exchange")

    # -- L2CAP ------------------------------------------------------------------------------
    def _hook_l2cap(self, device: Device) -> None:
        manager = device.l2cap_channel_manager
        original = manager.on_l2cap_le_credit_based_connection_request

        def on_request(connection, cid, request) -> None:
            server = manager.le_coc_servers.get(request.le_psm)
            if server is None or request.le_psm not in self.l2cap_servers:
                original(connection, cid, request)
                return

            async def ask_then_answer() -> None:
                local_cid = manager.find_free_le_cid(manager.channels.get(connection.handle, {}))
                answer = await self.ask("L2CAP_ACCEPT", connection.handle, local_cid or 0,
                                        request.le_psm, server.mtu, request.mtu)
                if device.lookup_connection(connection.handle) is not connection:
                    return
                if answer.u == 0:
                    original(connection, cid, request)
                    return
                manager.send_control_frame(connection, cid,
                    l2cap.L2CAP_LE_Credit_Based_Connection_Response(
                        identifier=request.identifier, destination_cid=0, mtu=server.mtu,
                        mps=server.mps, initial_credits=0, result=answer.u & 0xFFFF))

            self.spawn(ask_then_answer(), "L2CAP accept")

        manager.on_l2cap_le_credit_based_connection_request = on_request  # type: ignore[method-assign]

    def _channel_opened(self, channel: l2cap.LeCreditBasedChannel) -> None:
        conn, cid = channel.connection.handle, channel.source_cid
        key = (conn, cid)
        self.channels[key] = channel
        channel.sink = lambda sdu: self.emit("L2CAP_RECV", conn, cid, bytes(sdu))

        def closed() -> None:
            if self.channels.pop(key, None) is not None:
                self.stalled.discard(key)
                self.emit("L2CAP_DISCONNECT", conn, cid, channel.psm, 0)

        channel.on(channel.EVENT_CLOSE, closed)
        self.emit("L2CAP_CONNECT", conn, cid, channel.psm, channel.mtu, channel.peer_mtu)

    async def op_l2cap_listen(self, psm: int, mtu: int) -> None:
        device = self.dev("l2cap_listen")
        if psm in self.l2cap_servers:
            raise AirError(errno.EALREADY, "l2cap_listen", f"already listening on PSM {psm}")
        spec = l2cap.LeCreditBasedChannelSpec(psm=psm or None, mtu=max(mtu, 23),
                                              mps=min(L2CAP_MPS, max(mtu, 23)),
                                              max_credits=L2CAP_CREDITS)
        server = device.create_l2cap_server(spec, handler=self._channel_opened)
        self.l2cap_servers[server.psm] = server

    async def op_l2cap_connect(self, conn: int, psm: int, mtu: int) -> None:
        device = self.dev("l2cap_connect")
        connection = self.conn(conn, "l2cap_connect")
        spec = l2cap.LeCreditBasedChannelSpec(psm=psm, mtu=max(mtu, 23),
                                              mps=min(L2CAP_MPS, max(mtu, 23)),
                                              max_credits=L2CAP_CREDITS)

        async def connect() -> None:
            try:
                channel = await device.create_l2cap_channel(connection, spec)
            except l2cap.L2capError as exc:
                self.emit("L2CAP_DISCONNECT", conn, 0, psm, exc.error_code or 0xFFFF)
            except Exception as exc:
                logger.info("%s: L2CAP connect failed: %s", self.name, exc)
                if device_connection_alive(self, connection):
                    self.emit("L2CAP_DISCONNECT", conn, 0, psm, 0xFFFF)
            else:
                self._channel_opened(channel)

        self.spawn(connect(), "L2CAP connect")

    async def op_l2cap_send(self, conn: int, cid: int, data: bytes) -> int:
        key = (conn, cid)
        channel = self.channels.get(key)
        if channel is None:
            self.conn(conn, "l2cap_send")
            raise AirError(errno.EINVAL, "l2cap_send", f"no channel {cid}")
        if key in self.stalled:
            raise AirError(errno.EAGAIN, "l2cap_send", "channel stalled")
        if len(data) > channel.peer_mtu:
            raise AirError(errno.EINVAL, "l2cap_send",
                           f"{len(data)} bytes over the peer MTU {channel.peer_mtu}")
        channel.write(bytes(data))
        if channel.drained.is_set():
            return 0
        self.stalled.add(key)

        async def wait_ready() -> None:
            await channel.drained.wait()
            self.stalled.discard(key)
            if key in self.channels:
                self.emit("L2CAP_SEND_READY", conn, cid, 0)

        self.spawn(wait_ready(), "L2CAP send ready")
        return 1

    async def op_l2cap_disconnect(self, conn: int, cid: int) -> None:
        channel = self.channels.get((conn, cid))
        if channel is None:
            self.conn(conn, "l2cap_disconnect")
            raise AirError(errno.EINVAL, "l2cap_disconnect", f"no channel {cid}")
        self.spawn(channel.disconnect(), "L2CAP disconnect")

    # -- security ---------------------------------------------------------------------------
    def _pairing_config(self, connection: Connection) -> pairing.PairingConfig:
        return pairing.PairingConfig(
            sc=self.config.le_secure,
            mitm=self.config.mitm,
            bonding=self.config.bond,
            delegate=HostPairingDelegate(self, connection, self.config.io),
        )

    def _sec_state(self, connection: Connection) -> list[Any]:
        encrypted = bool(connection.encryption)
        authenticated = encrypted and self.conn_authenticated.get(connection.handle, False)
        bonded = str(connection.peer_address) in self.bonded_peers
        key_size = connection.encryption_key_size if encrypted else 0
        return [encrypted, authenticated, bonded, key_size]

    def _on_encryption_change(self, connection: Connection) -> None:
        if connection.handle in self.pairing:
            return  # reported when pairing completes, with the bond's state

        async def report() -> None:
            # Re-encryption with a stored bond: its key says whether it was authenticated.
            keys = None
            if self.device is not None and self.device.keystore is not None \
                    and str(connection.peer_address) in self.bonded_peers:
                keys = await self.device.keystore.get(str(connection.peer_address))
            ltk = keys and (keys.ltk or keys.ltk_central or keys.ltk_peripheral)
            self.conn_authenticated[connection.handle] = bool(ltk and ltk.authenticated)
            if device_connection_alive(self, connection):
                self.emit("ENCRYPTION_UPDATE", connection.handle, *self._sec_state(connection))

        self.spawn(report(), "encryption update")

    def _on_pairing(self, connection: Connection, keys: PairingKeys) -> None:
        self.pairing.discard(connection.handle)
        ltk = keys.ltk or keys.ltk_central or keys.ltk_peripheral
        self.conn_authenticated[connection.handle] = bool(ltk and ltk.authenticated)
        self.emit("ENCRYPTION_UPDATE", connection.handle, *self._sec_state(connection))

    def _on_pairing_failure(self, connection: Connection, reason: int) -> None:
        self.pairing.discard(connection.handle)
        logger.info("%s: pairing on %d failed: %s", self.name, connection.handle, reason)
        self.emit("ENCRYPTION_UPDATE", connection.handle, *self._sec_state(connection))

    async def op_pair(self, conn: int) -> None:
        connection = self.conn(conn, "pair")
        self.spawn(connection.pair(), "pair")

    async def op_passkey(self, conn: int, action: int, passkey: int) -> None:
        future = self._passkeys.get(conn)
        if future is None or future.done():
            raise AirError(errno.ENOENT, "passkey", f"no passkey request on {conn}")
        future.set_result((action, passkey))

    async def op_erase_bonds(self) -> None:
        device = self.device
        self.bonded_peers.clear()
        store = device.keystore if device is not None else HostKeyStore(self)
        self.spawn(store.delete_all(), "erase bonds")

    async def op_sec_state(self, conn: int) -> list[Any]:
        return self._sec_state(self.conn(conn, "sec_state"))

    async def op_answer(self, kind: int, ref: int, timed_out: bool, found: bool, u: int,
                        data: Optional[bytes] = None) -> None:
        del kind
        future = self._questions.get(ref)
        if future is None or future.done():
            raise AirError(errno.ENOENT, "answer", f"no open question {ref}")
        future.set_result(Answer(bool(timed_out), bool(found), int(u),
                                 bytes(data) if data is not None else None))


def device_connection_alive(board: Board, connection: Connection) -> bool:
    return board.device is not None and board.device.lookup_connection(connection.handle) \
        is connection


# ------------------------------------------------------------------------------------------
# The air process
# ------------------------------------------------------------------------------------------
class Air:
    """Serves boards on a Unix socket; holds the shared link and any in-process peers."""

    def __init__(self, idle_exit: Optional[float] = None) -> None:
        from bumble.link import LocalLink

        self.link = LocalLink()
        self.boards: dict[str, Board] = {}
        self.peers: dict[str, Device] = {}
        self.idle_exit = idle_exit
        self.socket_path: Optional[Path] = None
        self._server: Optional[asyncio.base_events.Server] = None
        self._idle_timer: Optional[asyncio.TimerHandle] = None
        self.closed = asyncio.Event()

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
        self.boards.clear()
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
        _controller, host = _new_controller_and_host(self.link, f"peer:{name}")
        device = Device(name=name, address=address or address_for_name(name), host=host)
        await device.power_on()
        self.peers[name] = device
        return device

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
            writer.close()
            if self._server is not None:
                self._arm_idle_timer()

    def _hello(self, msg: list[Any], writer: asyncio.StreamWriter) -> Optional[Board]:
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
        board = Board(self, name, writer)
        self.boards[name] = board
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        logger.info("board %s joined as %s", name, board.address)
        board.respond(msg[1], 0, list(_addr_fields(board.address)))
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
    args = parser.parse_args(argv)

    log_file = args.log or str(log_path_for(args.socket))
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=log_file, level=logging.DEBUG if args.debug else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("bumble").setLevel(logging.WARNING)

    async def run() -> None:
        air = Air(idle_exit=args.idle_exit)
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
