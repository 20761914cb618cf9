"""Zerynth's ``urlparse`` (the part ble_beacons and scripts use), served by blebridge."""
from urllib.parse import quote as _quote, quote_plus as _quote_plus, unquote as _unquote


def parse(url):
    """(scheme, netloc, path, query, fragment) of ``url``, as strings (possibly empty); the
    path keeps its leading slash; no % escapes are expanded."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str, not {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    slash = rest.find("/")
    netloc, path = (rest, "") if slash < 0 else (rest[:slash], rest[slash:])
    return scheme, netloc, path, query, fragment


def parse_netloc(netloc):
    """(user, password, host, port) of a netloc; missing parts empty."""
    userinfo, at, hostport = netloc.rpartition("@")
    user, _, password = userinfo.partition(":") if at else ("", "", "")
    host, _, port = hostport.partition(":")
    return user, password, host, port


def quote(s):
    return _quote(s)


def quote_plus(s):
    return _quote_plus(s)


def unquote(s):
    return _unquote(s)
