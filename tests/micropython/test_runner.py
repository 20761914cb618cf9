"""blebridge run: board scripts run on the PC with MicroPython's modules and behaviour."""
import os
import subprocess
import sys
import time

HOST = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "host"))


def run(*args, stdin=None, timeout=30):
    env = dict(os.environ, PYTHONPATH=HOST)
    return subprocess.run([sys.executable, "-m", "blebridge.script", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=timeout)


def test_code_runs_with_micropython_modules():
    r = run("-c", "from micropython import const\nimport time, machine, ustruct\n"
                  "machine.idle(); time.sleep_ms(1); time.sleep_us(1)\n"
                  "print(const(3), time.ticks_diff(time.ticks_add(time.ticks_ms(), 5), time.ticks_ms()) >= 4,"
                  " ustruct.pack('<h', 1))")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "3 True b'\\x01\\x00'\n"


def test_code_has_empty_path_entry_then_pythonpath_then_shims():
    r = run("-c", "import sys; print(sys.path[0] == '', sys.path[1] == %r, sys.path[2].endswith('shims'))\n"
                  "sys.path.remove('')" % HOST)
    assert r.stdout == "True True True\n", r.stderr


def run_with_path(pythonpath, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HOST] + [str(p) for p in pythonpath]))
    return subprocess.run([sys.executable, "-m", "blebridge.script", *args], capture_output=True,
                          text=True, env=env, timeout=30)


def test_module_on_pythonpath_wins_over_the_shims(tmp_path):
    (tmp_path / "machine.py").write_text("WHOSE = 'mine'\n")
    r = run_with_path([tmp_path], "-c", "import machine\nprint(machine.WHOSE)")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "mine\n"


def test_module_in_the_script_directory_wins_over_the_shims(tmp_path):
    (tmp_path / "bluetooth.py").write_text("WHOSE = 'mine'\n")
    (tmp_path / "main.py").write_text("import bluetooth\nprint(bluetooth.WHOSE)\n")
    r = run(str(tmp_path / "main.py"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == "mine\n"


def test_micropython_module_stays_the_builtin_over_a_users_stub(tmp_path):
    # On a board `micropython` is a non-extensible built-in: a file never replaces it.
    (tmp_path / "micropython.py").write_text("def const(x):\n    return x\n")
    r = run_with_path([tmp_path], "-c", "import micropython\nprint(hasattr(micropython, 'schedule'))")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "True\n"


def test_imported_user_module_gets_the_micropython_dialect(tmp_path):
    (tmp_path / "adv.py").write_text("import struct\ndef field(name):\n"
                                     "    return struct.pack('BB', len(name) + 1, 9) + name\n"
                                     "def view(s):\n    return bytes(memoryview(s))\n")
    r = run_with_path([tmp_path], "-c", "import adv\nprint(adv.field('acc'), adv.view('l2cap'))")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "b'\\x04\\tacc' b'l2cap'\n"


def test_imported_package_submodule_gets_the_micropython_dialect(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from .core import joined\n")
    (pkg / "core.py").write_text("def joined():\n    return b'a' + 'b'\n")
    r = run_with_path([tmp_path], "-c", "import pkg\nprint(pkg.joined())")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "b'ab'\n"


def test_dialect_of_an_imported_module_is_not_cached_for_plain_python(tmp_path):
    (tmp_path / "adv.py").write_text("def joined():\n    return b'a' + 'b'\n")
    assert run_with_path([tmp_path], "-c", "import adv\nprint(adv.joined())").stdout == "b'ab'\n"
    r = subprocess.run([sys.executable, "-c", "import adv\nadv.joined()"], capture_output=True,
                       text=True, env=dict(os.environ, PYTHONPATH=str(tmp_path)), timeout=30)
    assert r.returncode == 1 and "TypeError" in r.stderr


def test_memoryview_of_str_is_its_utf8_bytes():
    r = run("-c", "print(bytes(memoryview('\u00e9')), memoryview(b'x').readonly)")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "b'\\xc3\\xa9' True\n"


def test_script_file_gets_its_directory_and_argv(tmp_path):
    script = tmp_path / "board.py"
    script.write_text("import sys, os\nprint(sys.argv, sys.path[0] == os.path.dirname(os.path.abspath(__file__)))\n")
    r = run(str(script), "a", "b")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"[{str(script)!r}, 'a', 'b'] True\n"


def test_script_from_stdin():
    r = run("-", stdin="print('from stdin')\n")
    assert r.stdout == "from stdin\n"


def test_uncaught_exception_prints_traceback_and_exits_1():
    r = run("-c", "raise ValueError('Timeout waiting for 7')")
    assert r.returncode == 1
    assert "ValueError: Timeout waiting for 7" in r.stderr
    assert "runner.py" not in r.stderr


def test_sys_exit_code_is_the_exit_status():
    assert run("-c", "import sys; sys.exit(3)").returncode == 3


def test_output_is_unbuffered():
    env = dict(os.environ, PYTHONPATH=HOST)
    p = subprocess.Popen([sys.executable, "-m", "blebridge.script", "-c",
                          "print('early')\nimport time\ntime.sleep(120)"],
                         stdout=subprocess.PIPE, env=env)
    try:
        t0 = time.monotonic()
        line = p.stdout.readline()
        assert line == b"early\n" and time.monotonic() - t0 < 60   # long before the sleep ends
    finally:
        p.kill()
        p.wait()


def test_multitest_style_broadcast_on_stdin_is_readable():
    # run-multitests.py sends "BROADCAST msg" lines on stdin to a script started with -c.
    code = "import sys\nsys.path.remove('')\nprint('ready', flush=True)\nprint(sys.stdin.readline().rstrip())"
    r = run("-c", code, stdin="BROADCAST peripheral:adv\r\n")
    assert r.stdout == "ready\nBROADCAST peripheral:adv\n"


def test_runner_is_registered_as_a_cli_subcommand():
    import argparse
    sys.path.insert(0, HOST)
    from blebridge.script import runner
    parser = argparse.ArgumentParser()
    runner.add_parser(parser.add_subparsers(dest="cmd"))
    ns = parser.parse_args(["run", "--port", "sim:x", "-c", "pass"])
    assert (ns.cmd, ns.port, ns.code) == ("run", "sim:x", "pass")


def test_bytes_plus_str_concatenates_as_on_micropython():
    r = run("-c", "import struct\nname = 'acc'\np = struct.pack('BB', 4, 9) + name\nq = b'x'\nq += 'y'\n"
                  "ba = bytearray(b'1')\nalias = ba\nba += b'2'\nprint(p, q, alias, 1 + 2, 'a' + 'b')")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "b'\\x04\\tacc' b'xy' bytearray(b'12') 3 ab\n"


def test_str_plus_bytes_is_still_a_type_error():
    r = run("-c", "'a' + b'b'")
    assert r.returncode == 1 and "TypeError" in r.stderr


def test_bytearray_item_keeps_low_8_bits_as_on_micropython():
    r = run("-c", "b = bytearray(2)\nb[-1] = 256 - 0\nb[0] = 0x1FF\nd = {}\nd['k'] = 1\nprint(b, d)")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "bytearray(b'\\xff\\x00') {'k': 1}\n"
