"""Zerynth's ``wireless.ble_beacons``, served by blebridge (blebridge.zerynth.beacons)."""
from blebridge.zerynth.beacons import (EDDY_LTM, EDDY_UID, EDDY_URL, eddy_decode,  # noqa: F401
                                       eddy_decode_type, eddy_encode_tlm, eddy_encode_uid,
                                       eddy_encode_url, ibeacon_decode, ibeacon_encode)
