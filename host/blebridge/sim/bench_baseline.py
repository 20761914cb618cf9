"""The simulator's own throughput ceiling: two plain Bumble devices on one in-process link.

The baseline of ``python -m blebridge.micropython.bench``. Each device is built as the air
builds its in-process peers (:meth:`blebridge.sim.air.Air.add_peer`: an :class:`AirController`
on a ``LocalLink``, driven by Bumble's host), with no firmware, port, socket or RPC between
the sender and the radio. The transfers are the bench's own, with the same sizes and counts:

- GATT notify, peripheral -> central (``notify_subscriber(..., force=True)``, as the air sends a
  board's ``gatts_notify``);
- GATT write without response, central -> peripheral;
- L2CAP CoC, central -> peripheral, one SDU per send, waiting for credits only when the
  channel stalls (as the bench waits for ``_IRQ_L2CAP_SEND_READY``), with the air's segment
  size and credit window (blebridge.sim.l2cap).

Each transfer is timed from its first send to the last payload byte handed to the receiving
device's application callback, in one event loop; see :class:`BarePair`.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Optional

from bumble import gatt, l2cap
from bumble.device import Connection, Device, Peer

from .air import Air
from .l2cap import L2CAP_CREDITS, L2CAP_MPS

_SERVICE_UUID = "7e1a0004-5c4b-4d55-9a1e-000000000011"
_CHARACTERISTIC_UUID = "7e1a0004-5c4b-4d55-9a1e-000000000012"
#: Advertising interval of the peripheral while the central connects (ms). Explicit, because
#: Bumble's virtual controller reports nothing with the defaults (SIMULATOR-NOTES.md).
_ADV_INTERVAL_MS = 20
_L2CAP_PSM = 0x81


@dataclasses.dataclass
class Transfer:
    """One timed transfer: payload bytes delivered of those sent, over ``seconds``."""

    delivered: int
    expected: int
    seconds: float

    @property
    def complete(self) -> bool:
        return self.delivered >= self.expected

    @property
    def kbit_s(self) -> float:
        """Payload rate in kbit/s (1000 bits)."""
        return self.delivered * 8 / 1000 / max(self.seconds, 1e-6)


class _Receiver:
    """Counts payload bytes arriving at one device; done once ``expected`` have arrived."""

    def __init__(self) -> None:
        self.received = 0
        self.expected = 0
        self.last_rx = 0.0
        self.done = asyncio.Event()

    def arm(self, expected: int) -> None:
        self.received, self.expected, self.last_rx = 0, expected, 0.0
        self.done.clear()

    def take(self, nbytes: int) -> None:
        self.received += nbytes
        self.last_rx = time.perf_counter()
        if self.received >= self.expected:
            self.done.set()

    async def result(self, t0: float, timeout: float) -> Transfer:
        try:
            await asyncio.wait_for(self.done.wait(), timeout)
        except asyncio.TimeoutError:
            pass
        return Transfer(self.received, self.expected, max(0.0, self.last_rx - t0))


class BarePair:
    """A peripheral and a central, connected, with the MTU exchanged and a CoC open.

    Make one with :meth:`open` (inside the event loop that will run every transfer), run the
    transfers as often as wanted, then :meth:`close`.
    """

    def __init__(self, air: Air, peripheral: Device, central: Device) -> None:
        self._air = air
        self.peripheral = peripheral
        self.central = central
        #: ATT MTU both sides agreed on, L2CAP MTU the central may send (bytes); set by open.
        self.att_mtu = 0
        self.l2cap_mtu = 0
        self._notified = _Receiver()
        self._written = _Receiver()
        self._l2cap_in = _Receiver()
        self._characteristic: Optional[gatt.Characteristic] = None
        self._conn_p: Optional[Connection] = None
        self._peer: Optional[Peer] = None
        self._value_handle = 0
        self._channel: Optional[l2cap.LeCreditBasedChannel] = None

    @classmethod
    async def open(cls, att_mtu: int, l2cap_mtu: int, timeout: float = 10.0,
                   names: tuple[str, str] = ("bare-peripheral", "bare-central")) -> BarePair:
        """Two devices named ``names`` on a fresh link, connected as the bench's boards are.

        ``att_mtu`` is what both sides allow and the central asks for; ``l2cap_mtu`` is the CoC
        MTU both sides ask for. Raises TimeoutError if a step takes over ``timeout`` s.
        """
        air = Air(idle_exit=None)
        peripheral = await air.add_peer(names[0])
        central = await air.add_peer(names[1])
        self = cls(air, peripheral, central)
        await asyncio.wait_for(self._connect(att_mtu, l2cap_mtu), timeout)
        return self

    async def _connect(self, att_mtu: int, l2cap_mtu: int) -> None:
        p, c = self.peripheral, self.central
        written = self._written
        characteristic = gatt.Characteristic(
            _CHARACTERISTIC_UUID,
            gatt.Characteristic.Properties.READ | gatt.Characteristic.Properties.WRITE
            | gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE
            | gatt.Characteristic.Properties.NOTIFY,
            gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=lambda _conn, value: written.take(len(value))),
        )
        p.add_service(gatt.Service(_SERVICE_UUID, [characteristic]))
        self._characteristic = characteristic
        for device in (p, c):
            device.gatt_server.max_mtu = att_mtu

        channels: asyncio.Queue[l2cap.LeCreditBasedChannel] = asyncio.Queue()
        p.create_l2cap_server(self._channel_spec(_L2CAP_PSM, l2cap_mtu), handler=channels.put_nowait)

        connected: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        p.once(p.EVENT_CONNECTION, connected.set_result)
        await p.start_advertising(advertising_interval_min=_ADV_INTERVAL_MS,
                                  advertising_interval_max=_ADV_INTERVAL_MS)
        conn_c = await c.connect(p.random_address)
        self._conn_p = await connected

        await conn_c.gatt_client.request_mtu(att_mtu)
        self.att_mtu = conn_c.att_mtu
        peer = Peer(conn_c)
        await peer.discover_services([_SERVICE_UUID])
        await peer.discover_characteristics([_CHARACTERISTIC_UUID])
        (remote,) = peer.get_characteristics_by_uuid(gatt.UUID(_CHARACTERISTIC_UUID))
        notified = self._notified
        await remote.subscribe(lambda value: notified.take(len(value)))
        self._peer, self._value_handle = peer, remote.handle

        self._channel = await c.create_l2cap_channel(conn_c, self._channel_spec(_L2CAP_PSM, l2cap_mtu))
        incoming = await channels.get()
        l2cap_in = self._l2cap_in
        incoming.sink = lambda sdu: l2cap_in.take(len(sdu))
        self.l2cap_mtu = self._channel.peer_mtu

    @staticmethod
    def _channel_spec(psm: int, mtu: int) -> l2cap.LeCreditBasedChannelSpec:
        # The air's segment size and credit window, so the CoC stalls on credits as a board's.
        return l2cap.LeCreditBasedChannelSpec(psm=psm, mtu=mtu, mps=min(L2CAP_MPS, mtu),
                                              max_credits=L2CAP_CREDITS)

    async def _timed(self, receiver: _Receiver, expected: int, send: Callable[[], Awaitable[object]],
                     count: int, timeout: float) -> Transfer:
        receiver.arm(expected)
        t0 = time.perf_counter()
        for _ in range(count):
            await send()
        return await receiver.result(t0, timeout)

    async def notify(self, count: int, payload: bytes, timeout: float) -> Transfer:
        """``count`` notifications of ``payload``, peripheral -> central."""
        assert self._conn_p is not None and self._characteristic is not None
        server, conn, characteristic = self.peripheral, self._conn_p, self._characteristic
        return await self._timed(
            self._notified, count * len(payload),
            lambda: server.notify_subscriber(conn, characteristic, payload, force=True),
            count, timeout)

    async def write_without_response(self, count: int, payload: bytes, timeout: float) -> Transfer:
        """``count`` Write Commands of ``payload``, central -> peripheral."""
        assert self._peer is not None
        peer, handle = self._peer, self._value_handle
        return await self._timed(
            self._written, count * len(payload),
            lambda: peer.write_value(handle, payload, with_response=False),
            count, timeout)

    async def l2cap(self, count: int, sdu: bytes, timeout: float) -> Transfer:
        """``count`` SDUs of ``sdu`` on the CoC, central -> peripheral."""
        channel = self._channel
        assert channel is not None

        async def send() -> None:
            channel.write(sdu)
            if not channel.drained.is_set():
                await channel.drain()

        return await self._timed(self._l2cap_in, count * len(sdu), send, count, timeout)

    async def close(self) -> None:
        """Disconnect and take both devices off the link."""
        await self._air.close()
