"""Bumble virtual controller with the quirks that matter to the simulated air fixed.

Stock ``bumble.controller.Controller`` (0.0.236) sends every advertisement as a bare
``AdvExtInd`` (address + data): a scanner cannot tell connectable from non-connectable, legacy
from extended, and it reports the advertising data a second time as a fake scan response even
to a passive scan. LE Create Connection Cancel does nothing, so a central's connection timeout
never completes. See ../../../../shared/design/SIMULATOR-NOTES.md.

``AirController`` fixes this:
- advertising sets send an :class:`AirAdvPdu` carrying the event properties, the scan
  response data and the directed target;
- scanners build honest reports from it: HCI event-type bits as the spec defines them, a scan
  response only for an active scan of a scannable advertiser, directed advertising only to its
  target, duplicates filtered per scan when asked;
- only connectable advertising (to us, when directed) completes a pending LE connection;
- LE Create Connection Cancel completes the pending connection with
  UNKNOWN_CONNECTION_IDENTIFIER, as a real controller does;
- encryption changes are reported with the key size (Encryption Change v2): the stock v1
  event has none, so Bumble's host records 0 bytes for every encrypted link;
- a peer's LL_TERMINATE_IND reaches this controller's host one connection interval after the
  peer sent it, not on the next loop step (fast timing; see
  :meth:`AirController.on_ll_control_pdu`).

On the air's :class:`~blebridge.sim.linklayer.TimedLink` it also has a link layer's timing and
procedures (docs/simulator.md):
- data length extension to 251 octets, started by itself after connecting (LL_LENGTH_REQ/RSP)
  or by LE Set Data Length, reported with LE Data Length Change;
- PHY update (LE Set PHY: LL_PHY_REQ/RSP/UPDATE_IND, LE PHY Update Complete, LE Read PHY);
- real timing: HCI completed packets once a PDU is acknowledged on the air; a disconnect that
  goes out in the next connection event and completes when acknowledged; advertising events
  with advDelay; scanners and initiators that hear only inside their scan window.
A stock controller on the same link still sees our PDUs (``AirAdvPdu`` is an ``AdvExtInd``).

:func:`new_controller_and_host` puts one on the air's link with the Bumble host driving it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from typing import Callable, Optional

from bumble import hci, ll
from bumble.controller import AdvertisingSet, Connection, Controller
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from . import linklayer
from .linklayer import (CODED_S2, CODED_S8, DATA_LENGTH_MAX, DATA_LENGTH_MIN, PHY_1M, PHY_2M,
                        PHY_CODED, LinkConnection)

logger = logging.getLogger(__name__)

_Props = hci.HCI_LE_Set_Extended_Advertising_Parameters_Command.AdvertisingProperties

# HCI LE Extended Advertising Report event_type bits (Core 5.x Vol 4 Part E 7.7.65.13).
EVT_CONNECTABLE = 0x01
EVT_SCANNABLE = 0x02
EVT_DIRECTED = 0x04
EVT_SCAN_RESPONSE = 0x08
EVT_LEGACY = 0x10

#: Unit of LE connection intervals in LL PDUs and HCI commands and events, seconds
#: (Core Vol 6 Part B 4.5.1: 1.25 ms).
CONN_INTERVAL_UNIT_S = 1.25e-3
#: Shortest LE connection interval, 1.25 ms units (7.5 ms): the delay of a terminate on a
#: connection whose interval this controller does not know, and the floor of any other.
CONN_INTERVAL_MIN_UNITS = 6

#: Random delay added to every advertising event, s (advDelay, Core Vol 6 Part B 4.4.2.2.1:
#: 0..10 ms), so two advertisers on one interval do not stay in step.
ADV_DELAY_MAX_S = 10e-3
#: Scan interval and window (0.625 ms units) of a scan whose parameters were never set:
#: Bumble's stock 10 ms / 10 ms, a continuous scan.
SCAN_TIME_UNIT_S = 0.625e-3
#: Largest LL payload and its time this controller supports, octets and us (Vol 6 Part B
#: 4.5.10: 251 octets; 17040 us is 251 octets on LE Coded S=8).
SUPPORTED_MAX_OCTETS, SUPPORTED_MAX_TIME_US = DATA_LENGTH_MAX, 17040
#: Time of a 27-octet LL payload on LE 1M, us: the data length a link starts with.
DEFAULT_MAX_TIME_US = 328
#: HCI LE Set PHY phy_options (Vol 4 Part E 7.8.49): coding preferred on LE Coded.
PHY_OPTION_S2, PHY_OPTION_S8 = 1, 2
#: Every PHY this controller supports, as an HCI PHY bit field (1M, 2M, Coded).
ALL_PHY_BITS = 0b111

#: Encryption key size of an LE link, bytes. Bumble's SMP offers the maximum (16) on both sides
#: and gives the controller the whole 128-bit LTK, so every encrypted link uses 16.
LE_ENCRYPTION_KEY_SIZE = 16


# LL control PDUs the stock link layer lacks (Core Vol 6 Part B 2.4.2.21-2.4.2.24).
@dataclasses.dataclass
class LengthReq(ll.ControlPdu):
    opcode = ll.ControlPdu.Opcode.LL_LENGTH_REQ

    max_rx_octets: int
    max_rx_time: int
    max_tx_octets: int
    max_tx_time: int


@dataclasses.dataclass
class LengthRsp(LengthReq):
    opcode = ll.ControlPdu.Opcode.LL_LENGTH_RSP


@dataclasses.dataclass
class PhyReq(ll.ControlPdu):
    opcode = ll.ControlPdu.Opcode.LL_PHY_REQ

    #: HCI PHY bit fields the sender would transmit / receive on.
    tx_phys: int
    rx_phys: int
    #: LE Coded coding the initiator's host asked for (CODED_S2 / CODED_S8).
    coding: int = CODED_S8


@dataclasses.dataclass
class PhyRsp(PhyReq):
    opcode = ll.ControlPdu.Opcode.LL_PHY_RSP


@dataclasses.dataclass
class PhyUpdateInd(ll.ControlPdu):
    opcode = ll.ControlPdu.Opcode.LL_PHY_UPDATE_IND

    #: HCI PHY numbers chosen for each direction.
    c_to_p_phy: int
    p_to_c_phy: int
    coding: int = CODED_S8
    #: Whether each side's host asked (it gets the event even when nothing changes).
    central_asked: bool = False
    peripheral_asked: bool = False


def _pick_phy(bits: int) -> Optional[int]:
    """The fastest PHY of an HCI PHY bit field (2M, then 1M, then Coded), None if empty."""
    for phy in (PHY_2M, PHY_1M, PHY_CODED):
        if bits & (1 << (phy - 1)):
            return phy
    return None
#: Unit of the extended scan duration, seconds (Vol 4 Part E 7.8.65: 10 ms).
SCAN_DURATION_UNIT_S = 10e-3
#: H4 bytes of HCI LE Scan Timeout (event 0x3E, 1 parameter byte, subevent 0x11), which Bumble
#: has no class for.
LE_SCAN_TIMEOUT_EVENT = bytes([hci.HCI_EVENT_PACKET, hci.HCI_LE_META_EVENT, 1,
                               hci.HCI_LE_SCAN_TIMEOUT_EVENT])


class _RawHciPacket:
    """A packet Bumble cannot build, as the bytes the controller sends (and a name for logs)."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data = data
        self.name = name

    def __bytes__(self) -> bytes:
        return self.data

    def __str__(self) -> str:
        return self.name


@dataclasses.dataclass
class AirAdvPdu(ll.AdvExtInd):
    """An advertising event as the air sees it: what a real radio would let a scanner learn."""

    properties: int = int(_Props.CONNECTABLE_ADVERTISING | _Props.SCANNABLE_ADVERTISING
                          | _Props.USE_LEGACY_ADVERTISING_PDUS)
    scan_response: bytes = b""


class AirAdvertisingSet(AdvertisingSet):
    def _on_extended_advertising_timer_fired(self) -> None:
        link = self.controller.link
        if not getattr(link, "timed", False):
            return super()._on_extended_advertising_timer_fired()
        if not self.enabled:
            return
        self.send_extended_advertising_data()
        # Advertising events at the interval plus advDelay (0..10 ms), as a radio sends them.
        interval = (self.parameters.primary_advertising_interval_min * SCAN_TIME_UNIT_S
                    if self.parameters else 1.0)
        self.timer_handle = asyncio.get_running_loop().call_later(
            max(interval, 20e-3) + random.uniform(0.0, ADV_DELAY_MAX_S),
            self._on_extended_advertising_timer_fired)

    def send_extended_advertising_data(self) -> None:
        if not self.controller.link or self.parameters is None:
            return
        address = self.address
        assert address is not None
        props = int(self.parameters.advertising_event_properties)
        target = self.parameters.peer_address if props & _Props.DIRECTED_ADVERTISING else None
        self.controller.send_advertising_pdu(
            AirAdvPdu(
                advertiser_address=address,
                data=bytes(self.data),
                target_address=target,
                sid=self.parameters.advertising_sid,
                properties=props,
                scan_response=bytes(self.scan_response_data),
            )
        )


class AirController(Controller):
    """Virtual controller used for every device on the air (boards and test peers)."""

    # Data length extension up to 251 octets (the stock controller supports only 27), and
    # ACL buffers of that size, as an nRF52 or ESP32 controller reports them.
    supported_max_tx_octets = supported_max_rx_octets = SUPPORTED_MAX_OCTETS
    supported_max_tx_time = supported_max_rx_time = SUPPORTED_MAX_TIME_US
    le_acl_data_packet_length = SUPPORTED_MAX_OCTETS

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: HCI ACL fragments received from the host for the PDU being assembled, by handle
        #: (their completion is reported when the PDU has been sent: real timing).
        self._acl_fragments: dict[int, int] = {}
        #: HCI ACL packets reported completed, by handle (real timing; see drain_connection).
        self.completed_packets: dict[int, int] = {}
        #: Data length the host asked for on a connection (LE Set Data Length), octets.
        self._wanted_tx_octets: dict[int, int] = {}
        #: Effective data length per connection: (tx octets, rx octets).
        self._data_length: dict[int, tuple[int, int]] = {}
        #: Connections whose host asked for a PHY update not yet reported: handle -> coding.
        self._phy_asked: dict[int, int] = {}
        #: PHYs in use on a connection as this side last reported them: (tx, rx), by handle.
        self._phy_in_use: dict[int, tuple[int, int]] = {}
        #: A central's own LL_PHY_REQ awaiting the peripheral's LL_PHY_RSP, by handle.
        self._central_phy_request: dict[int, PhyReq] = {}
        #: When the current scan (or connection attempt's scan) started, loop time, and its
        #: interval and window in 0.625 ms units.
        self._scan_started = 0.0
        self._scan_timing = (0x10, 0x10)
        self._initiate_started = 0.0
        self._seen_reports: set[tuple[bytes, int]] = set()
        #: Current interval of each LE connection, by handle, 1.25 ms units (the stock
        #: controller keeps none).
        self._intervals: dict[int, int] = {}
        #: Peer terminates not yet delivered, by peer address: (timer, connection, reason).
        self._pending_terminates: dict[hci.Address,
                                       tuple[asyncio.TimerHandle, Connection, int]] = {}
        #: The resolving list a host of its own gave (LE Add Device To Resolving List): peer
        #: identity address -> peer IRK. Kept so tests can see which bonded peers' IRKs reached
        #: the controller; addresses are not resolved with it (nor by the stock controller).
        self.resolving_list: dict[hci.Address, bytes] = {}

    # Advertising ---------------------------------------------------------------------------
    def on_hci_le_set_extended_advertising_parameters_command(self, command):
        handle = command.advertising_handle
        if not isinstance(self.advertising_sets.get(handle), AirAdvertisingSet):
            old = self.advertising_sets.get(handle)
            if old is not None:
                old.stop()
            self.advertising_sets[handle] = AirAdvertisingSet(controller=self, handle=handle)
        return super().on_hci_le_set_extended_advertising_parameters_command(command)

    # Scanning ------------------------------------------------------------------------------
    def on_hci_le_set_extended_scan_parameters_command(self, command):
        # The stock controller forgets the scan type, so every scan would look passive.
        if command.scan_types:
            self.le_scan_type = command.scan_types[0]
            self._scan_timing = (command.scan_intervals[0], command.scan_windows[0])
        return super().on_hci_le_set_extended_scan_parameters_command(command)

    def on_hci_le_set_scan_parameters_command(self, command):
        result = super().on_hci_le_set_scan_parameters_command(command)
        self._scan_timing = (self.le_scan_interval, self.le_scan_window)
        return result

    def on_hci_le_set_extended_scan_enable_command(self, command):
        if command.enable:
            self._seen_reports.clear()
            if not self.le_scan_enable:
                self._scan_started = asyncio.get_running_loop().time()
        self._arm_scan_timeout(command.duration if command.enable else 0)
        return super().on_hci_le_set_extended_scan_enable_command(command)

    def _arm_scan_timeout(self, duration: int) -> None:
        # The stock controller ignores the scan duration (10 ms units, Vol 4 Part E 7.8.65):
        # a host that lets the controller end its scan (NimBLE's extended discovery) would scan
        # for ever. When it elapses, scanning stops and LE Scan Timeout is sent (7.7.65.17).
        timer = getattr(self, "_scan_timer", None)
        if timer is not None:
            timer.cancel()
        self._scan_timer = None
        if duration:
            self._scan_timer = asyncio.get_running_loop().call_later(
                duration * SCAN_DURATION_UNIT_S, self._scan_timed_out)

    def _scan_timed_out(self) -> None:
        self._scan_timer = None
        if self.le_scan_enable:
            self.le_scan_enable = False
            self.send_hci_packet(_RawHciPacket(LE_SCAN_TIMEOUT_EVENT, "HCI_LE_SCAN_TIMEOUT_EVENT"))

    def on_hci_le_set_scan_enable_command(self, command):
        if command.le_scan_enable:
            self._seen_reports.clear()
            if not self.le_scan_enable:
                self._scan_started = asyncio.get_running_loop().time()
        return super().on_hci_le_set_scan_enable_command(command)

    def on_hci_le_create_connection_command(self, command):
        self._initiate_started = asyncio.get_running_loop().time()
        return super().on_hci_le_create_connection_command(command)

    def on_hci_le_extended_create_connection_command(self, command):
        self._initiate_started = asyncio.get_running_loop().time()
        return super().on_hci_le_extended_create_connection_command(command)

    def _listening(self, started: float, interval: int, window: int) -> bool:
        """Whether a scan that started at ``started`` has its window open now.

        A scanner listens ``window`` out of every ``interval`` (0.625 ms units); an advertising
        event outside the window is not heard, as on a radio. Fast timing: always open.
        """
        if not getattr(self.link, "timed", False) or window >= interval:
            return True
        elapsed = asyncio.get_running_loop().time() - started
        return elapsed % (interval * SCAN_TIME_UNIT_S) < window * SCAN_TIME_UNIT_S

    def _initiator_listening(self) -> bool:
        pending = self.pending_le_connection
        if isinstance(pending, hci.HCI_LE_Extended_Create_Connection_Command):
            interval, window = pending.scan_intervals[0], pending.scan_windows[0]
        elif pending is not None:
            interval, window = pending.le_scan_interval, pending.le_scan_window
        else:
            return False
        return self._listening(self._initiate_started, interval, window)

    def _own_addresses(self) -> set[hci.Address]:
        return {self.random_address, self.public_address}

    def on_advertising_pdu(self, pdu) -> None:  # type: ignore[override]
        if isinstance(pdu, AirAdvPdu):
            props = pdu.properties
            scan_response = pdu.scan_response
        else:
            # A stock controller's advertisement: legacy connectable undirected (ADV_IND).
            props = int(_Props.CONNECTABLE_ADVERTISING | _Props.SCANNABLE_ADVERTISING
                        | _Props.USE_LEGACY_ADVERTISING_PDUS)
            scan_response = b""
        target = getattr(pdu, "target_address", None)
        directed = bool(props & _Props.DIRECTED_ADVERTISING)
        if directed and (target is None or target not in self._own_addresses()):
            return  # directed to someone else: neither reported nor connectable for us

        if self.le_scan_enable and self._listening(self._scan_started, *self._scan_timing):
            legacy = bool(props & _Props.USE_LEGACY_ADVERTISING_PDUS)
            event_type = 0
            if props & _Props.CONNECTABLE_ADVERTISING:
                event_type |= EVT_CONNECTABLE
            if props & _Props.SCANNABLE_ADVERTISING:
                event_type |= EVT_SCANNABLE
            if directed:
                event_type |= EVT_DIRECTED
            if legacy:
                event_type |= EVT_LEGACY
            self._report(pdu, event_type, pdu.data, target)
            active = self.le_scan_type == 1
            if active and props & _Props.SCANNABLE_ADVERTISING:
                self._report(pdu, event_type | EVT_SCAN_RESPONSE, scan_response, target)

        pending = self.pending_le_connection
        if (
            pending is not None
            and pending.peer_address == pdu.advertiser_address
            and props & _Props.CONNECTABLE_ADVERTISING
            and self._initiator_listening()
        ):
            self.create_le_connection(pdu.advertiser_address)

    def _report(self, pdu, event_type: int, data: bytes, target) -> None:
        if self.filter_duplicates:
            key = (bytes(pdu.advertiser_address) + bytes([pdu.advertiser_address.address_type]),
                   event_type)
            if key in self._seen_reports:
                return
            self._seen_reports.add(key)
        report = hci.HCI_LE_Extended_Advertising_Report_Event.Report(
            event_type=event_type,
            address_type=pdu.advertiser_address.address_type,
            address=pdu.advertiser_address,
            primary_phy=hci.Phy.LE_1M,
            secondary_phy=0 if event_type & EVT_LEGACY else hci.Phy.LE_1M,
            advertising_sid=pdu.sid if not event_type & EVT_LEGACY else 0xFF,
            tx_power=0x7F,
            rssi=-50,
            periodic_advertising_interval=0,
            direct_address_type=target.address_type if target is not None else 0,
            direct_address=target if target is not None else hci.Address.ANY,
            data=data,
        )
        self.send_hci_packet(hci.HCI_LE_Extended_Advertising_Report_Event([report]))

    # Encryption ----------------------------------------------------------------------------
    def on_le_encryption_change(self, connection: Connection, status: int) -> None:
        # Core Vol 4 Part E 7.7.8.1: the v2 event carries the key size; its host handler
        # stores it on the connection (the v1 handler stores 0).
        enabled = status == hci.HCI_ErrorCode.SUCCESS
        link_connection = self.link_connection(connection)
        if link_connection is not None and enabled:
            link_connection.encrypted = True  # a MIC on every non-empty packet from now on
        if not self._encryption_change_v2_enabled():
            # A host that did not ask for v2 (NimBLE) gets v1 (Vol 4 Part E 7.7.8).
            super().on_le_encryption_change(connection, status)
            return
        self.send_hci_packet(
            hci.HCI_Encryption_Change_V2_Event(
                status=status,
                connection_handle=connection.handle,
                encryption_enabled=int(enabled),
                encryption_key_size=LE_ENCRYPTION_KEY_SIZE if enabled else 0,
            )
        )

    def _encryption_change_v2_enabled(self) -> bool:
        # Set Event Mask Page 2 (Vol 4 Part E 7.3.69): the v2 event is sent only when its bit
        # is set; Bumble's host sets it, NimBLE's does not.
        bit = hci.HCI_Set_Event_Mask_Page_2_Command.mask([hci.HCI_ENCRYPTION_CHANGE_V2_EVENT])
        return bool(self.event_mask_page_2 & int.from_bytes(bit, "little"))

    # Connection ----------------------------------------------------------------------------
    def on_hci_le_create_connection_cancel_command(self, _command):
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        # The command completes first, then the pending connection fails with
        # UNKNOWN_CONNECTION_IDENTIFIER (Core Vol 4 Part E 7.8.13).
        asyncio.get_running_loop().call_soon(self._complete_cancelled_connection, pending)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def create_le_connection(self, peer_address: hci.Address) -> None:
        pending = self.pending_le_connection
        if pending is not None:
            # Connect at the maximum of the range the host asked for, as NimBLE's controller
            # does (ble_ll_conn_hci.c); the stock controller takes the minimum.
            if isinstance(pending, hci.HCI_LE_Extended_Create_Connection_Command):
                pending.connection_interval_mins = list(pending.connection_interval_maxs)
            else:
                pending.connection_interval_min = pending.connection_interval_max
        super().create_le_connection(peer_address)
        if pending is None or self.pending_le_connection is not None:
            return  # refused: a connection to that peer exists already
        connection = self.le_connections.get(pending.peer_address)
        if connection is None:
            return
        self._route_acl_from_own_address(connection)
        # The interval the stock controller puts in its CONNECT_IND and Connection Complete
        # (the maximum, set above).
        if isinstance(pending, hci.HCI_LE_Extended_Create_Connection_Command):
            interval = pending.connection_interval_mins[0]
            latency, timeout = pending.max_latencies[0], pending.supervision_timeouts[0]
        else:
            interval = pending.connection_interval_min
            latency, timeout = pending.max_latency, pending.supervision_timeout
        self._intervals[connection.handle] = interval
        open_connection = getattr(self.link, "open_connection", None)
        if open_connection is not None:
            open_connection(self, connection.self_address, connection.peer_address, interval,
                            latency, timeout)
        self._connection_established(connection)

    def on_le_connect_ind(self, packet: ll.ConnectInd) -> None:
        if self._advertises_as(packet.advertiser_address):
            # The central reported its old link to us closed before connecting again, so a
            # real peripheral has had its terminate by now: keep that order.
            self._deliver_terminate(packet.initiator_address)
        before = self.le_connections.get(packet.initiator_address)
        super().on_le_connect_ind(packet)
        connection = self.le_connections.get(packet.initiator_address)
        if connection is not None and connection is not before:
            self._intervals[connection.handle] = packet.interval
            self._connection_established(connection)
            self._route_acl_from_own_address(connection)

    def _advertises_as(self, address: hci.Address) -> bool:
        legacy = self.le_legacy_advertiser
        if legacy.enabled and legacy.address == address:
            return True
        return any(s.enabled and s.address == address for s in self.advertising_sets.values())

    def shut_down(self) -> None:
        """Radio off for good (its board powered down or left): no advertising set, legacy
        advertiser, scan or connection attempt goes on. Their timers would otherwise keep
        sending advertising PDUs on the link after the controller has left it (a central then
        connected to that ghost of a reset board, which never saw the connection)."""
        self.stop_activities()

    # Link layer state and flow control --------------------------------------------------------
    def link_connection(self, connection: Connection) -> Optional[LinkConnection]:
        """The air's link layer state of ``connection`` (None on a link without it)."""
        between = getattr(self.link, "connection_between", None)
        if between is None:
            return None
        return between(connection.self_address, connection.peer_address)[0]

    def _timed(self) -> bool:
        return bool(getattr(self.link, "timed", False))

    def on_hci_acl_data_packet(self, packet: hci.HCI_AclDataPacket) -> None:
        if not self._timed():
            return super().on_hci_acl_data_packet(packet)
        connection = self.find_connection_by_handle(packet.connection_handle)
        if connection is None:
            logger.warning("[%s] ACL data for unknown handle 0x%04X", self.name,
                           packet.connection_handle)
            return
        # Completion is reported when the PDU has gone over the air (acl_pdu_acked_callback),
        # not now: the host's flow control then follows the radio's pace.
        self._acl_fragments[connection.handle] = self._acl_fragments.get(connection.handle, 0) + 1
        connection.assembler.feed_packet(packet)

    def acl_pdu_acked_callback(self, connection: Connection) -> Optional[Callable[[], None]]:
        """For the link: what to call once the PDU just assembled on ``connection`` is acked."""
        fragments = self._acl_fragments.pop(connection.handle, 0)
        if not fragments:
            return None

        def acked() -> None:
            self.completed_packets[connection.handle] = \
                self.completed_packets.get(connection.handle, 0) + fragments
            if self.le_connections.get(connection.peer_address) is connection:
                self.send_hci_packet(hci.HCI_Number_Of_Completed_Packets_Event(
                    connection_handles=[connection.handle], num_completed_packets=[fragments]))
        return acked

    def _connection_established(self, connection: Connection) -> None:
        # A controller with a suggested data length over 27 octets starts the Data Length
        # Update procedure itself once connected (Vol 6 Part B 5.1.9), as NimBLE's and
        # Zephyr's do; Bumble's host suggests 251.
        self._data_length[connection.handle] = (DATA_LENGTH_MIN, DATA_LENGTH_MIN)
        if self.suggested_max_tx_octets > DATA_LENGTH_MIN:
            asyncio.get_running_loop().call_soon(self._start_length_update, connection)

    # Data length update (Vol 6 Part B 5.1.9) ---------------------------------------------------
    def _own_tx_octets(self, connection: Connection) -> int:
        wanted = self._wanted_tx_octets.get(connection.handle, self.suggested_max_tx_octets)
        return max(DATA_LENGTH_MIN, min(wanted, self.supported_max_tx_octets))

    def _length_pdu(self, cls, connection: Connection):
        return cls(max_rx_octets=self.supported_max_rx_octets,
                   max_rx_time=self.supported_max_rx_time,
                   max_tx_octets=self._own_tx_octets(connection),
                   max_tx_time=self.supported_max_tx_time)

    def _start_length_update(self, connection: Connection) -> None:
        if self.le_connections.get(connection.peer_address) is connection:
            connection.send_ll_control_pdu(self._length_pdu(LengthReq, connection))

    def on_hci_le_set_data_length_command(self, command: hci.HCI_LE_Set_Data_Length_Command):
        connection = self.find_le_connection_by_handle(command.connection_handle)
        if connection is None:
            return hci.HCI_StatusAndConnectionHandleReturnParameters(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=command.connection_handle)
        if not DATA_LENGTH_MIN <= command.tx_octets <= DATA_LENGTH_MAX:
            return hci.HCI_StatusAndConnectionHandleReturnParameters(
                status=hci.HCI_ErrorCode.INVALID_HCI_COMMAND_PARAMETERS_ERROR,
                connection_handle=command.connection_handle)
        self._wanted_tx_octets[connection.handle] = command.tx_octets
        asyncio.get_running_loop().call_soon(self._start_length_update, connection)
        return hci.HCI_StatusAndConnectionHandleReturnParameters(
            status=hci.HCI_ErrorCode.SUCCESS, connection_handle=command.connection_handle)

    def _apply_length(self, connection: Connection, peer: LengthReq) -> None:
        tx = max(DATA_LENGTH_MIN, min(self._own_tx_octets(connection), peer.max_rx_octets))
        rx = max(DATA_LENGTH_MIN, min(self.supported_max_rx_octets, peer.max_tx_octets))
        link_connection = self.link_connection(connection)
        if link_connection is not None:
            link_connection.max_tx_octets[link_connection.side_of(self)] = tx
        if self._data_length.get(connection.handle) == (tx, rx):
            return  # unchanged: no event (Vol 4 Part E 7.7.65.7)
        self._data_length[connection.handle] = (tx, rx)
        phy = PHY_1M if link_connection is None else link_connection.phy[
            link_connection.side_of(self)]
        self.send_hci_packet(hci.HCI_LE_Data_Length_Change_Event(
            connection_handle=connection.handle,
            max_tx_octets=tx, max_tx_time=self._octets_time_us(tx, phy),
            max_rx_octets=rx, max_rx_time=self._octets_time_us(rx, phy)))

    @staticmethod
    def _octets_time_us(octets: int, phy: int) -> int:
        # The time of an LL payload of ``octets`` with its MIC (Vol 6 Part B 4.5.10).
        return int(linklayer.packet_air_time_us(octets + linklayer.MIC_OCTETS, phy))

    # PHY update (Vol 6 Part B 5.1.10) ----------------------------------------------------------
    def _phy_prefs(self) -> tuple[int, int]:
        """This side's PHY preferences (tx bits, rx bits) from LE Set Default PHY."""
        all_phys = self.default_phy.get("all_phys", 0)
        tx = ALL_PHY_BITS if all_phys & 1 or not self.default_phy.get("tx_phys") \
            else self.default_phy["tx_phys"]
        rx = ALL_PHY_BITS if all_phys & 2 or not self.default_phy.get("rx_phys") \
            else self.default_phy["rx_phys"]
        return tx, rx

    def on_hci_le_set_phy_command(self, command: hci.HCI_LE_Set_PHY_Command) -> None:
        connection = self.find_le_connection_by_handle(command.connection_handle)
        if connection is None:
            self._send_hci_command_status(hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                                          command.op_code)
            return None
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
        tx = ALL_PHY_BITS if command.all_phys & 1 or not command.tx_phys else command.tx_phys
        rx = ALL_PHY_BITS if command.all_phys & 2 or not command.rx_phys else command.rx_phys
        coding = CODED_S2 if command.phy_options == PHY_OPTION_S2 else CODED_S8
        self._phy_asked[connection.handle] = coding
        request = PhyReq(tx_phys=tx, rx_phys=rx, coding=coding)
        if connection.role == hci.Role.CENTRAL:
            self._central_phy_request[connection.handle] = request
        connection.send_ll_control_pdu(request)
        return None

    def _send_phy_update(self, connection: Connection, central: PhyReq, peripheral: PhyReq,
                         peripheral_asked: bool) -> None:
        c_to_p = _pick_phy(central.tx_phys & peripheral.rx_phys) or PHY_1M
        p_to_c = _pick_phy(peripheral.tx_phys & central.rx_phys) or PHY_1M
        coding = central.coding if connection.handle in self._phy_asked else peripheral.coding
        indication = PhyUpdateInd(c_to_p_phy=c_to_p, p_to_c_phy=p_to_c, coding=coding,
                                  central_asked=connection.handle in self._phy_asked,
                                  peripheral_asked=peripheral_asked)
        connection.send_ll_control_pdu(indication)
        # The central switches at the instant, which is when its indication reaches the peer:
        # it reports then (see _on_phy_update_sent).
        link_connection = self.link_connection(connection)
        if link_connection is None or not link_connection.link.timed:
            self._phy_updated(connection, indication, central_side=True)
        else:
            link_connection.on_phy_update_sent = lambda: self._phy_updated(
                connection, indication, central_side=True)

    def _phy_updated(self, connection: Connection, indication: PhyUpdateInd,
                     central_side: bool) -> None:
        if self.le_connections.get(connection.peer_address) is not connection:
            return
        link_connection = self.link_connection(connection)
        if link_connection is not None:
            link_connection.phy = [indication.c_to_p_phy, indication.p_to_c_phy]
            link_connection.coding = [indication.coding, indication.coding]
        asked = indication.central_asked if central_side else indication.peripheral_asked
        self._phy_asked.pop(connection.handle, None)
        tx, rx = ((indication.c_to_p_phy, indication.p_to_c_phy) if central_side
                  else (indication.p_to_c_phy, indication.c_to_p_phy))
        # Each side compares with what it used before (the link's state is shared).
        changed = self._phy_in_use.get(connection.handle, (PHY_1M, PHY_1M)) != (tx, rx)
        self._phy_in_use[connection.handle] = (tx, rx)
        if changed or asked:
            self.send_hci_packet(hci.HCI_LE_PHY_Update_Complete_Event(
                status=hci.HCI_ErrorCode.SUCCESS, connection_handle=connection.handle,
                tx_phy=tx, rx_phy=rx))

    def on_hci_le_read_phy_command(self, command: hci.HCI_LE_Read_PHY_Command):
        connection = self.find_le_connection_by_handle(command.connection_handle)
        link_connection = self.link_connection(connection) if connection is not None else None
        if link_connection is None:
            return super().on_hci_le_read_phy_command(command)
        side = link_connection.side_of(self)
        return hci.HCI_LE_Read_PHY_ReturnParameters(
            status=hci.HCI_ErrorCode.SUCCESS, connection_handle=command.connection_handle,
            tx_phy=link_connection.phy[side], rx_phy=link_connection.phy[1 - side])

    def _on_link_procedure_pdu(self, connection: Connection, packet: ll.ControlPdu) -> bool:
        """Data length and PHY update PDUs; False for any other PDU."""
        if isinstance(packet, LengthRsp):
            self._apply_length(connection, packet)
        elif isinstance(packet, LengthReq):
            connection.send_ll_control_pdu(self._length_pdu(LengthRsp, connection))
            self._apply_length(connection, packet)
        elif isinstance(packet, PhyRsp):
            # Only a central gets a response (the peripheral answers its request).
            own = self._central_phy_request.pop(connection.handle, None)
            if own is None:
                tx, rx = self._phy_prefs()
                own = PhyReq(tx_phys=tx, rx_phys=rx)
            self._send_phy_update(connection, own, packet, peripheral_asked=False)
        elif isinstance(packet, PhyReq):
            tx, rx = self._phy_prefs()
            if connection.role == hci.Role.CENTRAL:
                # The peripheral asked: the central decides at once (no LL_PHY_RSP).
                own = PhyReq(tx_phys=tx, rx_phys=rx)
                self._send_phy_update(connection, own, packet, peripheral_asked=True)
            else:
                # The peripheral answers with its preferences; if its host asked too, the
                # central answers that request with an indication of its own (either way this
                # host gets one PHY Update Complete per request it made).
                connection.send_ll_control_pdu(PhyRsp(tx_phys=tx, rx_phys=rx,
                                                      coding=packet.coding))
        elif isinstance(packet, PhyUpdateInd):
            self._phy_updated(connection, packet, central_side=False)
        else:
            return False
        return True

    def on_hci_disconnect_command(self, command: hci.HCI_Disconnect_Command) -> None:
        # Real timing: LL_TERMINATE_IND goes out at the next connection event and this side
        # reports the link down once the peer has acknowledged it (Vol 6 Part B 5.1.3.1), not
        # at once as the stock controller does: a central cannot reconnect before its old
        # link is down on the peripheral.
        connection = self.find_le_connection_by_handle(command.connection_handle)
        link_connection = self.link_connection(connection) if connection is not None else None
        if connection is None or link_connection is None or not self._timed():
            return super().on_hci_disconnect_command(command)
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
        reason = command.reason

        def acknowledged() -> None:
            if self.le_connections.get(connection.peer_address) is connection:
                self.on_le_disconnected(connection, reason)

        self.link.send_ll_control_pdu(connection.self_address, connection.peer_address,
                                      ll.TerminateInd(reason), acked=acknowledged)
        return None

    def on_hci_le_connection_update_command(
            self, command: hci.HCI_LE_Connection_Update_Command) -> None:
        super().on_hci_le_connection_update_command(command)
        # The stock controller applies the maximum at once, on both sides.
        self._set_interval(command.connection_handle, command.connection_interval_max)

    def on_hci_le_connection_rate_request_command(
            self, command: hci.HCI_LE_Connection_Rate_Request_Command) -> None:
        super().on_hci_le_connection_rate_request_command(command)
        self._set_interval(command.connection_handle, command.connection_interval_max)

    def _set_interval(self, handle: int, interval: int) -> None:
        connection = self.find_le_connection_by_handle(handle)
        if connection is not None:
            self._intervals[handle] = interval
            link_connection = self.link_connection(connection)
            if link_connection is not None:
                # Real timing: from the event that carries the LL_CONNECTION_UPDATE_IND.
                link_connection.set_interval_now(interval)

    def connection_interval_s(self, connection: Connection) -> float:
        """The current interval of ``connection``, seconds (7.5 ms when unknown)."""
        units = self._intervals.get(connection.handle, CONN_INTERVAL_MIN_UNITS)
        return max(units, CONN_INTERVAL_MIN_UNITS) * CONN_INTERVAL_UNIT_S

    def on_ll_control_pdu(self, sender_address: hci.Address, packet: ll.ControlPdu) -> None:
        # On a radio, LL_TERMINATE_IND goes out at the terminating side's next connection
        # event, so the peer's Disconnection Complete comes at least one connection interval
        # (7.5 ms .. 4 s; 15 ms with Bumble's defaults) after the local one. The stock link
        # delivers it on the next loop step, about 1 ms later: a central that disconnects
        # right after its write is answered then beats the peripheral's own reaction to that
        # write. So in fast timing a terminate waits one interval of its connection; everything
        # else stays immediate there. In real timing every PDU, this one included, has already
        # come in a connection event (linklayer), so it is applied at once. Meanwhile the link
        # is up on this side only: data from this side is dropped by the peer, as after a real
        # terminate.
        if isinstance(packet, ll.TerminateInd):
            self._terminate_later(sender_address, packet.error_code)
            return
        connection = self.le_connections.get(sender_address)
        if connection is not None and self._on_link_procedure_pdu(connection, packet):
            return
        super().on_ll_control_pdu(sender_address, packet)
        if isinstance(packet, (ll.ConnectionUpdateInd, ll.ConnectionRateInd)):
            connection = self.le_connections.get(sender_address)
            if connection is not None:
                self._intervals[connection.handle] = packet.interval

    def _terminate_later(self, sender_address: hci.Address, reason: int) -> None:
        self._deliver_terminate(sender_address)  # an older one from that peer goes first
        connection = self.le_connections.get(sender_address)
        if connection is None:
            # Both sides terminated at once: ours has already ended the link here.
            logger.debug("[%s] terminate from %s: no connection", self.name, sender_address)
            return
        # Real timing: the terminate came in a connection event already; fast timing: it
        # waits one interval here.
        delay = 0.0 if self._timed() else self.connection_interval_s(connection)
        timer = asyncio.get_running_loop().call_later(
            delay, self._deliver_terminate, sender_address)
        self._pending_terminates[sender_address] = (timer, connection, reason)

    def _deliver_terminate(self, sender_address: hci.Address) -> None:
        pending = self._pending_terminates.pop(sender_address, None)
        if pending is None:
            return
        timer, connection, reason = pending
        timer.cancel()
        # Our host may have disconnected the link itself meanwhile: then it is gone already.
        if self.le_connections.get(sender_address) is connection:
            self.on_le_disconnected(connection, reason)

    def on_le_disconnected(self, connection: Connection, reason: int) -> None:
        super().on_le_disconnected(connection, reason)
        for table in (self._intervals, self._acl_fragments, self._wanted_tx_octets,
                      self.completed_packets, self._data_length, self._phy_asked,
                      self._central_phy_request, self._phy_in_use):
            table.pop(connection.handle, None)

    def _complete_cancelled_connection(self, pending) -> None:
        self.send_hci_packet(
            hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=pending.peer_address_type,
                peer_address=pending.peer_address,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
        )


    # A bare controller driven by a board's own host (hci_server.py) ------------------------
    #: True for a controller whose host is not Bumble's (hci_server.py sets it): the fixes
    #: below that only such a host needs are limited to it.
    own_host = False

    def on_hci_le_enable_encryption_command(self, command):
        # The stock controller sends LL_ENC_REQ at once, so the peer's keys (SMP key
        # distribution right after its Encryption Change) can reach the host within the same
        # millisecond as the Command Status. NimBLE handles the HCI command inside its loop over
        # queued ACL data: the keys then overtake the Encryption Change event and its pairing
        # fails ("proc not found" in key exchange, SMP Pairing Failed 0x08). On a radio the
        # request goes out at the next connection event: so it does here, one connection
        # interval after the Command Status.
        connection = self.find_le_connection_by_handle(command.connection_handle)
        if not self.own_host or self.link is None or connection is None:
            return super().on_hci_le_enable_encryption_command(command)
        self._send_hci_command_status(hci.HCI_COMMAND_STATUS_PENDING, command.op_code)
        request = ll.EncReq(rand=command.random_number, ediv=command.encrypted_diversifier,
                            ltk=command.long_term_key)

        def send() -> None:
            if self.le_connections.get(connection.peer_address) is connection:
                connection.send_ll_control_pdu(request)

        asyncio.get_running_loop().call_later(self.connection_interval_s(connection), send)

    # Privacy ------------------------------------------------------------------------------
    def on_hci_le_add_device_to_resolving_list_command(self, command):
        self.resolving_list[command.peer_identity_address] = bytes(command.peer_irk)
        return super().on_hci_le_add_device_to_resolving_list_command(command)

    def on_hci_le_clear_resolving_list_command(self, command):
        self.resolving_list.clear()
        return super().on_hci_le_clear_resolving_list_command(command)

    # Reset and removal (a bare controller driven by a board's own host: hci_server.py) -----
    def on_hci_reset_command(self, _command):
        # The stock controller's Reset changes nothing. A host of its own (NimBLE resets at
        # every start and at ble_hs_stop) expects what Core Vol 4 Part E 7.3.2 says: no
        # advertising, scanning, initiating or connection left, without events for them (the
        # peers lose the link as after a supervision timeout).
        self.stop_activities()
        self.drop_all_connections(hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR, report=False)
        self.resolving_list.clear()
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def _route_acl_from_own_address(self, connection: Connection) -> None:
        # The stock link sends LE ACL data from the sender controller's *random* address, so a
        # device whose connection uses its public address (a board with its own host: NimBLE
        # uses the controller's public address by default) is unknown to the receiving peer
        # ("no connection for 00:00:00:00:00:00") and every ATT/L2CAP byte it sends is lost.
        # Such a connection hands its reassembled PDUs to the peer's controller from the address
        # it connected with. Connections from the random address keep the stock path.
        if connection.self_address == self.random_address:
            return

        def send(pdu: bytes) -> None:
            link = self.link
            timed = getattr(link, "connection_between", None)
            if timed is not None and timed(connection.self_address,
                                           connection.peer_address)[0] is not None:
                # The timed link sends from the connection's own address, in connection events.
                link.send_acl_data(self, connection.peer_address, connection.transport, pdu)
                return
            peer = link.find_le_controller(connection.peer_address) if link else None
            if peer is not None:
                asyncio.get_running_loop().call_soon(
                    peer.on_link_acl_data, connection.self_address, connection.transport, pdu)

        connection.assembler = hci.HCI_AclDataPacketAssembler(send)

    def stop_activities(self) -> None:
        """Advertising (legacy and every set), scanning and a pending connection end."""
        self.le_legacy_advertiser.stop()
        for advertising_set in list(self.advertising_sets.values()):
            advertising_set.stop()
        self.advertising_sets.clear()
        self.le_scan_enable = False
        self._arm_scan_timeout(0)
        self.pending_le_connection = None
        self._seen_reports.clear()

    def drop_all_connections(self, reason: int, report: bool = True) -> None:
        """End every LE connection: each peer gets LL_TERMINATE_IND with ``reason``; our own
        host gets Disconnection Complete only when ``report``."""
        for connection in list(self.le_connections.values()):
            if self.link:
                connection.send_ll_control_pdu(ll.TerminateInd(reason))
            if report:
                self.on_le_disconnected(connection, reason)
            else:
                self.le_connections.pop(connection.peer_address, None)
                self._intervals.pop(connection.handle, None)


def new_controller_and_host(link: LocalLink, name: str) -> tuple[AirController, Host]:
    """An :class:`AirController` on ``link`` and the Bumble host that drives it (for a Device)."""
    controller = AirController(name, link=link)
    host = Host(controller, AsyncPipeSink(controller))
    return controller, host
