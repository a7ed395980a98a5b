"""uWSGI's sslrouter (`sslrouter = ADDR,CERT,KEY[,CIPHERS[,CA]]`, or
`sslrouter2 = addr=ADDR,cert=CERT,key=KEY[,ciphers=..][,clientca=..]`):
the "uWSGI sslrouter N" processes.

TLS in, plain bytes out: the router ends each client's TLS and, once the
client's first bytes come, passes them (and the rest, both ways) to a
node, as the rawrouter does.  The key is the address the client came in
on, as the config writes it, or with sslrouter-sni the name the client
asked for (SNI, up to 255 bytes), when it gave one.  As in uWSGI, the
certificates are loaded while the options are read, so a bad file stops
the start; the context's name in those lines is `sslrouter-ADDR`, or
sslrouter-session-context (uWSGI's session id context, which with its
session cache off, as ugu's, only names the context).

This module is what the master needs; it loads no ssl until the config
has an sslrouter (ugu.sslcontext makes the contexts), and the process
itself is ugu.router.sslserver, imported once gevent has patched it.
"""

from dataclasses import dataclass

from ugu.options.errors import ConfigError
from ugu.router import rawrouter

NAME = "sslrouter"
GATEWAY = "uWSGI sslrouter"
# The options that bind its sockets.
LISTEN = ("sslrouter", "sslrouter2")
# What its first option takes, for the line saying to add it.
ADDRESS = "ADDR,CERT,KEY"
UNDEFERRED = False
MAX_KEY = 0xFF
_KV_NAMES = {"addr": "addr", "cert": "cert", "crt": "cert", "key": "key",
             "ciphers": "ciphers", "clientca": "clientca",
             "client_ca": "clientca"}


def sni_key(name):
    """The key of a client's SNI `name`: its IDNA bytes, where it has
    255 at most and no "/" or NUL, which would lead a base or pattern
    out of its folder (uWSGI's takes any); None for no usable name."""
    try:
        key = name.encode("idna") if name else None
    except UnicodeError:
        return None
    if key and len(key) <= MAX_KEY and b"/" not in key and b"\0" not in key:
        return key
    return None


@dataclass(frozen=True)
class Settings(rawrouter.Settings):
    sni: bool = False

    @classmethod
    def from_config(cls, config):
        return cls(**rawrouter.shared_settings(config, NAME),
                   max_retries=(config["sslrouter-max-retries"]
                                or rawrouter.DEFAULT_MAX_RETRIES),
                   xclient=False, sni=config["sslrouter-sni"])


def listening(config):
    """(address, its ssl.SSLContext) of each sslrouter and sslrouter2
    line, the certificates loaded (ConfigError for a bad one)."""
    found = [(_fields(value), "sslrouter") for value in config["sslrouter"]]
    found += [(_kv_fields(value), "sslrouter2")
              for value in config["sslrouter2"]]
    if not found:
        return []
    from ugu.sslcontext import server_context
    from ugu.vassal.sockets import parse_address
    contexts = []
    for (address, crt, key, ciphers, client_ca), option in found:
        parse_address(address, option)
        name = config["sslrouter-session-context"] or f"{NAME}-{address}"
        contexts.append((address, server_context(
            name, crt, key, ciphers or "", client_ca, option=option)))
    return contexts


def _fields(value):
    fields = value.split(",", 4)
    if len(fields) < 3:
        raise ConfigError("invalid sslrouter syntax must be socket,crt,key "
                          "(write ADDR,CERT,KEY[,CIPHERS[,CA]])",
                          option="sslrouter")
    return (*fields, *[None] * (5 - len(fields)))


def _kv_fields(value):
    items = {}
    for item in value.split(","):
        name, equals, text = item.partition("=")
        if not equals or name not in _KV_NAMES:
            raise ConfigError(f"error parsing --sslrouter option: {item!r} "
                              f"is not one of addr=, cert=, key=, "
                              f"ciphers=, clientca=", option="sslrouter2")
        items[_KV_NAMES[name]] = text
    if not all(items.get(name) for name in ("addr", "cert", "key")):
        raise ConfigError("--sslrouter option needs addr, cert and key "
                          "items", option="sslrouter2")
    return (items["addr"], items["cert"], items["key"],
            items.get("ciphers"), items.get("clientca"))


def run(config, listeners, index, mesh=None, ids=None, to=None):
    """Serve as sslrouter `index` on `listeners` (each with its context
    in `tls`) until a stop signal; then exit the process."""
    from ugu.router.process import run_corerouter

    def server():
        from ugu.router.sslserver import Sslrouter
        return Sslrouter
    run_corerouter(config, listeners, index, GATEWAY, server,
                   Settings.from_config(config), mesh, ids, to)
