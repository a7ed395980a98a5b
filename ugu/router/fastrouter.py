"""uWSGI's fastrouter (`fastrouter = ADDR`): the "uWSGI fastrouter N"
processes.

A client (nginx's uwsgi_pass, most often) sends a uwsgi packet; its vars
name a key, and the key a node, which gets the packet (with the node's
modifiers, 0 for all but subscribed nodes, as uWSGI sets them) and then
whatever the client sends; what the node answers goes back as it comes,
until the node closes.  The fastrouter never reads HTTP: a request it
cannot place (no key, no node, no node that accepts) is closed without a
byte, as uWSGI's is, and the web server in front answers it (nginx: 502).

This module is what the master needs (the settings, the entry point) and
the pure parts; the process itself is ugu.router.fastserver, imported
once gevent has patched it.
"""

from dataclasses import dataclass

from ugu import protocol
from ugu.router import rawrouter

NAME = "fastrouter"
GATEWAY = "uWSGI fastrouter"
# The longest key uWSGI takes; a longer value leaves the key unset.
MAX_KEY = 0xFF
# Its sockets accept a connection once its first bytes come (unless
# no-defer-accept), as uWSGI's.
UNDEFERRED = False
# The options that bind its sockets.
LISTEN = (NAME,)
# What its first option takes, for the line saying to add it.
ADDRESS = "ADDR"
_KEY_VARS = (b"SERVER_NAME", b"HTTP_HOST", b"UWSGI_FASTROUTER_KEY")


@dataclass(frozen=True)
class Settings:
    timeout: int
    read_size: int
    gracetime: int
    quiet: bool
    post_buffering: int
    static: tuple
    pattern: str | None
    base: str | None
    fallback: tuple
    fallback_on_no_key: bool
    fallback_key: bytes | None
    tolerance: int
    cheap: bool
    stats: str | None
    resubscribe: tuple = ()
    resubscribe_bind: str | None = None
    algo: str | None = None
    dotsplit: bool = False
    use_credentials: bool = False
    credentials_check: tuple = ()
    sign_check: tuple | None = None

    @classmethod
    def from_config(cls, config):
        key = config["fastrouter-subscription-fallback-key"]
        return cls(**rawrouter.shared_settings(config, NAME),
                   resubscribe=tuple(config["fastrouter-resubscribe"]),
                   resubscribe_bind=config["fastrouter-resubscribe-bind"],
                   post_buffering=max(config["fastrouter-post-buffering"], 0),
                   fallback_on_no_key=config["fastrouter-fallback-on-no-key"],
                   fallback_key=key.encode() if key else None)


def request_key(block):
    """(the request's key or None, its CONTENT_LENGTH) from a vars block,
    as uWSGI's fastrouter reads them, var by var: SERVER_NAME where no
    key was read yet, HTTP_HOST unless UWSGI_FASTROUTER_KEY came, and
    UWSGI_FASTROUTER_KEY always (each over what was read before, so the
    last wins, and an empty one leaves no key); a value over 255 bytes
    is skipped."""
    key, has_key, length = b"", False, 0
    for name, value in protocol.decode_vars(block):
        if name == b"CONTENT_LENGTH":
            length = int(value) if value.isdigit() else 0
        elif name not in _KEY_VARS or len(value) > MAX_KEY:
            continue
        elif name == b"UWSGI_FASTROUTER_KEY":
            key, has_key = value, True
        elif name == b"HTTP_HOST":
            if not has_key:
                key = value
        elif not key:
            key = value
    return key or None, length


def mapped_address(settings, key):
    """The node address fastrouter-use-pattern or -use-base gives `key`;
    None for a key with a "/" or a NUL, which would lead out of the
    folder the base or pattern names (uWSGI puts any Host there, so
    `../admin` reaches another socket)."""
    text = key.decode("latin-1")
    if "/" in text or "\0" in text:
        return None
    if settings.pattern is not None:
        return settings.pattern.replace("%s", text)
    return settings.base + text


def listening(config):
    """(address, None: no TLS) of each socket to bind."""
    return [(address, None) for address in config[NAME]]


def run(config, listeners, index, mesh=None, ids=None, to=None):
    """Serve as fastrouter `index` on `listeners` (the fastrouter's
    Listeners, its subscription servers among them) until a stop signal;
    then exit the process."""
    from ugu.router.process import run_corerouter

    def server():
        from ugu.router.fastserver import Fastrouter
        return Fastrouter
    run_corerouter(config, listeners, index, GATEWAY, server,
                   Settings.from_config(config), mesh, ids, to)
