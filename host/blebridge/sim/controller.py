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
  peer sent it, not on the next loop step (see :meth:`AirController.on_ll_control_pdu`).
A stock controller on the same link still sees our PDUs (``AirAdvPdu`` is an ``AdvExtInd``).

:func:`new_controller_and_host` puts one on the air's link with the Bumble host driving it.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging

from bumble import hci, ll
from bumble.controller import AdvertisingSet, Connection, Controller
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

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

#: Encryption key size of an LE link, bytes. Bumble's SMP offers the maximum (16) on both sides
#: and gives the controller the whole 128-bit LTK, so every encrypted link uses 16.
LE_ENCRYPTION_KEY_SIZE = 16


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

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
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
        return super().on_hci_le_set_extended_scan_parameters_command(command)

    def on_hci_le_set_extended_scan_enable_command(self, command):
        if command.enable:
            self._seen_reports.clear()
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
        return super().on_hci_le_set_scan_enable_command(command)

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

        if self.le_scan_enable:
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
        super().create_le_connection(peer_address)
        if pending is None or self.pending_le_connection is not None:
            return  # refused: a connection to that peer exists already
        connection = self.le_connections.get(pending.peer_address)
        if connection is None:
            return
        self._route_acl_from_own_address(connection)
        # The interval the stock controller puts in its CONNECT_IND and Connection Complete.
        if isinstance(pending, hci.HCI_LE_Extended_Create_Connection_Command):
            self._intervals[connection.handle] = pending.connection_interval_mins[0]
        else:
            self._intervals[connection.handle] = pending.connection_interval_min

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
            self._route_acl_from_own_address(connection)

    def _advertises_as(self, address: hci.Address) -> bool:
        legacy = self.le_legacy_advertiser
        if legacy.enabled and legacy.address == address:
            return True
        return any(s.enabled and s.address == address for s in self.advertising_sets.values())

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
        if self.find_le_connection_by_handle(handle) is not None:
            self._intervals[handle] = interval

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
        # write. So a terminate waits one interval of its connection. Everything else (ACL
        # data, encryption, parameter updates) stays immediate: data throughput depends on it,
        # and no test has been seen to race on the others. Meanwhile the link is up on this
        # side only: data from this side is dropped by the peer, as after a real terminate.
        if isinstance(packet, ll.TerminateInd):
            self._terminate_later(sender_address, packet.error_code)
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
        timer = asyncio.get_running_loop().call_later(
            self.connection_interval_s(connection), self._deliver_terminate, sender_address)
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
        self._intervals.pop(connection.handle, None)

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
