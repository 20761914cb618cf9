"""blebridge run: which board API a script is written for, told from its imports (script/apis.py)."""
import pytest

from blebridge.script.apis import (API_NAMES, Api, ApiError, ApiUnavailable, api_named, detect_api,
                                   load_runtime)


def api_of(source):
    return detect_api(source)[0].name


@pytest.mark.parametrize("module", ["bluetooth", "ubluetooth", "aioble", "machine"])
def test_micropython_modules_mean_micropython(module):
    assert api_of(f"import {module}\n") == "micropython"


def test_micropython_module_alone_means_micropython():
    assert api_of("from micropython import const\n") == "micropython"


@pytest.mark.parametrize("module", ["_bleio", "adafruit_ble", "board"])
def test_circuitpython_modules_mean_circuitpython(module):
    assert api_of(f"import {module}\n") == "circuitpython"


@pytest.mark.parametrize("module", ["wireless", "streams", "nordic", "espressif"])
def test_zerynth_modules_mean_zerynth(module):
    assert api_of(f"import {module}\n") == "zerynth"


def test_no_api_module_means_micropython():
    api, why = detect_api("import time, struct\nprint(1)\n")
    assert (api.name, why) == ("micropython", None)


def test_from_import_of_a_submodule_counts_its_package():
    assert api_of("from adafruit_ble.advertising import Advertisement\n") == "circuitpython"


def test_import_inside_a_function_counts():
    assert api_of("def f():\n    import _bleio\n") == "circuitpython"


def test_relative_import_does_not_count():
    assert api_of("from .board import pins\n") == "micropython"


def test_detection_reports_the_import_and_its_line():
    _, why = detect_api("import time\n\nimport ubluetooth as bt\n")
    assert (why.module, why.line) == ("ubluetooth", 3)


def test_micropython_module_with_circuitpython_modules_means_circuitpython():
    # CircuitPython has micropython.const too, so it does not make the script MicroPython's.
    assert api_of("from micropython import const\nimport _bleio\n") == "circuitpython"


def test_imports_of_two_apis_are_an_error_naming_both_and_api_option():
    with pytest.raises(ApiError) as info:
        detect_api("import bluetooth\nimport _bleio\n", "two.py")
    msg = str(info.value)
    assert "two.py" in msg and "MicroPython" in msg and "CircuitPython" in msg and "--api" in msg


def test_source_is_not_run_to_detect():
    assert api_of("import bluetooth\nraise SystemExit('ran')\n") == "micropython"


def test_source_that_does_not_parse_means_micropython():
    assert api_of("import _bleio\nif:\n") == "micropython"


def test_api_names_in_option_order():
    assert API_NAMES == ("micropython", "circuitpython", "zerynth")


def test_unknown_api_name_is_an_error():
    with pytest.raises(ApiError, match="unknown API 'arduino'"):
        api_named("arduino")


def test_zerynth_runtime_provides_its_shims_folder():
    runtime = load_runtime(api_named("zerynth"))
    assert runtime.SHIMS_DIR.replace("\\", "/").endswith("blebridge/zerynth/shims")


def test_micropython_runtime_provides_its_shims_folder():
    runtime = load_runtime(api_named("micropython"))
    assert runtime.SHIMS_DIR.replace("\\", "/").endswith("blebridge/micropython/shims")


def test_circuitpython_runtime_provides_its_shims_folder():
    runtime = load_runtime(api_named("circuitpython"))
    assert runtime.SHIMS_DIR.replace("\\", "/").endswith("blebridge/circuitpython/shims")


def test_api_without_runtime_is_unavailable():
    api = Api("future", "Future ble", frozenset({"future_ble"}), frozenset(), None)
    with pytest.raises(ApiUnavailable) as info:
        load_runtime(api)
    assert str(info.value) == "the Future ble API is not available yet in this blebridge version"
