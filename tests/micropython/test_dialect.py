"""The MicroPython dialect reaches the user's modules only (blebridge.micropython.dialect)."""
from blebridge.micropython.dialect import DialectFinder, DialectLoader


def test_stdlib_module_keeps_its_own_loader():
    spec = DialectFinder().find_spec("json")
    assert spec is not None and not isinstance(spec.loader, DialectLoader)


def test_blebridge_module_keeps_its_own_loader():
    spec = DialectFinder().find_spec("blebridge")
    assert spec is not None and not isinstance(spec.loader, DialectLoader)


def test_user_module_gets_the_dialect_loader(tmp_path):
    (tmp_path / "usermod.py").write_text("x = 1\n")
    spec = DialectFinder().find_spec("usermod", [str(tmp_path)])
    assert isinstance(spec.loader, DialectLoader)


def test_module_nowhere_is_not_found(tmp_path):
    assert DialectFinder().find_spec("no_such_module_here", [str(tmp_path)]) is None

