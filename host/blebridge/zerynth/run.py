"""The Zerynth runtime of ``blebridge run`` (see blebridge/script/apis.py for the contract).

Scripts see Zerynth's builtins (builtins.py) without importing them, and its modules from
``shims/``: ``wireless.ble``, ``wireless.ble_beacons``, ``streams``, ``timers``, ``urlparse``
and the two BLE drivers, ``nordic.nrf52_ble.nrf52_ble`` and ``espressif.esp32ble.esp32ble``,
whose ``init()`` binds ``wireless.ble`` to the board at ``--port``. The dialect: the statement
``new_exception(Name, Parent[, msg])`` declares the class ``Name`` (Zerynth's compiler does it;
in Python ``Name`` would be an undefined name). A Zerynth module blebridge does not provide
(``wireless.wifi``, ``gpio``, ...) fails to import with an ImportError saying so.
"""
from __future__ import annotations

import ast
import importlib.machinery
import os
import sys
from typing import Any, Callable, Optional, Sequence

#: On sys.path under ``blebridge run --api zerynth``, after the user's directories.
SHIMS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shims")

#: Zerynth modules (top-level) that blebridge does not provide; imported, they raise
#: ImportError naming what is provided. Packages whose BLE modules are provided (wireless,
#: nordic, espressif) refuse their other submodules the same way.
ZERYNTH_ONLY = frozenset({
    "adc", "can", "dac", "eth", "fatfs", "fifo", "flash", "fota", "gpio", "hwtimers", "i2c", "icu",
    "mcu", "ntpclient", "onewire", "pwm", "pwr", "qspiflash", "rtc", "sfw", "spi", "spiflash",
    "spisd", "vm", "watchdog", "zdm", "microchip", "stm", "texas", "bosch", "maxim", "wiznet",
    "ssl", "requests", "cbor", "msgpack", "jwt", "x509", "bignum", "crypto",
})
#: The packages of provided modules, and what they provide.
PROVIDED = {
    "wireless": ("wireless.ble", "wireless.ble_beacons"),
    "nordic": ("nordic.nrf52_ble.nrf52_ble",),
    "espressif": ("espressif.esp32ble.esp32ble",),
}
_PROVIDED_ALL = ", ".join(m for mods in PROVIDED.values() for m in mods) + ", streams, timers, urlparse"


def unavailable(fullname: str) -> ImportError:
    return ModuleNotFoundError(
        f"the Zerynth module {fullname!r} is not available under blebridge (it provides "
        f"{_PROVIDED_ALL})", name=fullname)


class _ZerynthOnlyFinder:
    """Refuses Zerynth modules blebridge does not provide, with a message saying so. Last on
    sys.meta_path: a user's module of the same name is found first."""

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
        top = fullname.split(".")[0]
        if top in ZERYNTH_ONLY or (top in PROVIDED and fullname != top):
            raise unavailable(fullname)
        return None


#: Name the rewritten ``new_exception`` statements call (set in the script's globals).
NEW_EXCEPTION_HELPER = "__blebridge_zerynth_new_exception__"


class _NewException(ast.NodeTransformer):
    """``new_exception(Name, Parent, msg)`` as a statement -> ``Name = helper("Name", Parent, msg)``."""

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        call = node.value
        if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id == "new_exception" and call.args and isinstance(call.args[0], ast.Name)
                and not call.keywords):
            name = call.args[0].id
            new_call = ast.Call(func=ast.Name(NEW_EXCEPTION_HELPER, ast.Load()),
                                args=[ast.Constant(name), *call.args[1:]], keywords=[])
            return ast.copy_location(ast.Assign(targets=[ast.Name(name, ast.Store())], value=new_call),
                                     node)
        return node


def compile_dialect(source: str, filename: str, mode: str = "exec") -> Any:
    tree = ast.parse(source, filename, mode)
    tree = ast.fix_missing_locations(_NewException().visit(tree))
    return compile(tree, filename, mode, dont_inherit=True)


def compile_script(source: str, filename: str) -> tuple[Any, dict[str, Any]]:
    from .builtins import names, new_exception
    helpers = names()
    helpers[NEW_EXCEPTION_HELPER] = new_exception
    return compile_dialect(source, filename), helpers


def compile_interactive(source: str, filename: str, symbol: str) -> Any:
    return compile_dialect(source, filename, symbol)


#: Run by ``blebridge repl --api zerynth`` before the first prompt.
REPL_PRELUDE = ("import streams\nfrom nordic.nrf52_ble import nrf52_ble as bledrv\n"
                "from wireless import ble\nstreams.serial()\nbledrv.init()\n")


def install(on_board_lost: Callable[[BaseException], None]) -> None:
    from .ble import set_lost_handler
    set_lost_handler(on_board_lost)
    if _ZerynthOnlyFinder not in sys.meta_path:
        sys.meta_path.append(_ZerynthOnlyFinder)


def close_all() -> None:
    from .ble import close_all as close_boards
    close_boards()
