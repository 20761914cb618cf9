"""Zerynth's ``streams``, served by blebridge: ``serial()`` is the console (stdout for writes,
stdin for reads) and becomes print's default stream, as on a board."""
import sys as _sys

SERIAL0, SERIAL1, SERIAL2, SERIAL3 = 0, 1, 2, 3
PARITY_NONE, PARITY_EVEN, PARITY_ODD = 0, 1, 2
STOPBIT_1, STOPBIT_1_HALF, STOPBIT_2 = 0, 1, 2
BITSIZE_8 = 0


class stream:
    """A Zerynth stream over a text console."""

    def write(self, buf):
        text = buf if isinstance(buf, str) else bytes(buf).decode("utf-8", "replace")
        _sys.stdout.write(text)
        _sys.stdout.flush()
        return len(buf)

    def read(self, size=1):
        data = _sys.stdin.read(size)
        return data.encode("utf-8")

    def readline(self, sep="\n", buffer=None, size=0, ofs=0):
        return _sys.stdin.readline()

    def available(self):
        return 0

    def close(self):
        pass


class serial(stream):
    """The console; with ``set_default`` (the default) print writes to it."""

    def __init__(self, drvname=SERIAL0, baud=115200, stopbits=STOPBIT_1, parity=PARITY_NONE,
                 bitsize=BITSIZE_8, set_default=True, rxsize=0, txsize=0):
        if drvname not in (SERIAL0, SERIAL1, SERIAL2, SERIAL3):
            raise ValueError(f"no serial port {drvname!r}")
        self.drvname = drvname
        self.baud = baud
        if set_default:
            from blebridge.zerynth import builtins as _b
            _b.default_stream = None     # None: the console the run writes to (stdout)
