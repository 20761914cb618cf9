"""Bonding secrets kept by the host, for scripts that do not store them themselves.

On a board, ``_IRQ_GET_SECRET``/``_IRQ_SET_SECRET`` let the script keep bonding keys (usually in
a file on the board's flash). A script whose handler does not answer them (returns None) gets
this store instead: one JSON file per board address, in a directory only the user can enter
(0700) and a file only the user can read (0600), written atomically.

Location: ``$BLEBRIDGE_SECRETS_DIR``, else ``$XDG_STATE_HOME/blebridge/secrets``, else
``~/.local/state/blebridge/secrets``. File name: the board address, e.g. ``C0FFEE000001.json``.

Layout: ``{"<sec_type>": [["<key hex>", "<value hex>"], ...]}``; the list keeps insertion order
because a GET_SECRET with no key asks for the index'th value of a type.
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Optional

_DIR_MODE = 0o700
_FILE_MODE = 0o600


def default_dir() -> Path:
    env = os.environ.get("BLEBRIDGE_SECRETS_DIR")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "blebridge" / "secrets"


class SecretStore:
    """Bonding secrets of one board, persisted in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._data: dict[str, list[list[str]]] = {}
        try:
            with open(self.path, "r", encoding="utf-8") as f:
                loaded = json.load(f)
            if isinstance(loaded, dict):
                self._data = {str(k): [list(p) for p in v] for k, v in loaded.items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError) as exc:
            raise OSError(f"cannot read the bonding secrets in {self.path}: {exc}") from exc

    @classmethod
    def for_board(cls, board_id: str, directory: Optional[Path] = None) -> "SecretStore":
        safe = "".join(c for c in board_id if c.isalnum() or c in "-_") or "board"
        return cls((directory or default_dir()) / f"{safe}.json")

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
        """Store (value bytes) or delete (value None). True when the store changed as asked."""
        with self._lock:
            entries = self._data.setdefault(str(sec_type), [])
            k = key.hex()
            entries[:] = [e for e in entries if e[0] != k]
            if value is not None:
                entries.append([k, bytes(value).hex()])
            if not entries:
                del self._data[str(sec_type)]
            self._save()
            return True

    def _save(self) -> None:
        self.path.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        os.chmod(self.path.parent, _DIR_MODE)
        fd, tmp = tempfile.mkstemp(prefix=".secrets-", dir=self.path.parent)
        try:
            os.fchmod(fd, _FILE_MODE)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self._data, f)
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
