"""aioble's L2CAP connection-oriented channels, on blebridge.ble.l2cap."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Optional

from ..ble.l2cap import Channel, ChannelRefused
from ..errors import BoardError
from .core import L2CAPConnectionError, L2CAPDisconnectedError, check_timeout, data_bytes

if TYPE_CHECKING:
    from .device import DeviceConnection

#: PSM range for LE credit-based channels (Core spec Vol 3 Part A 4.22): fixed 0x01..0x7F,
#: dynamic 0x80..0xFF.
PSM_MIN, PSM_MAX = 0x0001, 0x00FF
#: Smallest L2CAP CoC MTU (Core spec Vol 3 Part A 4.22), bytes; the largest is the board's.
MTU_MIN = 23


def _check_psm_mtu(psm: Any, mtu: Any, what: str) -> None:
    if isinstance(psm, bool) or not isinstance(psm, int) or not PSM_MIN <= psm <= PSM_MAX:
        raise ValueError(f"{what}(): psm must be {PSM_MIN}..{PSM_MAX:#x}, not {psm!r}")
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not MTU_MIN <= mtu <= 0xFFFF:
        raise ValueError(f"{what}(): mtu must be {MTU_MIN}..65535, not {mtu!r}")


class L2CAPChannel:
    """An open channel (``async with`` it to disconnect at the end)."""

    def __init__(self, connection: "DeviceConnection", chan: Channel) -> None:
        self._connection = connection
        self._radio = connection._radio
        self._chan = chan
        #: Largest SDU the peer may send us / we may send the peer, bytes.
        self.our_mtu = chan.our_mtu
        self.peer_mtu = chan.peer_mtu

    def __repr__(self) -> str:
        return f"<L2CAPChannel {self._connection.device} psm={self._chan.psm} cid={self._chan.cid}>"

    @property
    def _cid(self) -> Optional[int]:
        return self._chan.cid if self._chan.open else None

    def _assert_connected(self, what: str) -> None:
        self._radio.check_lost()
        if not self._chan.open:
            raise L2CAPDisconnectedError(f"{what}: the channel is disconnected"
                                         + (f" (status {self._chan.status})" if self._chan.status else ""))

    async def _wait(self, predicate: Any, timeout_ms: Optional[int], what: str) -> None:
        try:
            await self._radio.wait(predicate, check_timeout(timeout_ms))
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f"{what}: nothing within {timeout_ms} ms") from None

    def available(self) -> bool:
        """Whether received bytes wait (recvinto will not wait)."""
        self._assert_connected("available")
        return bool(self._chan.rx)

    async def recvinto(self, buf: Any, timeout_ms: Optional[int] = None) -> int:
        """Receive into ``buf`` (waits until something came): the count received. Bytes that
        came before the channel closed are still handed out; then L2CAPDisconnectedError."""
        try:
            target = memoryview(buf)
        except TypeError:
            raise TypeError(f"recvinto(): buf must be a writable buffer, not {type(buf).__name__}") from None
        if target.readonly:
            raise TypeError("recvinto(): buf must be a writable buffer (bytearray, memoryview), not read-only")
        chan = self._chan
        if not chan.rx:
            self._assert_connected("recvinto")
            await self._wait(lambda: chan.rx or not chan.open, timeout_ms, "recvinto")
            if not chan.rx:
                self._assert_connected("recvinto")
        return self._radio.l2cap.recv_into(chan, target)

    async def recv(self, n: int = -1, timeout_ms: Optional[int] = None) -> bytes:
        """blebridge extension: up to ``n`` received bytes (all waiting if n < 0), waiting as recvinto."""
        chan = self._chan
        if not chan.rx:
            self._assert_connected("recv")
            await self._wait(lambda: chan.rx or not chan.open, timeout_ms, "recv")
            if not chan.rx:
                self._assert_connected("recv")
        buf = bytearray(len(chan.rx) if n < 0 else min(n, len(chan.rx)))
        got = self._radio.l2cap.recv_into(chan, buf)
        return bytes(buf[:got])

    async def send(self, buf: Any, timeout_ms: Optional[int] = None, chunk_size: Optional[int] = None) -> None:
        """Send ``buf`` in SDUs of at most min(our_mtu * 2, peer_mtu, chunk_size) bytes,
        waiting for the board's buffers (flow control credits) between them."""
        data = data_bytes(buf, "buf")
        if chunk_size is not None and (isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size <= 0):
            raise ValueError(f"send(): chunk_size must be a positive int, not {chunk_size!r}")
        size = min(self.our_mtu * 2, self.peer_mtu, chunk_size or self.peer_mtu)
        offset = 0
        while offset < len(data):
            if self._chan.stalled:
                await self.flush(timeout_ms)
            self._assert_connected("send")
            try:
                self._radio.l2cap.send(self._chan, data[offset:offset + size])
            except BoardError as exc:
                if not self._chan.open:
                    raise L2CAPDisconnectedError(f"send: the channel is disconnected ({exc})") from None
                raise
            offset += size

    async def flush(self, timeout_ms: Optional[int] = None) -> None:
        """Wait until a stalled send has drained."""
        self._assert_connected("flush")
        chan = self._chan
        await self._wait(lambda: not chan.stalled or not chan.open, timeout_ms, "flush")
        self._assert_connected("flush")

    async def disconnect(self, timeout_ms: int = 1000) -> None:
        """Close the channel and wait until the board says it is closed."""
        if not self._chan.open:
            return
        self._radio.l2cap.disconnect(self._chan)
        await self.disconnected(timeout_ms)

    async def disconnected(self, timeout_ms: Optional[int] = 1000) -> None:
        """Wait until the channel is closed, by either side."""
        chan = self._chan
        await self._wait(lambda: not chan.open, timeout_ms, "disconnected")

    async def __aenter__(self) -> "L2CAPChannel":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.disconnect()


async def accept(connection: "DeviceConnection", psm: int, mtu: int,
                 timeout_ms: Optional[int] = None) -> L2CAPChannel:
    """Listen on ``psm`` (once per board until the radio goes off) and wait for the peer of
    ``connection`` to open a channel."""
    _check_psm_mtu(psm, mtu, "l2cap_accept")
    timeout_s = check_timeout(timeout_ms)
    radio = connection._radio
    handle = connection._handle("l2cap_accept")
    radio.l2cap.listen(psm, mtu)
    got: list = []

    def arrived() -> bool:
        if not got:
            chan = radio.l2cap.accepted(handle)
            if chan is not None:
                got.append(chan)
        return bool(got)

    try:
        await radio.wait(arrived, timeout_s, connection)
    except asyncio.TimeoutError:
        raise asyncio.TimeoutError(f"l2cap_accept(): no channel within {timeout_ms} ms") from None
    return L2CAPChannel(connection, got[0])


async def connect(connection: "DeviceConnection", psm: int, mtu: int, timeout_ms: int = 1000) -> L2CAPChannel:
    """Open a channel to ``psm`` on the peer: L2CAPConnectionError(status) if refused."""
    _check_psm_mtu(psm, mtu, "l2cap_connect")
    timeout_s = check_timeout(timeout_ms)
    radio = connection._radio
    fut = radio.l2cap.connect(connection._handle("l2cap_connect"), psm, mtu)
    try:
        await radio.wait(fut.done, timeout_s, connection)
        chan = fut.result()
    except asyncio.TimeoutError:
        raise asyncio.TimeoutError(f"l2cap_connect(): no channel within {timeout_ms} ms") from None
    except ChannelRefused as exc:
        raise L2CAPConnectionError(exc.status, f"l2cap_connect(psm={psm}): refused with status {exc.status}") from None
    except BoardError as exc:
        raise L2CAPConnectionError(exc.status, f"l2cap_connect(psm={psm}): {exc}") from None
    return L2CAPChannel(connection, chan)
