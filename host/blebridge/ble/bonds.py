"""Bonding secrets kept by the host, API-neutral: one store per board.

Each API has its own way for a script to keep bonding keys (MicroPython's
``_IRQ_GET_SECRET``/``_IRQ_SET_SECRET`` handlers, usually writing a file on the board's flash);
a script that does not keep them itself gets this store instead: one JSON file per board
address. The board asks for a secret by type and key (or by type and index); the store answers.

Location: ``$BLEBRIDGE_SECRETS_DIR``, else ``$XDG_STATE_HOME/blebridge/secrets``, else
``~/.local/state/blebridge/secrets``. File name: the board address, e.g. ``C0FFEE000001.json``.

Layout: ``{"<sec_type>": [["<key hex>", "<value hex>"], ...]}``; the list keeps insertion order
because a GET_SECRET with no key asks for the index'th value of a type.

Safety:
- The file is only ever created by ``mkstemp`` (mode 0600 from its first byte on) and renamed
  over the old one after an fsync: no moment where secrets are readable by others, and a crash
  leaves the old file or the new one, never half of one. A directory the store creates is 0700;
  a directory that already exists (``$BLEBRIDGE_SECRETS_DIR`` may be shared) keeps its mode.
- A file that cannot be read, is not valid JSON (truncated, corrupt) or not this layout raises
  :class:`~blebridge.errors.SecretStoreError` naming it, and is never overwritten: replacing it
  would silently forget every bond in it.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any, Optional

from ..errors import SecretStoreError

_DIR_MODE = 0o700
_FILE_MODE = 0o600

#: The file's contents in memory: secret type (decimal string) -> [[key hex, value hex], ...].
_Data = dict[str, list[list[str]]]


def default_dir() -> Path:
    env = os.environ.get("BLEBRIDGE_SECRETS_DIR")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "blebridge" / "secrets"


def _is_hex(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _validated(path: Path, loaded: object) -> _Data:
    """The file's contents if they have the layout this module writes; else SecretStoreError."""
    if not isinstance(loaded, dict):
        raise SecretStoreError(path, f"expected a JSON object of secret types, found {type(loaded).__name__}")
    data: _Data = {}
    for sec_type, entries in loaded.items():
        if not sec_type.isdigit():
            raise SecretStoreError(path, f"secret type {sec_type!r} is not a number")
        if not isinstance(entries, list):
            raise SecretStoreError(path, f"secrets of type {sec_type} are not a list")
        for i, entry in enumerate(entries):
            if not (isinstance(entry, list) and len(entry) == 2 and all(_is_hex(x) for x in entry)):
                raise SecretStoreError(
                    path, f"entry {i} of type {sec_type} is not a [key hex, value hex] pair")
        data[sec_type] = [list(entry) for entry in entries]
    return data


def _load(path: Path) -> _Data:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SecretStoreError(path, f"cannot read it: {exc.strerror or exc}", exc.errno) from None
    try:
        loaded = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SecretStoreError(path, "it is not UTF-8 text (corrupt?)") from None
    except json.JSONDecodeError as exc:
        what = ("empty" if not raw.strip()
                else f"not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno})")
        raise SecretStoreError(path, f"it is {what}: truncated or corrupt") from None
    return _validated(path, loaded)


class SecretStore:
    """Bonding secrets of one board, persisted in ``path``; loaded (and checked) on creation."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data = _load(self.path)

    @classmethod
    def for_board(cls, board_id: str, directory: Optional[Path] = None) -> "SecretStore":
        safe = "".join(c for c in board_id if c.isalnum() or c in "-_") or "board"
        return cls((directory or default_dir()) / f"{safe}.json")

    @classmethod
    def of_board(cls, board: Any, directory: Optional[Path] = None) -> "SecretStore":
        """The store of an open board: named after its radio address (from the handshake),
        else its port spec."""
        from .address import ident
        info = getattr(board, "info", None)
        addr = getattr(info, "addr", b"") if info is not None else b""
        board_id = ident(addr) if addr else str(getattr(board, "spec", "board"))
        return cls.for_board(board_id, directory)

    def get(self, sec_type: int, index: int, key: Optional[bytes]) -> Optional[bytes]:
        with self._lock:
            entries = self._data.get(str(sec_type), [])
            if key is None:
                return bytes.fromhex(entries[index][1]) if 0 <= index < len(entries) else None
            k = key.hex()
            for ek, ev in entries:
                if ek == k:
                    return bytes.fromhex(ev)
            return None

    def set(self, sec_type: int, key: bytes, value: Optional[bytes]) -> bool:
        """Store (value bytes) or delete (value None); True once the file holds the change.
        A failed write raises SecretStoreError and leaves the store (memory and file) as it was."""
        with self._lock:
            data = {t: list(entries) for t, entries in self._data.items()}
            k = key.hex()
            entries = [e for e in data.get(str(sec_type), []) if e[0] != k]
            if value is not None:
                entries.append([k, bytes(value).hex()])
            if entries:
                data[str(sec_type)] = entries
            else:
                data.pop(str(sec_type), None)
            self._save(data)
            self._data = data
            return True

    def _make_dir(self) -> None:
        directory = self.path.parent
        if directory.is_dir():
            return
        directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        os.chmod(directory, _DIR_MODE)   # mkdir's mode is reduced by the umask

    def _save(self, data: _Data) -> None:
        tmp = None
        try:
            self._make_dir()
            # mkstemp opens with O_EXCL and mode 0600: never readable by others, not even briefly.
            fd, tmp = tempfile.mkstemp(prefix=".secrets-", suffix=".tmp", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), _FILE_MODE)
                json.dump(data, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            raise SecretStoreError(self.path, f"cannot write it: {exc.strerror or exc}", exc.errno) from None
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass


#: The store under the name the layout uses (blebridge/ble/bonds).
BondStore = SecretStore
