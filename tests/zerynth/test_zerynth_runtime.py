"""`blebridge run --api zerynth`: Zerynth's builtins and modules for a script, and the modules
blebridge does not provide."""
import os
import subprocess
import sys

HOST = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "host"))


def run(code, *args, env=None, timeout=120):
    e = dict(os.environ, PYTHONPATH=HOST, **(env or {}))
    e.pop("BLEBRIDGE_PORT", None)
    return subprocess.run([sys.executable, "-m", "blebridge", "run", "--api", "zerynth", *args, "-c", code],
                          capture_output=True, text=True, env=e, timeout=timeout)


def test_zerynth_imports_select_the_zerynth_api():
    r = subprocess.run([sys.executable, "-m", "blebridge", "run", "-c",
                        "import streams\nstreams.serial()\nprint(PSTRING is str)"],
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=HOST), timeout=120)
    assert (r.returncode, r.stdout) == (0, "True\n"), r.stderr


def test_unprovided_wireless_module_is_a_clear_import_error():
    r = run("from wireless import wifi")
    assert r.returncode == 1
    assert "ModuleNotFoundError: the Zerynth module 'wireless.wifi' is not available under blebridge" in r.stderr


def test_unprovided_driver_is_a_clear_import_error():
    r = run("from espressif.esp32net import esp32wifi")
    assert "the Zerynth module 'espressif.esp32net' is not available under blebridge" in r.stderr


def test_unprovided_top_level_module_is_a_clear_import_error():
    r = run("import gpio")
    assert "the Zerynth module 'gpio' is not available under blebridge" in r.stderr


def test_new_exception_declares_a_class():
    r = run("new_exception(MyError, ValueError, 'bad thing')\n"
            "try:\n    raise MyError\nexcept ValueError as e:\n    print(type(e).__name__, e)")
    assert (r.returncode, r.stdout) == (0, "MyError bad thing\n"), r.stderr


def test_sleep_takes_milliseconds():
    r = run("import time\nt = time.monotonic()\nsleep(300)\nprint(0.25 < time.monotonic() - t < 30)")
    assert r.stdout == "True\n", r.stderr


def test_random_stays_in_its_range():
    r = run("print(all(0 <= random(0, 3) <= 3 for _ in range(200)))")
    assert r.stdout == "True\n", r.stderr


def test_thread_runs_its_function_with_args():
    r = run("import threading\ndone = threading.Event()\n"
            "def f(a, b):\n    print(a + b)\n    done.set()\n"
            "thread(f, 2, 3)\ndone.wait(30)")
    assert r.stdout == "5\n", r.stderr


def test_exception_ending_a_thread_is_printed():
    r = run("def f():\n    1/0\nt = thread(f)\nt.join(30)")
    assert "ZeroDivisionError" in r.stderr and "Traceback" in r.stderr


def test_print_writes_to_a_given_stream():
    r = run("class S:\n    def write(self, t):\n        import sys; sys.stdout.write(t.upper())\n"
            "print('a', 'b', sep='-', stream=S())")
    assert r.stdout == "A-B\n", r.stderr


def test_bytearray_takes_text_in_a_slice():
    r = run("b = bytearray(10)\nb[2:10] = 'Zerynth!'\nprint(bytes(b[2:]))")
    assert r.stdout == "b'Zerynth!'\n", r.stderr


def test_timer_counts_milliseconds():
    r = run("import timers\nt = timers.timer()\nt.start()\nsleep(200)\nprint(150 <= t.get() < 30000)")
    assert r.stdout == "True\n", r.stderr


def test_timer_one_shot_calls_its_function():
    r = run("import timers, threading\ne = threading.Event()\nt = timers.timer()\n"
            "t.one_shot(50, lambda arg: (print('fired', arg), e.set()), 7)\ne.wait(30)")
    assert r.stdout == "fired 7\n", r.stderr


def test_urlparse_splits_a_url():
    r = run("import urlparse\nprint(urlparse.parse('https://www.zerynth.com/a/b?x=1#top'))")
    assert r.stdout == "('https', 'www.zerynth.com', '/a/b', 'x=1', 'top')\n", r.stderr


def test_input_pin_reads_the_level_given_in_env():
    r = run("pinMode(BTN0, INPUT)\nprint(digitalRead(BTN0), digitalRead(BTN1) if pinMode(BTN1, INPUT) is None else 9)",
            env={"BLEBRIDGE_ZERYNTH_PINS": "BTN0=1"})
    assert r.stdout == "1 0\n", r.stderr


def test_output_pin_reads_back_what_was_written():
    r = run("pinMode(LED0, OUTPUT)\ndigitalWrite(LED0, HIGH)\nprint(digitalRead(LED0))")
    assert r.stdout == "1\n", r.stderr


def test_reading_an_unconfigured_pin_is_an_error():
    r = run("digitalRead(BTN0)")
    assert "InvalidHardwareStatusError" in r.stderr


def test_ble_before_a_driver_init_says_what_to_do():
    r = run("from wireless import ble\nble.gap('x')")
    assert "RuntimeError: wireless.ble has no driver: call bledrv.init() first" in r.stderr
