"""adafruit_ble (from PyPI, unmodified) on blebridge's _bleio: our equivalents of Adafruit's
two-device examples, one script per board under `blebridge run` (the upstream examples
themselves run in `make conformance ADAFRUIT_BLE=...`)."""
import pytest

from cp_scripts import needs, SCRIPTS, run_pair

# Two scripts, each starting a board, scans of up to 30 s, on a loaded PC.
pytestmark = [pytest.mark.hil, pytest.mark.timeout(300)]


def test_uart_echo_pair_echoes_every_write(board_urls, tmp_path):
    server, client = run_pair(SCRIPTS / "uart_echo_peripheral.py", SCRIPTS / "uart_echo_central.py",
                              board_urls(2), tmp_path, client_args=("3",))
    assert client.splitlines().count("b'echo'") == 3 and "disconnected" in server


def test_json_pair_reads_readings_in_the_unit_the_central_wrote(board_urls, tmp_path):
    server, client = run_pair(SCRIPTS / "json_peripheral.py", SCRIPTS / "json_central.py",
                              board_urls(2), tmp_path)
    assert client.splitlines().count("sensors 68.9") == 3
    assert "settings {'unit': 'fahrenheit'}" in server


def test_packet_buffer_pair_echoes_each_packet_whole(board_urls, tmp_path):
    server, client = run_pair(SCRIPTS / "packet_buffer_peripheral.py",
                              SCRIPTS / "packet_buffer_central.py", board_urls(2), tmp_path)
    lines = client.splitlines()
    assert "b'echo'" in lines and "b'a longer packet of 40 bytes, one write..'" in lines


def test_color_packet_pair_delivers_every_color(board_urls, tmp_path):
    needs("adafruit_bluefruit_connect")
    server, client = run_pair(SCRIPTS / "color_peripheral.py", SCRIPTS / "color_central.py",
                              board_urls(2), tmp_path)
    assert [line for line in server.splitlines() if line.startswith("color")] == \
        ["color (255, 0, 0)", "color (0, 255, 0)", "color (1, 2, 3)"]
    assert client.count("answer b'ok\\n'") == 3


def test_hid_keyboard_pair_types_text_to_the_paired_central(board_urls, tmp_path):
    needs("adafruit_hid")
    server, client = run_pair(SCRIPTS / "hid_peripheral.py", SCRIPTS / "hid_central.py",
                              board_urls(2), tmp_path, server_args=("Hello 42\n",))
    assert "paired True" in client and "typed: Hello 42" in client.splitlines()


@pytest.mark.parametrize("detailed", [False, True], ids=["simple", "detailed"])
def test_scanner_finds_the_hello_advertiser_and_connects(board_urls, tmp_path, detailed):
    server, client = run_pair(SCRIPTS / "hello_advertiser.py", SCRIPTS / "scanner.py",
                              board_urls(2), tmp_path, client_args=("detailed",) if detailed else (),
                              tell_client_on="connected")
    assert any("short_name=HELLO" in line for line in client.splitlines())
    assert server.splitlines()[-2:] == ["connected", "disconnected"]
