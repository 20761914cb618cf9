"""Security of one board: SMP pairing, its passkey questions, and bonds kept by the host.

Pairing runs on Bumble's SMP with the board's configuration (secure connections, MITM, bonding,
IO capabilities). Passkey entry, display and numeric comparison become PASSKEY_ACTION events the
board answers with the ``passkey`` op. Bonds are not kept here: :class:`HostKeyStore` asks the
host for them (GET_SECRET / SET_SECRET questions), so they live where the board keeps its
secrets. Every change of a link's security is reported as ENCRYPTION_UPDATE with
``[encrypted, authenticated, bonded, key_size]``.
"""
from __future__ import annotations

import asyncio
import errno
import logging
from typing import TYPE_CHECKING, Any, Optional

import cbor2
from bumble import hci, pairing
from bumble.device import Connection
from bumble.keys import KeyStore, PairingKeys

from ..protocol import CONSTANTS, LIMITS
from .port_link import AirError, addr_fields

if TYPE_CHECKING:
    from .board import Board

logger = logging.getLogger(__name__)

PASSKEY = CONSTANTS["passkey_action"]
SECRET = CONSTANTS["secret_type"]

#: A PASSKEY_ACTION not answered (gap_passkey) within this rejects the pairing (schema doc).
PASSKEY_TIMEOUT_S = CONSTANTS["defaults"]["QUESTION_TIMEOUT_MS"] / 1000
#: Bumble's per-connection key store keys are at most this many bonds enumerated on erase.
MAX_BONDS_ENUMERATED = 64


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
    addr_type, addr = addr_fields(hci.Address(name))
    return bytes([addr_type]) + addr


def bond_name(key: bytes) -> str:
    return str(hci.Address(key[1:7], key[0]))


class HostKeyStore(KeyStore):
    """Bumble key store whose bonds live on the host: GET_SECRET / SET_SECRET questions."""

    def __init__(self, security: Security) -> None:
        self.security = security
        self.board = security.board

    async def get(self, name: str) -> Optional[PairingKeys]:
        answer = await self.board.ask("GET_SECRET", SECRET["PEER_SEC"], 0, bond_key(name))
        if not answer.found or not answer.data:
            return None
        try:
            keys = decode_bond(answer.data)
        except (ValueError, TypeError, cbor2.CBORDecodeError):
            logger.warning("%s: bond for %s is not readable, ignored", self.board.name, name)
            return None
        self.security.bonded_peers.add(name)
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
            self.security.bonded_peers.add(name)

    async def delete(self, name: str) -> None:
        await self.board.ask("SET_SECRET", SECRET["PEER_SEC"], bond_key(name), None)
        self.security.bonded_peers.discard(name)

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


# ------------------------------------------------------------------------------------------
# Pairing
# ------------------------------------------------------------------------------------------
class HostPairingDelegate(pairing.PairingDelegate):
    """Passkey entry, display and numeric comparison through PASSKEY_ACTION / gap_passkey."""

    def __init__(self, security: Security, connection: Connection, io: int) -> None:
        super().__init__(io_capability=pairing.PairingDelegate.IoCapability(io))
        self.security = security
        self.connection = connection
        self._display_passkey: Optional[int] = None

    async def get_number(self) -> Optional[int]:
        answer = await self.security.ask_passkey(self.connection.handle, PASSKEY["INPUT"], 0)
        return None if answer is None else answer

    async def generate_passkey(self) -> int:
        proposed = await super().generate_passkey()
        answer = await self.security.ask_passkey(self.connection.handle, PASSKEY["DISPLAY"],
                                                 proposed)
        if answer is None:
            raise AirError(errno.ETIMEDOUT, "pairing", "PASSKEY_ACTION DISPLAY not answered")
        self._display_passkey = answer
        return answer

    async def compare_numbers(self, number: int, digits: int) -> bool:
        answer = await self.security.ask_passkey(self.connection.handle,
                                                 PASSKEY["NUMERIC_COMPARISON"], number)
        return bool(answer)


class Security:
    """Pairing, encryption state and bonds of one board's connections; its ops are ``op_*``."""

    def __init__(self, board: Board) -> None:
        self.board = board
        #: Peers (Bumble address strings) the host holds a bond for; kept across power cycles.
        self.bonded_peers: set[str] = set()
        self._passkeys: dict[int, asyncio.Future[tuple[int, int]]] = {}
        self.reset()

    def reset(self) -> None:
        #: Connections pairing now: their encryption change is reported when pairing ends.
        self.pairing: set[int] = set()
        #: Waiters for the end of a pairing (see pairing_settled), by handle.
        self._pairing_ends: dict[int, asyncio.Event] = {}
        self.conn_authenticated: dict[int, bool] = {}
        #: Links encrypted with a key from LE Secure Connections pairing (Bumble's
        #: ``connection.sc`` is set by every LE encryption change, a legacy bond's too).
        self.conn_sc: dict[int, bool] = {}

    def pairing_config(self, connection: Connection) -> pairing.PairingConfig:
        """Bumble's pairing_config_factory: the board's configuration, the host as delegate."""
        config = self.board.config
        return pairing.PairingConfig(
            sc=config.le_secure,
            mitm=config.mitm,
            bonding=config.bond,
            delegate=HostPairingDelegate(self, connection, config.io),
        )

    def attach(self, connection: Connection) -> None:
        """Report this new connection's encryption and pairing to the board."""
        handle = connection.handle
        connection.on(connection.EVENT_CONNECTION_ENCRYPTION_CHANGE,
                      lambda: self._on_encryption_change(connection))
        connection.on(connection.EVENT_PAIRING_START, lambda: self.pairing.add(handle))
        connection.on(connection.EVENT_PAIRING, lambda keys: self._on_pairing(connection, keys))
        connection.on(connection.EVENT_PAIRING_FAILURE,
                      lambda reason: self._on_pairing_failure(connection, reason))

    def _pairing_ended(self, handle: int) -> None:
        self.pairing.discard(handle)
        ended = self._pairing_ends.pop(handle, None)
        if ended is not None:
            ended.set()

    async def pairing_settled(self, connection: Connection) -> None:
        """Return once no pairing runs on ``connection`` (at most PASSKEY_TIMEOUT_S).

        A peer's request that follows its last distributed key finds the pairing over on a
        real stack (keys, then the request, in link order); here the pairing ends only when
        the host has stored the bond (SET_SECRET, a question to the board's host). A security
        check on an encrypted link waits for that instead of seeing a half-paired link.
        """
        handle = connection.handle
        if handle not in self.pairing or not connection.encryption:
            return
        ended = self._pairing_ends.setdefault(handle, asyncio.Event())
        try:
            await asyncio.wait_for(ended.wait(), PASSKEY_TIMEOUT_S)
        except asyncio.TimeoutError:
            pass

    def connection_lost(self, handle: int) -> None:
        self._pairing_ended(handle)
        self.conn_authenticated.pop(handle, None)
        self.conn_sc.pop(handle, None)
        future = self._passkeys.pop(handle, None)
        if future is not None and not future.done():
            future.cancel()

    def cancel_passkeys(self) -> None:
        """Power-down: no passkey question stays open."""
        for future in list(self._passkeys.values()):
            if not future.done():
                future.cancel()

    async def ask_passkey(self, conn: int, action: int, passkey: int) -> Optional[int]:
        """Raise PASSKEY_ACTION and wait for its ``passkey`` op; None when not answered in time."""
        future: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()
        self._passkeys[conn] = future
        self.board.emit("PASSKEY_ACTION", conn, action, passkey)
        try:
            _action, value = await asyncio.wait_for(future, PASSKEY_TIMEOUT_S)
            return value
        except asyncio.TimeoutError:
            logger.info("%s: PASSKEY_ACTION %d on %d not answered", self.board.name, action, conn)
            return None
        finally:
            if self._passkeys.get(conn) is future:
                del self._passkeys[conn]

    def link_authenticated(self, connection: Connection) -> bool:
        """True when the link is encrypted with a key from MITM-protected pairing.

        Not Bumble's ``connection.authenticated``, which every LE encryption sets (Just Works too).
        """
        return bool(connection.encryption) and self.conn_authenticated.get(connection.handle, False)

    def link_lesc(self, connection: Connection) -> bool:
        """True when the link is encrypted with a key from LE Secure Connections pairing."""
        return bool(connection.encryption) and self.conn_sc.get(connection.handle, False)

    async def peer_has_ltk(self, connection: Connection) -> bool:
        """True when the host holds a bond with an LTK for this peer (asked, as NimBLE asks its
        store, only when an unencrypted access needs to know)."""
        device = self.board.device
        if device is None or device.keystore is None:
            return False
        keys = await device.keystore.get(str(connection.peer_address))
        return keys is not None and bool(keys.ltk or keys.ltk_central or keys.ltk_peripheral)

    def _sec_state(self, connection: Connection) -> list[Any]:
        encrypted = bool(connection.encryption)
        authenticated = encrypted and self.conn_authenticated.get(connection.handle, False)
        bonded = str(connection.peer_address) in self.bonded_peers
        key_size = connection.encryption_key_size if encrypted else 0
        return [encrypted, authenticated, bonded, key_size]

    def _on_encryption_change(self, connection: Connection) -> None:
        if connection.handle in self.pairing:
            return  # reported when pairing completes, with the bond's state
        board = self.board

        async def report() -> None:
            # Re-encryption with a stored bond: its key says whether it was authenticated.
            keys = None
            if board.device is not None and board.device.keystore is not None \
                    and str(connection.peer_address) in self.bonded_peers:
                keys = await board.device.keystore.get(str(connection.peer_address))
            ltk = keys and (keys.ltk or keys.ltk_central or keys.ltk_peripheral)
            self.conn_authenticated[connection.handle] = bool(ltk and ltk.authenticated)
            self.conn_sc[connection.handle] = bool(keys and keys.ltk)   # SC bonds keep one LTK
            if board.connection_alive(connection):
                board.emit("ENCRYPTION_UPDATE", connection.handle, *self._sec_state(connection))

        board.spawn(report(), "encryption update")

    def _on_pairing(self, connection: Connection, keys: PairingKeys) -> None:
        self._pairing_ended(connection.handle)
        ltk = keys.ltk or keys.ltk_central or keys.ltk_peripheral
        self.conn_authenticated[connection.handle] = bool(ltk and ltk.authenticated)
        self.conn_sc[connection.handle] = bool(connection.sc)   # set from the pairing by Bumble
        self.board.emit("ENCRYPTION_UPDATE", connection.handle, *self._sec_state(connection))

    def _on_pairing_failure(self, connection: Connection, reason: int) -> None:
        self._pairing_ended(connection.handle)
        logger.info("%s: pairing on %d failed: %s", self.board.name, connection.handle, reason)
        self.board.emit("ENCRYPTION_UPDATE", connection.handle, *self._sec_state(connection))

    # -- ops --------------------------------------------------------------------------------
    async def op_pair(self, conn: int) -> None:
        connection = self.board.conn(conn, "pair")
        self.board.spawn(self._secure(connection), "pair")

    async def _secure(self, connection: Connection) -> None:
        """gap_pair: a central holding a bond with the peer re-encrypts the link with its LTK (no
        new pairing, no passkey), as NimBLE's ble_gap_security_initiate and the nrf_sd port do;
        otherwise pairing starts. A failed re-encryption (the peer lost the bond) is reported as
        ENCRYPTION_UPDATE of the still unencrypted link, as the NimBLE port does."""
        device = self.board.device
        keys = None
        if connection.role == hci.Role.CENTRAL and device is not None and device.keystore is not None:
            keys = await device.keystore.get(str(connection.peer_address))
        if keys is None or not (keys.ltk or keys.ltk_central):
            await connection.pair()
            return
        try:
            await connection.encrypt()
        except Exception as exc:  # HCI error (key missing), link lost, no key: all end the same way
            logger.info("%s: re-encryption on %d failed: %s", self.board.name, connection.handle, exc)
            if self.board.connection_alive(connection):
                self.board.emit("ENCRYPTION_UPDATE", connection.handle, *self._sec_state(connection))

    async def op_passkey(self, conn: int, action: int, passkey: int) -> None:
        future = self._passkeys.get(conn)
        if future is None or future.done():
            raise AirError(errno.ENOENT, "passkey", f"no passkey request on {conn}")
        future.set_result((action, passkey))

    async def op_erase_bonds(self) -> None:
        device = self.board.device
        self.bonded_peers.clear()
        store = device.keystore if device is not None else HostKeyStore(self)
        self.board.spawn(store.delete_all(), "erase bonds")

    async def op_sec_state(self, conn: int) -> list[Any]:
        return self._sec_state(self.board.conn(conn, "sec_state"))
