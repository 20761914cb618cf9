"""The link layer's timing on the simulated air: connection events, air time, flow control.

Bumble's ``LocalLink`` hands every ACL PDU and LL control PDU to the peer controller on the
next loop step, whatever the connection interval: a write with response took a few ms and
notify throughput was twice what LE 2M carries. :class:`TimedLink` replaces it. In the default
``real`` timing (:data:`TIMING_REAL`) each LE connection is a :class:`LinkConnection` that moves
data only in connection events, as Core 5.x Vol 6 Part B 4.5 describes:

- events at ``anchor + k * interval`` (the interval the central chose, and the one of a
  connection update from the event after its LL_CONNECTION_UPDATE_IND was sent);
- in an event the central and the peripheral take turns, each packet taking its air time at the
  sender's PHY (:func:`packet_air_time_us`) with T_IFS (150 us) between packets; a side with
  nothing to send answers with an empty PDU (its acknowledgement); the event goes on while a
  side has more data (MD) and the next packet pair ends before the event-length limit
  (the interval minus T_IFS: :data:`EVENT_END_GUARD_US`);
- a PDU longer than the negotiated data length (27..251 octets, LL_LENGTH_REQ/RSP) is sent in
  fragments, one per packet; it reaches the peer when its last fragment has;
- the sending host learns a PDU has gone (HCI Number Of Completed Packets) once its last
  fragment is acknowledged, so the host's own flow control meets the radio's pace;
- connection events with nothing to send cost nothing (no timer runs), and a PDU queued at
  wall-clock time T waits for the first event at or after T.

Virtual timeline: event times are computed from the anchor, never from when a timer actually
fired. When the air's process is late (a loaded machine), due events run at once, one after
the other, with their own (past) times, so lateness delays delivery but is never added to the
timeline and never ends a connection. Only a peer that left the air does
(:meth:`LinkConnection.peer_lost`: supervision timeout, reason 0x08).

``fast`` timing (:data:`TIMING_FAST`) keeps Bumble's zero-latency delivery, for tests that only
check logic; the PHY and data-length procedures still run (they report HCI events either way).
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import math
import os
from typing import TYPE_CHECKING, Callable, Optional

from bumble import core, hci, ll
from bumble.link import LocalLink

if TYPE_CHECKING:
    from bumble.controller import Controller

logger = logging.getLogger(__name__)

#: Air timing modes: ``real`` (connection events, air time) or ``fast`` (Bumble's next-step
#: delivery). Chosen per air: ``--timing``, else env BLEBRIDGE_SIM_TIMING, else real.
TIMING_REAL = "real"
TIMING_FAST = "fast"
TIMINGS = (TIMING_REAL, TIMING_FAST)
TIMING_ENV = "BLEBRIDGE_SIM_TIMING"

#: Connection interval range a board's central asks for when its script names none, ms.
#: MicroPython's NimBLE binding (extmod/nimble/modbluetooth_nimble.c,
#: mp_bluetooth_gap_peripheral_connect) passes NimBLE's BLE_GAP_INITIAL_CONN_ITVL_MIN/MAX,
#: 30 and 50 ms (nimble/host/include/host/ble_gap.h), and NimBLE's controller connects at the
#: maximum (nimble/controller/src/ble_ll_conn_hci.c), as the air's controller does: 50 ms, so a
#: write with response takes one to two intervals (50..100 ms) as on such a board.
DEFAULT_CONN_INTERVAL_MS = (30.0, 50.0)
#: Env var an air reads when started without ``--conn-interval``: the interval (ms, 7.5..4000)
#: of a connect that names none, for test runs that do not care about the radio's pace.
CONN_INTERVAL_ENV = "BLEBRIDGE_SIM_CONN_INTERVAL_MS"
#: Connection interval bounds, ms (Vol 4 Part E 7.8.12: 7.5 ms .. 4 s).
CONN_INTERVAL_MIN_MS, CONN_INTERVAL_MAX_MS = 7.5, 4000.0

#: Inter-frame space between two packets of a connection event, us (Core Vol 6 Part B 4.1.1).
T_IFS_US = 150.0
#: The last packet of an event ends at least this long before the next anchor, us: the event
#: length this controller allows is the whole interval less one T_IFS.
EVENT_END_GUARD_US = T_IFS_US
#: First connection event after the CONNECT_IND, s: transmitWindowDelay (1.25 ms) plus the
#: smallest transmit window (1.25 ms), Vol 6 Part B 4.5.3.
FIRST_EVENT_DELAY_S = 2.5e-3
#: Unit of connection intervals (1.25 ms) and supervision timeouts (10 ms), s.
INTERVAL_UNIT_S = 1.25e-3
TIMEOUT_UNIT_S = 10e-3
#: Supervision timeout used when a connection's is unknown (Bumble's default 720 ms), s.
DEFAULT_SUPERVISION_TIMEOUT_S = 0.72
#: HCI reason a lost peer's connection ends with (Vol 1 Part F 2.8).
CONNECTION_TIMEOUT = 0x08

#: Data channel PDU octets besides the payload (Vol 6 Part B 2.1 and 2.4): access address (4),
#: header (2), CRC (3); the preamble is 1 octet on LE 1M and 2 on LE 2M. A MIC (4) follows
#: a non-empty payload on an encrypted link.
ACCESS_ADDRESS_OCTETS, HEADER_OCTETS, CRC_OCTETS, MIC_OCTETS = 4, 2, 3, 4
PREAMBLE_OCTETS = {1: 1, 2: 2}
#: Microseconds per octet: LE 1M 1 Mbit/s, LE 2M 2 Mbit/s.
US_PER_OCTET = {1: 8.0, 2: 4.0}
#: LE Coded (Vol 6 Part B 2.2 and Part A 3.5): preamble 80 us, access address 256 us, CI 16 us,
#: TERM1 24 us at S=8 always; then header, payload, MIC and CRC at S bits per bit, then TERM2
#: (3 bits at S).
CODED_FEC1_US = 80.0 + 256.0 + 16.0 + 24.0
CODED_S2, CODED_S8 = 2, 8

#: HCI PHY numbers (Vol 4 Part E 7.8.49): LE 1M, LE 2M, LE Coded.
PHY_1M, PHY_2M, PHY_CODED = 1, 2, 3

#: LL data length bounds, octets (Vol 6 Part B 4.5.10).
DATA_LENGTH_MIN, DATA_LENGTH_MAX = 27, 251

CENTRAL, PERIPHERAL = 0, 1


def packet_air_time_us(payload: int, phy: int = PHY_1M, coding: int = CODED_S8,
                       encrypted: bool = False) -> float:
    """Air time of one data channel packet carrying ``payload`` octets (0: an empty PDU), us."""
    octets = HEADER_OCTETS + payload + CRC_OCTETS + (MIC_OCTETS if encrypted and payload else 0)
    if phy == PHY_CODED:
        return CODED_FEC1_US + (octets * 8 + 3) * coding
    return (PREAMBLE_OCTETS[phy] + ACCESS_ADDRESS_OCTETS + octets) * US_PER_OCTET[phy]


def control_pdu_octets(packet: ll.ControlPdu) -> int:
    """LL control PDU payload, octets: opcode plus CtrData (Vol 6 Part B 2.4.2)."""
    return 1 + _CTRDATA_OCTETS.get(type(packet).__name__, 8)


_CTRDATA_OCTETS = {"TerminateInd": 1, "ConnectionUpdateInd": 11, "ConnectionRateInd": 11,
                   "EncReq": 22, "StartEncRsp": 0, "FeatureReq": 8, "FeatureRsp": 8,
                   "PeripheralFeatureReq": 8, "RejectExtInd": 2, "LengthReq": 8, "LengthRsp": 8,
                   "PhyReq": 2, "PhyRsp": 2, "PhyUpdateInd": 4}


def timing_from_env(default: str = TIMING_REAL) -> str:
    value = os.environ.get(TIMING_ENV, "").strip().lower() or default
    if value not in TIMINGS:
        raise ValueError(f"{TIMING_ENV}={value!r}: the timings are {', '.join(TIMINGS)}")
    return value


def conn_interval_from_env() -> Optional[float]:
    """The default connection interval env :data:`CONN_INTERVAL_ENV` names, ms (None: unset)."""
    text = os.environ.get(CONN_INTERVAL_ENV, "").strip()
    if not text:
        return None
    return check_conn_interval_ms(text, CONN_INTERVAL_ENV)


def check_conn_interval_ms(value: object, what: str) -> float:
    """``value`` as a connection interval in ms; ValueError when it is not 7.5..4000."""
    try:
        ms = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{what}={value!r}: a connection interval in ms "
                         f"({CONN_INTERVAL_MIN_MS:g}..{CONN_INTERVAL_MAX_MS:g})") from None
    if not CONN_INTERVAL_MIN_MS <= ms <= CONN_INTERVAL_MAX_MS:
        raise ValueError(f"{what}={value!r}: a connection interval is "
                         f"{CONN_INTERVAL_MIN_MS:g}..{CONN_INTERVAL_MAX_MS:g} ms")
    return ms


@dataclasses.dataclass
class _Pdu:
    """One PDU waiting in a side's transmit queue."""

    octets: int
    deliver: Callable[[], None]
    enqueued_at: float
    #: Called once its last fragment is acknowledged (HCI completed packets), or None.
    acked: Optional[Callable[[], None]] = None
    packet: Optional[ll.ControlPdu] = None
    #: Octets not yet sent.
    remaining: int = -1

    def __post_init__(self) -> None:
        if self.remaining < 0:
            self.remaining = self.octets


class LinkConnection:
    """One LE connection's link layer state, shared by its central and its peripheral.

    State kept in both timings: PHY and coding per direction, negotiated data length per
    direction, encryption. In real timing also the transmit queues and the event timeline.
    """

    def __init__(self, link: TimedLink, central: Controller, peripheral: Controller,
                 central_address: hci.Address, peripheral_address: hci.Address,
                 interval_units: int, latency: int, timeout_units: int) -> None:
        self.link = link
        self.controllers = (central, peripheral)
        self.addresses = (central_address, peripheral_address)
        self.interval_s = max(interval_units, 6) * INTERVAL_UNIT_S
        self.latency = latency
        self.supervision_timeout_s = (timeout_units * TIMEOUT_UNIT_S if timeout_units
                                      else DEFAULT_SUPERVISION_TIMEOUT_S)
        loop = asyncio.get_running_loop()
        self.anchor = loop.time() + FIRST_EVENT_DELAY_S
        self._next_k = 0
        #: Transmit PHY of each side (CENTRAL, PERIPHERAL) and the coding when it is LE Coded.
        self.phy = [PHY_1M, PHY_1M]
        self.coding = [CODED_S8, CODED_S8]
        #: Largest LL payload each side sends (negotiated data length), octets.
        self.max_tx_octets = [DATA_LENGTH_MIN, DATA_LENGTH_MIN]
        self.encrypted = False
        self.queues: tuple[collections.deque[_Pdu], collections.deque[_Pdu]] = (
            collections.deque(), collections.deque())
        #: Connection events that carried something, and packets sent (data or control).
        self.events = 0
        self.packets = 0
        #: When a list: every packet sent, as (event index since the last anchor, side,
        #: payload octets, time its receiver has it), for tests and tools.
        self.trace: Optional[list[tuple[int, int, int, float]]] = None
        #: Time of the last connection event that ran (virtual, loop clock), or None.
        self.last_event_at: Optional[float] = None
        self._event_timer: Optional[asyncio.TimerHandle] = None
        self._deliveries: collections.deque[tuple[float, Callable[[], None]]] = collections.deque()
        self._delivery_timer: Optional[asyncio.TimerHandle] = None
        self._new_interval_s: Optional[float] = None
        #: Called when an LL_PHY_UPDATE_IND reaches the peripheral (the central's instant).
        self.on_phy_update_sent: Optional[Callable[[], None]] = None
        self.closed = False

    # -- queries --------------------------------------------------------------------------
    def side_of(self, controller: Controller) -> int:
        return CENTRAL if controller is self.controllers[CENTRAL] else PERIPHERAL

    def event_time(self, k: int) -> float:
        return self.anchor + k * self.interval_s

    # -- sending ----------------------------------------------------------------------------
    def enqueue(self, side: int, pdu: _Pdu) -> None:
        if self.closed:
            return
        if not self.link.timed:
            asyncio.get_running_loop().call_soon(pdu.deliver)
            if pdu.acked is not None:
                asyncio.get_running_loop().call_soon(pdu.acked)
            return
        self.queues[side].append(pdu)
        self._schedule()

    def _schedule(self) -> None:
        if self._event_timer is not None or self.closed:
            return
        heads = [q[0].enqueued_at for q in self.queues if q]
        if not heads:
            return
        # The first event at or after the earliest queued PDU (the virtual timeline).
        k = max(self._next_k, math.ceil((min(heads) - self.anchor) / self.interval_s - 1e-9))
        self._event_timer = asyncio.get_running_loop().call_at(self.event_time(k),
                                                               self._run_event, k)

    def _run_event(self, k: int) -> None:
        self._event_timer = None
        if self.closed:
            return
        t0 = self.event_time(k)
        self.last_event_at = t0
        self.events += 1
        limit = t0 + self.interval_s - EVENT_END_GUARD_US * 1e-6
        t = t0
        first = True
        while True:
            c_frag = self._next_fragment(CENTRAL, t0)
            p_frag = self._next_fragment(PERIPHERAL, t0)
            if not first and c_frag == 0 and p_frag == 0:
                break  # neither side has more data: MD clear on both
            c_us = self._air_us(CENTRAL, c_frag)
            p_us = self._air_us(PERIPHERAL, p_frag)
            pair_end = t + (c_us + T_IFS_US + p_us) * 1e-6
            if not first and pair_end > limit:
                break  # the next pair does not fit in this event
            c_rx = t + c_us * 1e-6
            if self.trace is not None:
                self.trace.extend(entry for entry in ((k, CENTRAL, c_frag, c_rx),
                                                      (k, PERIPHERAL, p_frag, pair_end))
                                  if entry[2])
            if c_frag:
                self._send_fragment(CENTRAL, c_frag, received=c_rx, acked=pair_end)
            if p_frag:
                # Acknowledged by the central's next packet, T_IFS after this one.
                self._send_fragment(PERIPHERAL, p_frag, received=pair_end,
                                    acked=pair_end + T_IFS_US * 1e-6)
            t = pair_end + T_IFS_US * 1e-6
            first = False
        self._next_k = k + 1
        if self._new_interval_s is not None:
            # The update's instant is the next event: anchor it there with the new interval.
            self.anchor = t0 + self.interval_s
            self.interval_s, self._new_interval_s = self._new_interval_s, None
            self._next_k = 0
        self._schedule()

    def _next_fragment(self, side: int, t0: float) -> int:
        queue = self.queues[side]
        if not queue or queue[0].enqueued_at > t0 + 1e-9:
            return 0
        return min(queue[0].remaining, self.max_tx_octets[side])

    def _air_us(self, side: int, octets: int) -> float:
        return packet_air_time_us(octets, self.phy[side], self.coding[side], self.encrypted)

    def _send_fragment(self, side: int, octets: int, received: float, acked: float) -> None:
        pdu = self.queues[side][0]
        pdu.remaining -= octets
        self.packets += 1
        if pdu.remaining > 0:
            return
        self.queues[side].popleft()
        self._at(received, pdu.deliver)
        if pdu.acked is not None:
            self._at(acked, pdu.acked)
        packet = pdu.packet
        if isinstance(packet, (ll.ConnectionUpdateInd, ll.ConnectionRateInd)):
            self._new_interval_s = max(packet.interval, 6) * INTERVAL_UNIT_S
            self.latency = getattr(packet, "latency", getattr(packet, "peripheral_latency", 0))
            self.supervision_timeout_s = packet.timeout * TIMEOUT_UNIT_S or self.supervision_timeout_s
        elif type(packet).__name__ == "PhyUpdateInd" and self.on_phy_update_sent is not None:
            self._at(received, self.on_phy_update_sent)
            self.on_phy_update_sent = None
        elif isinstance(packet, ll.TerminateInd):
            # Nothing follows an LL_TERMINATE_IND on this link.
            self._at(received, self._close)

    # -- delivery in time order -------------------------------------------------------------
    def _at(self, when: float, fn: Callable[[], None]) -> None:
        # One ordered list per connection (asyncio does not order timers of equal time).
        self._deliveries.append((when, fn))
        if self._delivery_timer is None:
            self._delivery_timer = asyncio.get_running_loop().call_at(when, self._deliver_due)

    def _deliver_due(self) -> None:
        self._delivery_timer = None
        now = asyncio.get_running_loop().time()
        while self._deliveries and self._deliveries[0][0] <= now + 1e-6:
            _, fn = self._deliveries.popleft()
            try:
                fn()
            except Exception:
                logger.exception("link delivery failed")
        if self._deliveries:
            self._delivery_timer = asyncio.get_running_loop().call_at(self._deliveries[0][0],
                                                                      self._deliver_due)

    # -- parameters -------------------------------------------------------------------------
    def set_interval_now(self, interval_units: int) -> None:
        """Fast timing's connection update (no event to carry it): the new interval at once."""
        if not self.link.timed:
            self.interval_s = max(interval_units, 6) * INTERVAL_UNIT_S

    # -- end --------------------------------------------------------------------------------
    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._event_timer is not None:
            self._event_timer.cancel()
            self._event_timer = None
        for queue in self.queues:
            queue.clear()
        self.link.forget(self)

    def close(self) -> None:
        """Both ends are gone (or the link is torn down): drop what is queued."""
        self._close()

    def peer_lost(self, lost: Controller) -> None:
        """``lost`` left the air without a word: the other side times out (reason 0x08)."""
        side = self.side_of(lost)
        survivor = self.controllers[1 - side]
        lost_address = self.addresses[side]
        self._close()

        def timeout() -> None:
            connection = survivor.le_connections.get(lost_address)
            if connection is not None:
                survivor.on_le_disconnected(connection, CONNECTION_TIMEOUT)

        # The survivor last heard its peer at the last event (or now): the timeout runs from
        # there; in fast timing the peer is reported gone at once, as before.
        delay = self.supervision_timeout_s if self.link.timed else 0.0
        asyncio.get_running_loop().call_later(delay, timeout)


class TimedLink(LocalLink):
    """The air's link: Bumble's ``LocalLink`` with the timing of :class:`LinkConnection`.

    ``timing`` is :data:`TIMING_REAL` or :data:`TIMING_FAST`; ``prefer_phy`` (None, PHY_2M or
    PHY_CODED, with ``coding``) is what the boards' stacks ask for after connecting, as a
    stack with automatic PHY update does (Zephyr's, for one); None: they keep LE 1M.
    ``conn_interval_ms``: the interval of a board's connect that names none (None:
    :data:`DEFAULT_CONN_INTERVAL_MS`, 50 ms as on a MicroPython NimBLE board).
    """

    def __init__(self, timing: str = TIMING_REAL, prefer_phy: Optional[int] = None,
                 coding: int = CODED_S8, conn_interval_ms: Optional[float] = None) -> None:
        super().__init__()
        if timing not in TIMINGS:
            raise ValueError(f"timing {timing!r}: one of {', '.join(TIMINGS)}")
        self.timing = timing
        #: (min, max) ms a board's central asks for when its script names no interval.
        self.default_conn_interval_ms: tuple[float, float] = (
            DEFAULT_CONN_INTERVAL_MS if conn_interval_ms is None
            else (check_conn_interval_ms(conn_interval_ms, "conn_interval_ms"),) * 2)
        self.prefer_phy = prefer_phy
        self.coding = coding
        #: Live connections by (sender address, receiver address), both directions.
        self._by_addresses: dict[tuple[bytes, bytes], tuple[LinkConnection, int]] = {}

    @property
    def timed(self) -> bool:
        return self.timing == TIMING_REAL

    @staticmethod
    def _key(a: hci.Address, b: hci.Address) -> tuple[bytes, bytes]:
        return (bytes(a) + bytes([a.address_type & 1]), bytes(b) + bytes([b.address_type & 1]))

    def open_connection(self, central: Controller, central_address: hci.Address,
                        peripheral_address: hci.Address, interval_units: int, latency: int,
                        timeout_units: int) -> Optional[LinkConnection]:
        peripheral = self.find_le_controller(peripheral_address)
        if peripheral is None:
            return None
        old = self._by_addresses.get(self._key(central_address, peripheral_address))
        if old is not None:
            old[0].close()
        connection = LinkConnection(self, central, peripheral, central_address,
                                    peripheral_address, interval_units, latency, timeout_units)
        self._by_addresses[self._key(central_address, peripheral_address)] = (connection, CENTRAL)
        self._by_addresses[self._key(peripheral_address, central_address)] = (connection, PERIPHERAL)
        return connection

    def connection_between(self, sender: hci.Address, receiver: hci.Address
                           ) -> tuple[Optional[LinkConnection], int]:
        found = self._by_addresses.get(self._key(sender, receiver))
        return found if found is not None else (None, CENTRAL)

    def connections_of(self, controller: Controller) -> list[LinkConnection]:
        return list({id(c): c for c, _ in self._by_addresses.values()
                     if controller in c.controllers}.values())

    def forget(self, connection: LinkConnection) -> None:
        for key in [k for k, (c, _) in self._by_addresses.items() if c is connection]:
            del self._by_addresses[key]

    def controller_left(self, controller: Controller) -> None:
        """``controller`` is gone without terminating its links (its process died)."""
        for connection in self.connections_of(controller):
            connection.peer_lost(controller)
        if controller in self.controllers:
            self.remove_controller(controller)

    # -- LocalLink ----------------------------------------------------------------------------
    def send_acl_data(self, sender_controller: Controller, destination_address: hci.Address,
                      transport: core.PhysicalTransport, data: bytes) -> None:
        if transport != core.PhysicalTransport.LE:
            return super().send_acl_data(sender_controller, destination_address, transport, data)
        sender_connection = sender_controller.le_connections.get(destination_address)
        connection, side = (self.connection_between(sender_connection.self_address,
                                                    destination_address)
                            if sender_connection is not None else (None, CENTRAL))
        if connection is None:
            return super().send_acl_data(sender_controller, destination_address, transport, data)
        receiver = connection.controllers[1 - side]
        # From the address the connection was made with (the stock link uses the random
        # address, unknown to the peer of a board whose own host connects from its public one).
        source_address = sender_address = sender_connection.self_address
        acked = getattr(sender_controller, "acl_pdu_acked_callback", None)

        def deliver() -> None:
            # A receiver that has ended the link itself meanwhile hears nothing more.
            if sender_address in receiver.le_connections:
                receiver.on_link_acl_data(source_address, transport, data)

        connection.enqueue(side, _Pdu(
            octets=len(data),
            deliver=deliver,
            enqueued_at=asyncio.get_running_loop().time(),
            acked=acked(sender_connection) if acked is not None else None))

    def send_ll_control_pdu(self, sender_address: hci.Address, receiver_address: hci.Address,
                            packet: ll.ControlPdu,
                            acked: Optional[Callable[[], None]] = None) -> None:
        """Queue ``packet`` for the next connection event; ``acked`` (real timing) is called
        once the peer has acknowledged it."""
        connection, side = self.connection_between(sender_address, receiver_address)
        if connection is None:
            if self.find_le_controller(receiver_address) is None:
                # The peer left the air (its process died): nobody hears this PDU.
                logger.debug("LL %s to %s: no such device on the air", packet, receiver_address)
                return
            return super().send_ll_control_pdu(sender_address, receiver_address, packet)
        receiver = connection.controllers[1 - side]

        def deliver() -> None:
            if sender_address in receiver.le_connections:
                receiver.on_ll_control_pdu(sender_address, packet)

        connection.enqueue(side, _Pdu(
            octets=control_pdu_octets(packet),
            deliver=deliver,
            enqueued_at=asyncio.get_running_loop().time(),
            acked=acked if self.timed else None,
            packet=packet))
        if not self.timed and isinstance(packet, ll.TerminateInd):
            connection.close()
