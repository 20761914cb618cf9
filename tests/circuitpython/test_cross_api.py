"""Scripts of different board APIs on one air: CircuitPython (adafruit_ble on _bleio) against
MicroPython (bluetooth, and aioble), each way, and adafruit-circuitpython-ble-heart-rate reading a
heart-rate sensor written with MicroPython's bluetooth module."""
import pytest

from cp_scripts import needs, ROOT, SCRIPTS, run_pair

# Two scripts, each starting a board, scans of up to 30 s, on a loaded PC.
pytestmark = [pytest.mark.hil, pytest.mark.timeout(300)]
MP_EXAMPLES = ROOT / "examples" / "micropython"
AIOBLE_EXAMPLES = ROOT / "examples" / "aioble"
CP_EXAMPLES = ROOT / "examples" / "circuitpython"


def test_micropython_central_talks_to_circuitpython_peripheral(board_urls, tmp_path):
    server, client = run_pair(SCRIPTS / "uart_echo_peripheral.py", MP_EXAMPLES / "uart_central.py",
                              board_urls(2), tmp_path)
    lines = client.splitlines()
    assert ["echoed: hello", "echoed: micropython over blebridge", "echoed: bye"] == \
        [line for line in lines if line.startswith("echoed:")]


def test_circuitpython_central_talks_to_micropython_peripheral(board_urls, tmp_path):
    server, client = run_pair(MP_EXAMPLES / "uart_peripheral.py", SCRIPTS / "uart_line_central.py",
                              board_urls(2), tmp_path, ready="advertising the UART service")
    assert [line for line in client.splitlines() if line.startswith("reply:")] == \
        ["reply: b'HELLO\\n'", "reply: b'CIRCUITPYTHON MEETS MICROPYTHON\\n'"]


def test_heart_rate_library_reads_a_micropython_heart_rate_sensor(board_urls, tmp_path):
    needs("adafruit_ble_heart_rate")
    server, client = run_pair(SCRIPTS / "heart_rate_sensor.py", SCRIPTS / "heart_rate_central.py",
                              board_urls(2), tmp_path, client_args=("3",))
    lines = client.splitlines()
    assert "Device: blebridge HR-1" in lines and "Location: Chest" in lines
    readings = [line for line in lines if line.startswith("HeartRateMeasurementValues(")]
    assert len(readings) == 3
    assert all("contact=True" in r and ("rr_intervals=(1024,)" in r or "rr_intervals=[1024]" in r)
               for r in readings)


def test_aioble_central_reads_the_circuitpython_sensor_example(board_urls, tmp_path):
    server, client = run_pair(CP_EXAMPLES / "sensor_peripheral.py", AIOBLE_EXAMPLES / "sensor_central.py",
                              board_urls(2), tmp_path)
    assert client.count("notified temperature") == 5 and client.rstrip().endswith("done")
    assert "disconnected" in server


def test_circuitpython_central_reads_the_aioble_sensor_example(board_urls, tmp_path):
    server, client = run_pair(AIOBLE_EXAMPLES / "sensor_peripheral.py", CP_EXAMPLES / "sensor_central.py",
                              board_urls(2), tmp_path)
    assert "the sensor has no interval setting" in client
    assert client.count("notified temperature: ") == 5 and client.rstrip().endswith("done")
    assert "disconnected" in server
