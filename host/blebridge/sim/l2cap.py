"""L2CAP LE credit-based channels (CoC) of one board: listen, accept through the host, send.

A peer's connection request on a PSM the board listens on becomes an L2CAP_ACCEPT question;
the board's answer (0 accepts, else an L2CAP result code) decides the response. Sends that the
peer's credits do not cover stall the channel: ``l2cap_send`` returns 1 and L2CAP_SEND_READY
follows once Bumble has drained it.
"""
from __future__ import annotations

import errno
import logging
from typing import TYPE_CHECKING

from bumble import l2cap
from bumble.device import Device

from .port_link import AirError

if TYPE_CHECKING:
    from .board import Board

logger = logging.getLogger(__name__)

#: L2CAP CoC segment size (bytes) and receive credits per channel. Small on purpose: an SDU of
#: MAX_L2CAP_SDU bytes needs more segments than one credit window, so senders really stall
#: and resume on returned credits, as on a radio.
L2CAP_MPS = 247
L2CAP_CREDITS = 4
#: Smallest CoC MTU (bytes, Core Vol 3 Part A 4.22): smaller requests are raised to it.
L2CAP_MIN_MTU = 23


def _channel_spec(psm: int | None, mtu: int) -> l2cap.LeCreditBasedChannelSpec:
    mtu = max(mtu, L2CAP_MIN_MTU)
    return l2cap.LeCreditBasedChannelSpec(psm=psm, mtu=mtu, mps=min(L2CAP_MPS, mtu),
                                          max_credits=L2CAP_CREDITS)


class L2cap:
    """The board's L2CAP servers and open channels; its ops are ``op_*``."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.reset()

    def reset(self) -> None:
        self.servers: dict[int, l2cap.LeCreditBasedChannelServer] = {}
        #: Open channels by (connection handle, local CID).
        self.channels: dict[tuple[int, int], l2cap.LeCreditBasedChannel] = {}
        #: Channels whose last send waits for credits (l2cap_send refuses with EAGAIN).
        self.stalled: set[tuple[int, int]] = set()

    def hook(self, device: Device) -> None:
        """Make the board accept or refuse connection requests on the PSMs it listens on."""
        board = self.board
        manager = device.l2cap_channel_manager
        original = manager.on_l2cap_le_credit_based_connection_request

        def on_request(connection, cid, request) -> None:
            server = manager.le_coc_servers.get(request.le_psm)
            if server is None or request.le_psm not in self.servers:
                original(connection, cid, request)
                return

            async def ask_then_answer() -> None:
                local_cid = manager.find_free_le_cid(manager.channels.get(connection.handle, {}))
                answer = await board.ask("L2CAP_ACCEPT", connection.handle, local_cid or 0,
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

            board.spawn(ask_then_answer(), "L2CAP accept")

        manager.on_l2cap_le_credit_based_connection_request = on_request  # type: ignore[method-assign]

        # Bumble 0.0.236's on_channel_closed removes a closed LE CoC channel from `channels`
        # (by source CID) but, finding it there, never reaches its `le_coc_channels` branch
        # (by destination CID): the closed channel stays listed, and the peer's next request
        # on the same connection, which reuses the freed source CID, is refused with "source
        # CID already allocated" (result 0x000A). On a radio a second channel on one
        # connection opens (aioble's ble_shutdown test opens one per round). Drop it from
        # both tables.
        original_closed = manager.on_channel_closed

        def on_channel_closed(channel) -> None:
            original_closed(channel)
            le_channels = manager.le_coc_channels.get(channel.connection.handle)
            if le_channels is not None:
                for dcid in [d for d, c in le_channels.items() if c is channel]:
                    del le_channels[dcid]

        manager.on_channel_closed = on_channel_closed  # type: ignore[method-assign]

    def connection_lost(self, handle: int) -> None:
        """Report every channel of a closed connection as disconnected."""
        for key in [k for k in self.channels if k[0] == handle]:
            channel = self.channels.pop(key)
            self.stalled.discard(key)
            self.board.emit("L2CAP_DISCONNECT", handle, key[1], channel.psm, 0)

    def _channel_opened(self, channel: l2cap.LeCreditBasedChannel) -> None:
        board = self.board
        conn, cid = channel.connection.handle, channel.source_cid
        key = (conn, cid)
        self.channels[key] = channel
        channel.sink = lambda sdu: board.emit("L2CAP_RECV", conn, cid, bytes(sdu))

        def closed() -> None:
            if self.channels.pop(key, None) is not None:
                self.stalled.discard(key)
                board.emit("L2CAP_DISCONNECT", conn, cid, channel.psm, 0)

        channel.on(channel.EVENT_CLOSE, closed)
        board.emit("L2CAP_CONNECT", conn, cid, channel.psm, channel.mtu, channel.peer_mtu)

    # -- ops --------------------------------------------------------------------------------
    async def op_l2cap_listen(self, psm: int, mtu: int) -> None:
        device = self.board.dev("l2cap_listen")
        if psm in self.servers:
            raise AirError(errno.EALREADY, "l2cap_listen", f"already listening on PSM {psm}")
        server = device.create_l2cap_server(_channel_spec(psm or None, mtu),
                                            handler=self._channel_opened)
        self.servers[server.psm] = server

    async def op_l2cap_connect(self, conn: int, psm: int, mtu: int) -> None:
        board = self.board
        device = board.dev("l2cap_connect")
        connection = board.conn(conn, "l2cap_connect")
        spec = _channel_spec(psm, mtu)

        async def connect() -> None:
            try:
                channel = await device.create_l2cap_channel(connection, spec)
            except l2cap.L2capError as exc:
                board.emit("L2CAP_DISCONNECT", conn, 0, psm, exc.error_code or 0xFFFF)
            except Exception as exc:
                logger.info("%s: L2CAP connect failed: %s", board.name, exc)
                if board.connection_alive(connection):
                    board.emit("L2CAP_DISCONNECT", conn, 0, psm, 0xFFFF)
            else:
                self._channel_opened(channel)

        board.spawn(connect(), "L2CAP connect")

    async def op_l2cap_send(self, conn: int, cid: int, data: bytes) -> int:
        board = self.board
        key = (conn, cid)
        channel = self.channels.get(key)
        if channel is None:
            board.conn(conn, "l2cap_send")
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
                board.emit("L2CAP_SEND_READY", conn, cid, 0)

        board.spawn(wait_ready(), "L2CAP send ready")
        return 1

    async def op_l2cap_disconnect(self, conn: int, cid: int) -> None:
        channel = self.channels.get((conn, cid))
        if channel is None:
            self.board.conn(conn, "l2cap_disconnect")
            raise AirError(errno.EINVAL, "l2cap_disconnect", f"no channel {cid}")
        self.board.spawn(channel.disconnect(), "L2CAP disconnect")

