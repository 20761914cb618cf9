"""A bare controller on the air's link, served over H4/TCP to a board that brings its own host.

The NimBLE board (firmware/ports/nimble/linux, ``bb_nimble_sim``) runs the real NimBLE host; it
needs a controller, not the air's Bumble host. Its first message on the air's Unix socket is
``controller(NAME)`` instead of ``hello(NAME)``; the air then puts an :class:`AirController`
(every quirk fix of controller.py) on the shared link, next to the Bumble-hosted boards and
peers, and listens for one TCP connection on 127.0.0.1 at a port the OS picks. The answer is
that port; NimBLE's socket transport (``BLE_SOCK_TYPE=linux_tcp``) connects there and speaks
H4: one packet-type byte (1 command, 2 ACL, 4 event) before each HCI packet.

The controller lives as long as the Unix connection: when the board closes it (or dies), the
controller's connections are terminated towards their peers and it leaves the link.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Optional

from bumble import hci
from bumble.link import LocalLink
from bumble.transport.common import PacketParser

from .controller import AirController

logger = logging.getLogger(__name__)

#: Seconds the TCP server waits for the board's HCI connection after answering its port.
HCI_CONNECT_TIMEOUT_S = 30.0
#: HCI reason sent to peers when the board's controller goes away (Core Vol 1 Part F 2.20:
#: Remote User Terminated Connection).
HCI_REMOTE_USER_TERMINATED = 0x13


class _TcpSink:
    """Bumble's packet sink interface on an asyncio stream: packets go out as they are."""

    def __init__(self) -> None:
        self.writer: Optional[asyncio.StreamWriter] = None

    def on_packet(self, packet: bytes) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(packet)


class _ControllerPort:
    """PacketParser sink: complete H4 packets from the board to the controller."""

    def __init__(self, controller: AirController) -> None:
        self.controller = controller

    def on_packet(self, packet: bytes) -> None:
        try:
            self.controller.on_packet(packet)
        except Exception:  # one bad packet must not end the board's link
            logger.exception("[%s] HCI packet from the host failed: %s", self.controller.name,
                             packet.hex())


class HciControllerServer:
    """One bare :class:`AirController` on ``link``, served to one TCP client."""

    def __init__(self, link: LocalLink, name: str, public_address: hci.Address) -> None:
        self.name = name
        self._sink = _TcpSink()
        self.controller = AirController(f"hci:{name}", host_sink=self._sink, link=link,
                                        public_address=public_address)
        self.controller.own_host = True
        self._server: Optional[asyncio.base_events.Server] = None
        self._client: Optional[asyncio.Task[None]] = None
        self.closed = False

    async def start(self) -> int:
        """Listen on 127.0.0.1 (port 0: the OS picks one) and return the port."""
        self._server = await asyncio.start_server(self._serve, host="127.0.0.1", port=0)
        port = self._server.sockets[0].getsockname()[1]
        logger.info("controller for %s (%s) on 127.0.0.1:%d", self.name,
                    self.controller.public_address, port)
        return int(port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._sink.writer is not None or self.closed:
            writer.close()  # one host per controller
            return
        # Only one connection: stop listening.
        if self._server is not None:
            self._server.close()
        self._sink.writer = writer
        parser = PacketParser(_ControllerPort(self.controller))
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                parser.feed_data(chunk)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            logger.info("HCI host of %s disconnected", self.name)
            self._sink.writer = None
            writer.close()

    def close(self) -> None:
        """Terminate the controller's connections towards their peers and leave the link."""
        if self.closed:
            return
        self.closed = True
        if self._server is not None:
            self._server.close()
        writer, self._sink.writer = self._sink.writer, None
        if writer is not None:
            writer.close()
        self.controller.drop_all_connections(HCI_REMOTE_USER_TERMINATED)
        link = self.controller.link
        if link is not None and self.controller in link.controllers:
            link.remove_controller(self.controller)
