"""uWSGI's rawrouter (`rawrouter = ADDR`): the "uWSGI rawrouter N"
processes, a TCP proxy.

Each connection goes to a node, byte for byte both ways, until the node
closes.  The key is the address the client came in on, as written in
the config (`rawrouter = 127.0.0.1:2525` keys 127.0.0.1:2525): it names
the nodes subscribed for that address, or fills the pattern or base.
A connection no node takes is closed without a byte, as uWSGI's is.
rawrouter-xclient starts each connection from an IPv4 client with the
node's first line (an SMTP greeting) swallowed and `XCLIENT ADDR=IP`
sent in its place, as for Postfix.

This module is what the master needs (the settings, the entry point);
the process itself is ugu.router.rawserver, imported once gevent has
patched it.
"""

import os
from dataclasses import dataclass

NAME = "rawrouter"
GATEWAY = "uWSGI rawrouter"
# uWSGI's defaults: its socket timeout, the seconds a failed static node
# is left aside, and the nodes tried after the first fails.
DEFAULT_TIMEOUT = 60
DEFAULT_GRACETIME = 30
DEFAULT_MAX_RETRIES = 3
# Its sockets accept a connection at once, not when its first bytes come
# (TCP_DEFER_ACCEPT), as uWSGI's: the node may speak first (SMTP).
UNDEFERRED = True
# The options that bind its sockets.
LISTEN = (NAME,)
# What its first option takes, for the line saying to add it.
ADDRESS = "ADDR"


@dataclass(frozen=True)
class Settings:
    timeout: int
    read_size: int
    gracetime: int
    quiet: bool
    static: tuple
    pattern: str | None
    base: str | None
    fallback: tuple
    max_retries: int
    xclient: bool
    tolerance: int
    cheap: bool
    stats: str | None
    # subscription-algo and subscription-dotsplit.
    algo: str | None = None
    dotsplit: bool = False
    use_credentials: bool = False
    credentials_check: tuple = ()
    sign_check: tuple | None = None
    # The corerouters' settings a rawrouter has no option for.
    fallback_key = None
    resubscribe = ()
    resubscribe_bind = None

    @classmethod
    def from_config(cls, config):
        return cls(**shared_settings(config, NAME),
                   max_retries=(config["rawrouter-max-retries"]
                                or DEFAULT_MAX_RETRIES),
                   xclient=config["rawrouter-xclient"])


def shared_settings(config, prefix):
    """The settings every corerouter (`prefix`: fastrouter, rawrouter,
    sslrouter) reads from its own options of the same names."""
    from ugu.subscription import sign_check
    return dict(
        timeout=config[f"{prefix}-timeout"] or DEFAULT_TIMEOUT,
        # uWSGI's default: the page size.
        read_size=(max(config[f"{prefix}-buffer-size"], 0)
                   or os.sysconf("SC_PAGE_SIZE")),
        gracetime=config[f"{prefix}-gracetime"] or DEFAULT_GRACETIME,
        quiet=config[f"{prefix}-quiet"],
        static=tuple(config[f"{prefix}-to"]),
        pattern=config[f"{prefix}-use-pattern"],
        base=config[f"{prefix}-use-base"],
        fallback=tuple(config[f"{prefix}-fallback"]),
        tolerance=config["subscription-tolerance"],
        algo=config["subscription-algo"],
        dotsplit=config["subscription-dotsplit"],
        use_credentials=config["subscriptions-use-credentials"],
        credentials_check=tuple(config["subscriptions-credentials-check"]),
        sign_check=sign_check(config),
        cheap=config[f"{prefix}-cheap"],
        stats=config[f"{prefix}-stats"])


def mapped_address(settings, key):
    """The node rawrouter-use-pattern or -use-base gives `key` (the
    address of the config, so no client chooses where it leads)."""
    if settings.pattern is not None:
        return settings.pattern.replace("%s", key)
    return settings.base + key


def xclient_line(address):
    """What the node gets in place of its greeting, for a client at
    `address` (an IPv4 address)."""
    return f"XCLIENT ADDR={address}\r\n".encode("ascii")


def listening(config):
    """(address, None: no TLS) of each socket to bind."""
    return [(address, None) for address in config[NAME]]


def run(config, listeners, index, mesh=None, ids=None, to=None):
    """Serve as rawrouter `index` on `listeners` (its Listeners, its
    subscription servers among them) until a stop signal; then exit the
    process."""
    from ugu.router.process import run_corerouter

    def server():
        from ugu.router.rawserver import Rawrouter
        return Rawrouter
    run_corerouter(config, listeners, index, GATEWAY, server,
                   Settings.from_config(config), mesh, ids, to)
