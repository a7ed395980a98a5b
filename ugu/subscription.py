"""uWSGI's subscription packets, on bytes only.

An instance announces itself to a router's subscription server (a UDP or
unix datagram socket) with a uwsgi packet of modifier1 224 whose modifier2
is the command (0 subscribe, 1 unsubscribe) and whose vars say which key
(a Host) the instance serves and at which address, with its modifiers,
cores, load and weight, every value in decimal text.  The router keeps a
pool of nodes per key (ugu.router.subscriptions); the instance's master
sends the packets (ugu.vassal.subscriber).

Also here: the two ways a vassal's config names its subscriptions,
`subscribe-to = [SOCKET=]SERVER:KEY[,MODIFIER1]` and `subscribe2 =
server=...,key=...`, read into Subscription values.
"""

import time
from dataclasses import dataclass, field

from ugu import protocol
from ugu.options.errors import ConfigError
from ugu.options.kvlist import split_escaped

MODIFIER_SUBSCRIPTION = 224
SUBSCRIBE = 0
UNSUBSCRIBE = 1
# The most a router reads of one packet, as uWSGI's.
MAX_PACKET = 4096
# uWSGI refuses longer keys and addresses (its slots hold 255 bytes).
MAX_NAME = 0xFF
_NUMBERS = ("modifier1", "modifier2", "cores", "load", "weight")
_FILES = ("sni_key", "sni_crt", "sni_ca")


@dataclass(frozen=True)
class Announce:
    """What one packet says."""

    command: int
    key: bytes
    address: bytes
    modifier1: int = 0
    modifier2: int = 0
    cores: int = 0
    load: int = 0
    weight: int = 0
    # Files on the router's machine: the key and certificate (and the
    # client CA) of a TLS context for the key's name, which a TLS router
    # adds for clients asking for that name (SNI), as uWSGI's does.
    sni_key: bytes = b""
    sni_crt: bytes = b""
    sni_ca: bytes = b""
    # A unix datagram socket of the instance the router tells of its
    # new node (subscription-notify-socket).
    notify: bytes = b""
    # A signed announce's time (`unix`, seconds since the epoch) and
    # signature (`sign`) of the vars before it (`base`, read only).
    unix: int = 0
    sign: bytes = b""
    base: bytes = field(default=b"", compare=False, repr=False)


def encode(announce, signer=None):
    """The datagram of an Announce; `signer(vars)`: the signature of its
    vars (ugu.subscription_sign.Signer), or None to send it unsigned."""
    pairs = [(b"key", announce.key), (b"address", announce.address)]
    pairs += [(name.encode(), b"%d" % getattr(announce, name))
              for name in _NUMBERS]
    pairs += [(name.encode(), getattr(announce, name)) for name in _FILES
              if getattr(announce, name)]
    if announce.notify:
        pairs.append((b"notify", announce.notify))
    if signer is not None:
        # As uWSGI: the time, plus the command (an unsubscribe's a second
        # later), then the signature of all the vars so far.
        pairs.append((b"unix", b"%d" % (int(time.time())
                                         + announce.command)))
        signature = signer(protocol.encode_vars(pairs))
        if signature:
            pairs.append((b"sign", signature))
    return protocol.encode(pairs, MODIFIER_SUBSCRIPTION, announce.command)


def decode(data):
    """The Announce of a datagram, or None for one that is no
    subscription packet or names no key or address."""
    if len(data) < protocol.HEADER_SIZE:
        return None
    modifier1, _, command = protocol.decode_header(data)
    if modifier1 != MODIFIER_SUBSCRIPTION:
        return None
    try:
        pairs = dict(protocol.decode_vars(data[protocol.HEADER_SIZE:]))
    except protocol.ProtocolError:
        return None
    key, address = pairs.get(b"key", b""), pairs.get(b"address", b"")
    if not key or not address or len(key) > MAX_NAME \
            or len(address) > MAX_NAME:
        return None
    numbers = {name: _number(pairs.get(name.encode(), b""))
               for name in _NUMBERS}
    # As uWSGI keeps them: one byte each.
    numbers["modifier1"] %= 256
    numbers["modifier2"] %= 256
    files = {name: pairs.get(name.encode(), b"") for name in _FILES}
    sign = pairs.get(b"sign", b"")
    # uWSGI's: the vars before the signature, taken as the last one.
    base = data[protocol.HEADER_SIZE:len(data) - (8 + len(sign))] \
        if sign else b""
    return Announce(command, key, address, **numbers, **files,
                    notify=pairs.get(b"notify", b""),
                    unix=_number(pairs.get(b"unix", b"")), sign=sign,
                    base=base)


def atoi(text):
    """C's atoi: blanks, a sign, the digits after it (0 without)."""
    text = text.lstrip(" \t\n\v\f\r")
    sign = -1 if text.startswith("-") else 1
    if text[:1] in "+-":
        text = text[1:]
    return sign * _number(text.encode())


def _number(text):
    """uWSGI's uwsgi_str_num: the leading digits, 0 without any."""
    digits = len(text) - len(text.lstrip(b"0123456789"))
    return int(text[:digits]) if digits else 0


@dataclass(frozen=True)
class Subscription:
    """One subscription of the instance: where to, for which key, with
    which address (None: the first socket's); `keys_file` instead of
    `key` for `SERVER:@FILE`, whose lines (KEY[,MODIFIER1]) are read at
    each announce, as uWSGI reads them."""

    text: str
    server: str
    key: str = ""
    address: str | None = None
    modifier1: int = 0
    modifier2: int = 0
    weight: int | None = None
    keys_file: str | None = None
    # subscribe2's check=FILE: nothing is sent while the file exists.
    check: str | None = None
    # subscribe2's sni_key, sni_crt and sni_ca: files on the router's
    # machine, for a TLS context of the key's name (see Announce).
    sni: tuple = ()
    # The signature: DIGEST:PEMFILE, its private key's.
    sign: str | None = None

    def keys(self):
        """(key, modifier1) pairs to announce."""
        if self.keys_file is None:
            return [(self.key, self.modifier1)]
        try:
            with open(self.keys_file, "rb") as f:
                lines = f.read().decode("latin-1").split("\n")
        except OSError:
            return []
        found = []
        for line in lines:
            if not line or line.startswith("#"):
                continue
            key, _, modifier = line.partition(",")
            found.append((key, _number(modifier.encode()) % 256))
        return found


def parse_subscribe(text, socket_names, option="subscribe-to"):
    """A Subscription of `subscribe-to = [SOCKET=]SERVER:KEY[,MODIFIER1]`
    (SERVER: HOST:PORT or a unix path; SOCKET: an address, or =N for the
    instance's socket N); `socket_names`: the names of its sockets."""
    address, server = None, text
    if "=" in text:
        address, _, server = text.partition("=")
        if address == "":
            number, eq, server = server.partition("=")
            if not eq:
                raise _bad(text, option)
            address = _socket_by_number(number, socket_names, option)
    if server.startswith("/"):
        path, colon, key = server[1:].partition(":")
        server = "/" + path
    else:
        host, colon, rest = server.partition(":")
        port, colon, key = rest.partition(":")
        server = f"{host}:{port}"
        if not port.isdigit():
            raise _bad(text, option)
    if not colon or not key:
        raise _bad(text, option)
    if key.startswith("@"):
        return Subscription(text, server, address=address,
                            keys_file=key[1:])
    key, _, modifier = key.partition(",")
    # As uWSGI looks for the signature: after the modifier's first
    # character.
    sign = None
    comma = modifier.find(",", 1)
    if comma >= 0:
        modifier, sign = modifier[:comma], modifier[comma + 1:]
    return Subscription(text, server, key, address,
                        _number(modifier.encode()) % 256, sign=sign)


def _bad(text, option):
    return ConfigError(
        f"'{text}' is no subscription: write SERVER:KEY, SERVER being "
        f"the router's subscription server (HOST:PORT or a unix path), "
        f"KEY the Host it routes here (as 127.0.0.1:4000:example.com)",
        option=option)


def _socket_by_number(number, socket_names, option):
    if not number.isdigit() or int(number) >= len(socket_names):
        raise ConfigError(f"no socket {number} to announce (the "
                          f"instance has {len(socket_names)}, counted "
                          f"from 0)", option=option)
    return socket_names[int(number)]


_SUBSCRIBE2_KEYS = ("server", "key", "socket", "addr", "weight",
                    "modifier1", "modifier2", "check", "sign", *_FILES)


def parse_subscribe2(text, socket_names, option="subscribe2"):
    """A Subscription of `subscribe2 = server=...,key=...[,socket=N]
    [,addr=ADDR][,weight=N][,modifier1=N][,modifier2=N][,check=FILE]
    [,sni_key=FILE,sni_crt=FILE[,sni_ca=FILE]]`."""
    items = {}
    for item in split_escaped(text, ","):
        name, eq, value = item.partition("=")
        if not eq or name not in _SUBSCRIBE2_KEYS:
            raise ConfigError(
                f"unknown item '{item}' (write key=value items among "
                f"{', '.join(_SUBSCRIBE2_KEYS)})", option=option)
        items[name] = value
    if not items.get("server") or not items.get("key"):
        raise ConfigError(f"'{text}' needs server= and key=",
                          option=option)
    address = items.get("addr")
    if "socket" in items:
        address = _socket_by_number(items["socket"], socket_names, option)
    weight = items.get("weight")
    return Subscription(
        text, items["server"], items["key"], address,
        _number(items.get("modifier1", "").encode()) % 256,
        _number(items.get("modifier2", "").encode()) % 256,
        None if weight is None else _number(weight.encode()),
        check=items.get("check"), sign=items.get("sign") or None,
        sni=tuple((name, items[name].encode()) for name in _FILES
                  if items.get(name)))


# subscription-algo's names (uWSGI 2.0's), ugu.router.subscriptions has
# them.
ALGOS = ("wrr", "lrc", "wlrc")


def check_algo(config):
    algo = config["subscription-algo"]
    if algo is not None and algo not in ALGOS:
        raise ConfigError(
            f"no algorithm '{algo}': write wrr (weighted round robin, the "
            f"default), lrc (the node of the fewest connections open) or "
            f"wlrc (the fewest by weight)", option="subscription-algo")


def check_credentials(config, option):
    """subscriptions-use-credentials reads a sender's credentials off a
    unix socket only: uWSGI drops every announce its UDP servers get
    then, which ugu refuses to start with."""
    if not config["subscriptions-use-credentials"]:
        return
    for name in config[option]:
        if not name.startswith(("/", "@")) and ":" in name:
            raise ConfigError(
                f"'{name}' is a UDP subscription server, and an announce "
                f"over UDP comes with no credentials, which uWSGI drops "
                f"every one of: make it a unix socket (a path), or remove "
                f"subscriptions-use-credentials", option=option)


def sign_check(config):
    """(DIGEST:DIR, tolerance, the uids skipped) of a router's
    subscriptions-sign-check, or None; refused where it is wrong."""
    spec = config["subscriptions-sign-check"]
    if not spec:
        return None
    uids = []
    for text in config["subscriptions-sign-skip-uid"]:
        uid = atoi(text)
        if uid <= 0:
            raise ConfigError(
                f"'{text}' is no uid to skip (uWSGI skips none of 0, as "
                f"of no number): write a uid over 0",
                option="subscriptions-sign-skip-uid")
        uids.append(uid)
    found = (spec, config["subscriptions-sign-check-tolerance"], tuple(uids))
    from ugu.subscription_sign import Checker
    Checker(*found, pid=0)
    return found


def checker(found, pid):
    """The Checker of sign_check()'s value, or None."""
    if found is None:
        return None
    from ugu.subscription_sign import Checker
    return Checker(*found, pid=pid)


def deprecated_lines(config):
    """uWSGI's warnings for its deprecated options, which it ignores."""
    for name in ("fastrouter-subscription-slot",
                 "rawrouter-subscription-slot"):
        if config[name] is not None:
            yield (f'[WARNING] option "{name}" is deprecated: useless '
                   f'thanks to the new implementation')


class Server:
    """Marks a router listener that is a subscription server (the
    `tls` slot of ugu.vassal.sockets.Listener, which says how the router
    serves each of its sockets)."""
