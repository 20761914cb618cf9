"""A blocking client of a labgrid coordinator: places, acquiring them, their boards' ports.

labgrid's own client (``labgrid.remote.client.ClientSession``) is asyncio over gRPC. It runs
here on an event loop of its own in a private thread, so callers need no loop and may be
asyncio programs themselves (a running loop in the caller's thread cannot run another one).

Coordinator address: the ``address`` argument, else env ``LG_COORDINATOR`` (labgrid's own
convention), else ``127.0.0.1:20408`` (labgrid's default port).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Optional, TypeVar

#: labgrid's default coordinator address and port.
DEFAULT_COORDINATOR = "127.0.0.1:20408"
#: Seconds to connect to the coordinator and receive its places and resources.
CONNECT_TIMEOUT_S = 30.0
#: Seconds a just-acquired place's serial ports get to be served (the exporter starts ser2net
#: for each when the place is acquired; labgrid waits 0.5 s for it to start, more under load).
PORTS_READY_TIMEOUT_S = 30.0
#: Poll period (s) while waiting for the ports to be served.
PORTS_POLL_S = 0.1
#: Resource classes that are a board's serial port as a client sees them.
SERIAL_CLASSES = ("NetworkSerialPort",)

T = TypeVar("T")


class CoordinatorError(RuntimeError):
    """The coordinator cannot be reached, or refused an operation; the message says which."""


class CoordinatorUnreachable(CoordinatorError):
    """Nothing answers as a labgrid coordinator at the address."""


class PlaceBusyError(CoordinatorError):
    """The place is acquired by someone else (``.acquired``: their ``host/user``)."""

    def __init__(self, place: str, acquired: str) -> None:
        self.place = place
        self.acquired = acquired
        super().__init__(f"place {place} is acquired by {acquired}")


def coordinator_address(address: Optional[str] = None) -> str:
    return address or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR


@dataclass(frozen=True)
class SerialPortEntry:
    """A NetworkSerialPort of a place: how to reach one board's serial port."""

    name: str                   # the resource's name in the place (its match's rename, if any)
    host: str
    port: int
    protocol: str               # "rfc2217" (ser2net as the exporter runs it) or "raw"
    speed: int
    extra: dict                 # labgrid's extra (proxy, proxy_required, the exporter's device path)

    def url(self) -> str:
        """The pyserial URL of the port (no SSH proxy: see :func:`reachable_url`)."""
        return port_url(self.protocol, self.host, self.port)


def port_url(protocol: str, host: str, port: int) -> str:
    if protocol == "rfc2217":
        # blebridge opens it with its own RFC 2217 client (blebridge.transport.rfc2217), which
        # never waits for SET_CONTROL's answer; ser2net in front of a pty (as the exporter runs
        # it) sends none. ign_set_control tells pyserial's client the same, for a user who
        # hands this URL to pyserial-based tools (esptool, labgrid's SerialDriver does likewise).
        return f"rfc2217://{host}:{port}?ign_set_control"
    if protocol == "raw":
        return f"socket://{host}:{port}"
    raise CoordinatorError(f"serial port protocol {protocol!r} is neither rfc2217 nor raw")


def reachable_url(entry: SerialPortEntry) -> str:
    """The URL to open ``entry`` from here: through an SSH forward when the exporter requires one
    (``labgrid-exporter --isolated``) or LG_PROXY is set, as labgrid's drivers do."""
    if entry.extra.get("proxy_required") or os.environ.get("LG_PROXY"):
        from labgrid.util.ssh import sshmanager
        proxy = os.environ.get("LG_PROXY") or entry.extra.get("proxy")
        port = sshmanager.request_forward(proxy, entry.host, entry.port)
        return port_url(entry.protocol, "localhost", port)
    return entry.url()


class Coordinator:
    """A connection to a labgrid coordinator. Use as a context manager, or close()."""

    def __init__(self, address: Optional[str] = None, timeout: float = CONNECT_TIMEOUT_S) -> None:
        try:
            from labgrid.remote.client import ClientSession
            from labgrid.util.proxy import proxymanager
        except ImportError as exc:
            raise CoordinatorError(f"labgrid is not installed ({exc}); "
                                   "install it with: pip install 'blebridge[labgrid]'") from exc
        self.address = coordinator_address(address)
        self._timeout = timeout
        _quiet_unreachable_log()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="labgrid-coordinator",
                                        daemon=True)
        self._thread.start()
        grpc_address = proxymanager.get_grpc_address(self.address, default_port=20408)

        async def start() -> Any:
            session = ClientSession(grpc_address, self._loop)
            await _own_channel(session)
            try:
                await session.start()
            except BaseException:
                await session.close()
                raise
            return session

        try:
            self._session = self._run(start(), timeout)
        except Exception as exc:
            self._stop_loop()
            raise CoordinatorUnreachable(f"cannot reach the labgrid coordinator at {self.address}: "
                                   f"{_reason(exc)}") from exc

    # -- plumbing ------------------------------------------------------------------------------

    def _run(self, coro: Awaitable[T], timeout: Optional[float] = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]
        try:
            return future.result(self._timeout if timeout is None else timeout)
        except concurrent.futures.TimeoutError:   # not the builtin one before Python 3.11
            future.cancel()
            raise CoordinatorError(f"the labgrid coordinator at {self.address} did not answer "
                                   f"within {self._timeout if timeout is None else timeout:.0f} s")

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(self._timeout)
        if not self._thread.is_alive():
            self._loop.close()

    def close(self) -> None:
        session, self._session = getattr(self, "_session", None), None
        if session is not None:
            async def stop() -> None:
                try:
                    await session.stop()
                finally:
                    await session.close()
            try:
                self._run(stop())
            except Exception:   # closing a connection that already broke: nothing left to do
                pass
        if self._thread.is_alive():
            self._stop_loop()

    def __enter__(self) -> "Coordinator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- places ----------------------------------------------------------------------------------

    @property
    def me(self) -> str:
        """``host/user`` as the coordinator records who acquired a place (LG_HOSTNAME,
        LG_USERNAME override it, as in labgrid)."""
        return f"{self._session.gethostname()}/{self._session.getuser()}"

    def place_names(self) -> list[str]:
        async def names() -> list[str]:
            return sorted(self._session.places)
        return self._run(names())

    def _place(self, name: str) -> Any:
        place = self._session.places.get(name)
        if place is None:
            known = ", ".join(sorted(self._session.places)) or "none"
            raise CoordinatorError(f"no place named {name} on the coordinator at {self.address} "
                                   f"(places: {known})")
        return place

    def acquired_by(self, name: str) -> Optional[str]:
        """Who holds the place (``host/user``), or None when it is free."""
        async def get() -> Optional[str]:
            return self._place(name).acquired or None
        return self._run(get())

    def may_use(self, name: str) -> bool:
        """True when the place is acquired by this host and user, or they are allowed on it."""
        async def get() -> bool:
            place = self._place(name)
            return bool(place.acquired) and (place.acquired == self.me or self.me in place.allowed)
        return self._run(get())

    def acquire(self, name: str) -> None:
        """Acquire the place; PlaceBusyError when someone (this user included) holds it."""
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        async def acquire() -> None:
            place = self._place(name)
            if place.acquired:
                raise PlaceBusyError(name, place.acquired)
            try:
                await self._session.stub.AcquirePlace(pb2.AcquirePlaceRequest(placename=name))
            except grpc.aio.AioRpcError as exc:
                # Raced with another client, or a resource of the place is held by another place.
                await self._session.sync_with_coordinator()
                holder = self._session.places[name].acquired if name in self._session.places else None
                if holder:
                    raise PlaceBusyError(name, holder) from exc
                raise CoordinatorError(f"acquiring place {name}: {exc.details()}") from exc
            await self._session.sync_with_coordinator()
        self._run(acquire())

    async def _release(self, name: str) -> None:
        import grpc
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2
        self._place(name)
        try:
            await self._session.stub.ReleasePlace(pb2.ReleasePlaceRequest(placename=name))
        except grpc.aio.AioRpcError as exc:
            raise CoordinatorError(f"releasing place {name}: {exc.details()}") from exc
        await self._session.sync_with_coordinator()

    def release(self, name: str) -> None:
        self._run(self._release(name))

    def release_soon(self, name: str) -> "concurrent.futures.Future[None]":
        """Start releasing the place and return at once; the future ends with the release.
        (The coordinator answers once the exporter has stopped the place's ser2net: about 2 s
        per place, which a caller that goes on with other places need not wait for.)"""
        return asyncio.run_coroutine_threadsafe(self._release(name), self._loop)

    def resources(self, name: str) -> dict[tuple[str, str], Any]:
        """The acquired place's resources as labgrid's client sees them:
        {(name, class): ResourceEntry} (``labgrid-client env`` prints the same)."""
        async def get() -> dict[tuple[str, str], Any]:
            return dict(self._session.get_target_resources(self._place(name)))
        try:
            return self._run(get())
        except Exception as exc:
            if isinstance(exc, CoordinatorError):
                raise
            raise CoordinatorError(f"place {name}: {_reason(exc)}") from exc

    def serial_ports(self, name: str, timeout: float = PORTS_READY_TIMEOUT_S) -> list[SerialPortEntry]:
        """The acquired place's serial ports once all are served, sorted by name.
        CoordinatorError when the place has none, or one is not served within ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            pending = []
            ports = []
            for (res_name, cls), entry in sorted(self.resources(name).items()):
                if cls not in SERIAL_CLASSES:
                    continue
                args = entry.args
                if not entry.avail or not isinstance(args.get("port"), int):
                    pending.append(res_name)
                    continue
                ports.append(SerialPortEntry(name=res_name, host=str(args.get("host")),
                                             port=int(args["port"]),
                                             protocol=str(args.get("protocol", "rfc2217")),
                                             speed=int(args.get("speed", 115200)),
                                             extra=dict(entry.extra)))
            if not pending and ports:
                return ports
            if not pending:
                raise CoordinatorError(f"place {name} has no serial port (NetworkSerialPort): "
                                       "add a match for the board's exported serial port")
            if time.monotonic() >= deadline:
                raise CoordinatorError(f"place {name}: serial port(s) {', '.join(pending)} not "
                                       f"available within {timeout:.0f} s (is the board plugged "
                                       "in and its exporter running?)")
            time.sleep(PORTS_POLL_S)


#: gRPC channel options of labgrid's ClientSession (keepalive: labgrid.remote.client), plus a
#: subchannel pool of the channel's own.
_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 7500),
    ("grpc.keepalive_timeout_ms", 10000),
    ("grpc.http2.ping_timeout_ms", 10000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.use_local_subchannel_pool", 1),
]


async def _own_channel(session: Any) -> None:
    """Give the session a TCP connection of its own. gRPC shares one connection between the
    channels of a process that have the same target and options, and the coordinator keys its
    clients by the connection's address ("assert peer not in self.clients"): a second session in
    one process (the hil plugin's and a ``labgrid:`` port's, or labgrid's own RemotePlace's)
    would be refused."""
    import grpc
    from labgrid.remote.generated import labgrid_coordinator_pb2_grpc
    await session.channel.close()
    session.channel = grpc.aio.insecure_channel(target=session.address, options=_CHANNEL_OPTIONS)
    session.stub = labgrid_coordinator_pb2_grpc.CoordinatorStub(session.channel)


class _UnreachableFilter:
    """Drops labgrid's root-logger line "coordinator is unavailable: ...": the CoordinatorError
    raised here says the same, and a command's error should be one line with its hint."""

    def filter(self, record: Any) -> bool:
        return not (record.pathname.endswith(os.path.join("labgrid", "remote", "client.py"))
                    and str(record.msg).startswith("coordinator is unavailable"))


_UNREACHABLE_FILTER = _UnreachableFilter()


def _quiet_unreachable_log() -> None:
    import logging
    root = logging.getLogger()
    if _UNREACHABLE_FILTER not in root.filters:
        root.addFilter(_UNREACHABLE_FILTER)


def _reason(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    if callable(details):
        try:
            return str(details())
        except Exception:
            pass
    return str(exc) or type(exc).__name__
