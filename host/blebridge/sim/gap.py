"""GAP of one board: its address, advertising, scanning, and the life of its LE connections.

Advertising uses one Bumble advertising set (legacy or extended, directed or not); scanning
reports every advertising report raw (SCAN_RESULT), as a controller does. Connections are made
with LE Create Connection and end with PERIPHERAL_/CENTRAL_DISCONNECT; :class:`Gap` is where a
new connection is wired to the other layers (GATT client, security) and where a lost one is
cleaned up in them (L2CAP channels, pairing).
"""
from __future__ import annotations

import asyncio
import errno
import logging
from typing import TYPE_CHECKING, Any, Optional

from bumble import core, hci
from bumble.device import (
    AdvertisingEventProperties,
    AdvertisingParameters,
    AdvertisingSet,
    Connection,
    ConnectionParametersPreferences,
)

from ..protocol import CONSTANTS, LIMITS
from .controller import EVT_CONNECTABLE, EVT_DIRECTED, EVT_LEGACY, EVT_SCAN_RESPONSE, EVT_SCANNABLE
from .port_link import CONN_NONE, AirError, addr_fields

if TYPE_CHECKING:
    from .board import Board

logger = logging.getLogger(__name__)

ADV = CONSTANTS["adv_type"]

#: Longest wait (s) for a just-started connection attempt to reach the controller before a
#: connect_cancel is sent to it (it takes a few loop steps: one HCI command round trip).
CONNECT_START_TIMEOUT_S = 1.0
#: Longest wait (s) for a disconnect op's LL termination to complete.
DISCONNECT_TIMEOUT_S = 5
#: Bounds of a Bumble scan, ms (Core Vol 4 Part E 7.8.64: 2.5 ms .. 10.24 s).
SCAN_INTERVAL_MIN_MS, SCAN_INTERVAL_MAX_MS = 2.5, 10240.0
#: Advertising interval bounds, ms (legacy minimum 20 ms; 10.24 s maximum).
ADV_INTERVAL_MIN_MS, ADV_INTERVAL_MAX_MS = 20.0, 10240.0
#: HCI reasons: remote user terminated (sent to the peer), local host terminated (reported
#: to the side that disconnected), unknown connection identifier (a cancelled connect).
HCI_REMOTE_USER_TERMINATED = 0x13
HCI_LOCAL_HOST_TERMINATED = 0x16
HCI_UNKNOWN_CONNECTION_ID = 0x02


def adv_type_of(event_type: int) -> int:
    """The bb adv_type (schema [constants.adv_type]) of an advertising report's event_type."""
    if not event_type & EVT_LEGACY:
        return ADV["EXT_ADV"]
    if event_type & EVT_SCAN_RESPONSE:
        return ADV["SCAN_RSP"]
    if event_type & EVT_DIRECTED:
        return ADV["ADV_DIRECT_IND"]
    if event_type & EVT_CONNECTABLE:
        return ADV["ADV_IND"]
    if event_type & EVT_SCANNABLE:
        return ADV["ADV_SCAN_IND"]
    return ADV["ADV_NONCONN_IND"]


class Gap:
    """The board's address, advertising set, scan and connection attempts; ops ``op_*``."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.reset()

    def reset(self) -> None:
        self.adv_set: Optional[AdvertisingSet] = None
        self.adv_timer: Optional[asyncio.TimerHandle] = None
        self.scanning = False
        self.scan_timer: Optional[asyncio.TimerHandle] = None
        self.connect_task: Optional[asyncio.Task[None]] = None
        #: Connections this board is disconnecting: reported with HCI_LOCAL_HOST_TERMINATED.
        self.local_disconnects: set[int] = set()

    def stop_timers(self) -> None:
        """Power-down: no advertising or scan timeout fires, no connection attempt goes on."""
        for timer in (self.adv_timer, self.scan_timer):
            if timer is not None:
                timer.cancel()
        if self.connect_task is not None:
            self.connect_task.cancel()

    # -- address ----------------------------------------------------------------------------
    async def op_addr_get(self) -> list[Any]:
        return list(addr_fields(self.board.address))

    async def op_addr_set(self, addr: bytes) -> None:
        board = self.board
        if len(addr) != 6 or addr[5] & 0xC0 != 0xC0:
            raise AirError(errno.EINVAL, "addr_set", "not a static random address")
        if self.adv_set is not None or self.scanning:
            raise AirError(errno.EBUSY, "addr_set", "advertising or scanning")
        board.address = hci.Address(bytes(addr), hci.Address.RANDOM_DEVICE_ADDRESS)
        if board.device is not None:
            board.device.random_address = board.device.static_address = board.address
            await board.device.send_command(
                hci.HCI_LE_Set_Random_Address_Command(random_address=board.address))

    # -- advertising ------------------------------------------------------------------------
    async def op_adv_start(self, interval_us: int, adv_data: bytes, resp_data: bytes,
                           connectable: bool, scannable: bool, extended: bool, timeout_ms: int,
                           tx_power: Optional[int] = None, peer_type: Optional[int] = None,
                           peer_addr: Optional[bytes] = None) -> None:
        board = self.board
        device = board.dev("adv_start")
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
            advertising_tx_power=tx_power if tx_power is not None else board.config.tx_power,
        )
        self.adv_set = await device.create_advertising_set(
            advertising_parameters=params,
            random_address=board.address,
            advertising_data=bytes(adv_data) if not (directed and not extended) else b"",
            scan_response_data=bytes(resp_data) if scannable and not directed else b"",
            auto_start=True,
            auto_restart=False,
        )
        if timeout_ms:
            self.adv_timer = asyncio.get_running_loop().call_later(
                timeout_ms / 1000,
                lambda: board.spawn(self._adv_timed_out(), "advertising timeout"))

    async def _adv_timed_out(self) -> None:
        self.adv_timer = None
        if self.adv_set is not None:
            await self._adv_stop()
            self.board.emit("ADVERTISE_DONE", 0)

    def _take_adv_set(self) -> Optional[AdvertisingSet]:
        """The advertising set (None when there is none), no longer the board's; no timeout."""
        if self.adv_timer is not None:
            self.adv_timer.cancel()
            self.adv_timer = None
        adv_set, self.adv_set = self.adv_set, None
        return adv_set

    async def _adv_stop(self) -> None:
        adv_set = self._take_adv_set()
        if adv_set is not None:
            if adv_set.enabled:
                await adv_set.stop()
            await adv_set.remove()

    async def op_adv_stop(self) -> None:
        self.board.dev("adv_stop")
        await self._adv_stop()

    async def _adv_ended_by_connection(self) -> None:
        adv_set = self._take_adv_set()
        if adv_set is not None:
            await adv_set.remove()
        self.board.emit("ADVERTISE_DONE", 1)

    # -- scanning ---------------------------------------------------------------------------
    async def op_scan_start(self, duration_ms: int, interval_us: int, window_us: int,
                            active: bool, filter_duplicates: bool) -> None:
        board = self.board
        device = board.dev("scan_start")
        if self.scanning:
            await self._scan_stop(report=False)
        interval = min(max(interval_us / 1000, SCAN_INTERVAL_MIN_MS), SCAN_INTERVAL_MAX_MS)
        window = min(max(window_us / 1000, SCAN_INTERVAL_MIN_MS), interval)
        await device.start_scanning(legacy=False, active=active, scan_interval=interval,
                                    scan_window=window, filter_duplicates=filter_duplicates)
        self.scanning = True
        if duration_ms:
            self.scan_timer = asyncio.get_running_loop().call_later(
                duration_ms / 1000, lambda: board.spawn(self._scan_stop(report=True), "scan end"))

    async def _scan_stop(self, report: bool) -> None:
        if self.scan_timer is not None:
            self.scan_timer.cancel()
            self.scan_timer = None
        if not self.scanning:
            return
        self.scanning = False
        if self.board.device is not None:
            await self.board.device.stop_scanning()
        if report:
            self.board.emit("SCAN_DONE")

    async def op_scan_stop(self) -> None:
        self.board.dev("scan_stop")
        await self._scan_stop(report=True)

    def on_advertising_report(self, report) -> None:
        if not self.scanning:
            return
        addr_type, addr = addr_fields(report.address)
        self.board.emit("SCAN_RESULT", addr_type, addr, adv_type_of(report.event_type),
                        report.rssi, bytes(report.data))

    # -- connections ------------------------------------------------------------------------
    async def op_connect(self, peer_type: int, peer_addr: bytes, scan_duration_ms: int,
                         min_interval_us: int = 0, max_interval_us: int = 0, latency: int = 0,
                         supervision_timeout_ms: int = 0) -> None:
        board = self.board
        device = board.dev("connect")
        if self.connect_task is not None:
            raise AirError(errno.EALREADY, "connect", "a connection is already pending")
        # A connect during a scan stops the scan (SCAN_DONE) first, as MicroPython's NimBLE
        # binding and every board port do: a controller does not initiate while scanning.
        await self._scan_stop(report=True)
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
                logger.info("%s: connect to %s ended: %s", board.name, peer, exc)
                board.emit("PERIPHERAL_DISCONNECT", CONN_NONE, peer_type & 1, bytes(peer_addr),
                           reason)
            finally:
                self.connect_task = None

        self.connect_task = board.spawn(connect(), "connect")

    async def op_connect_cancel(self) -> None:
        device = self.board.dev("connect_cancel")
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
        connection = self.board.conn(conn, "disconnect")
        self.local_disconnects.add(conn)
        await asyncio.wait_for(connection.disconnect(HCI_REMOTE_USER_TERMINATED),
                               DISCONNECT_TIMEOUT_S)

    async def op_conn_update(self, conn: int, min_interval_us: int, max_interval_us: int,
                             latency: int, supervision_timeout_ms: int) -> None:
        connection = self.board.conn(conn, "conn_update")
        self.board.spawn(connection.update_parameters(min_interval_us / 1000,
                                                      max_interval_us / 1000,
                                                      latency, supervision_timeout_ms),
                         "connection update")

    def on_connection(self, connection: Connection) -> None:
        """Bumble's EVENT_CONNECTION: wire the new LE connection up and report it."""
        if connection.transport != core.PhysicalTransport.LE:
            return
        board = self.board
        handle = connection.handle
        addr_type, addr = addr_fields(connection.peer_address)
        board.gattc.attach(connection)
        connection.on(connection.EVENT_DISCONNECTION,
                      lambda reason: self._on_disconnection(connection, addr_type, addr, reason))
        connection.on(connection.EVENT_CONNECTION_ATT_MTU_UPDATE,
                      lambda: board.emit("MTU_EXCHANGED", handle, connection.att_mtu))
        connection.on(connection.EVENT_CONNECTION_PARAMETERS_UPDATE,
                      lambda: self._on_parameters_update(connection))
        board.security.attach(connection)
        if connection.role == hci.Role.CENTRAL:
            board.emit("PERIPHERAL_CONNECT", handle, addr_type, addr)
        else:
            board.emit("CENTRAL_CONNECT", handle, addr_type, addr)
            if self.adv_set is not None:
                # The controller stopped the set when the connection came in.
                board.spawn(self._adv_ended_by_connection(), "advertising end")

    def _on_disconnection(self, connection: Connection, addr_type: int, addr: bytes,
                          reason: int) -> None:
        board = self.board
        handle = connection.handle
        if handle in self.local_disconnects:
            self.local_disconnects.discard(handle)
            reason = HCI_LOCAL_HOST_TERMINATED
        board.l2cap.connection_lost(handle)
        board.security.connection_lost(handle)
        if connection.role == hci.Role.CENTRAL:
            board.emit("PERIPHERAL_DISCONNECT", handle, addr_type, addr, reason)
        else:
            board.emit("CENTRAL_DISCONNECT", handle, addr_type, addr, reason)

    def _on_parameters_update(self, connection: Connection) -> None:
        p = connection.parameters
        # Events carry the interval in 1.25 ms units and the supervision timeout in 10 ms.
        self.board.emit("CONNECTION_UPDATE", connection.handle,
                        round(p.connection_interval / 1.25), p.peripheral_latency,
                        round(p.supervision_timeout / 10), 0)
