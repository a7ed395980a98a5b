"""Binding the vassal's listening sockets, and keeping them across reloads.

uWSGI address forms: `HOST:PORT`, `:PORT` (all interfaces), a path for a
unix socket, or `@NAME` for one in Linux's abstract namespace (no file).  A
reload re-executes the master; the listening sockets stay open and their
numbers travel in `UGU_INHERITED_SOCKETS`, so no connection is refused
while the new master starts.
"""

import errno
import grp
import os
import pwd
import re
import socket
import stat
import struct
from dataclasses import dataclass

from ugu import abstract, log
from ugu.options.errors import ConfigError

INHERIT_ENV = "UGU_INHERITED_SOCKETS"

MAX_PORT = 65535
SOMAXCONN = "/proc/sys/net/core/somaxconn"

UWSGI = "uwsgi"
HTTP = "http"
HTTP11 = "http11"   # http11-socket: HTTP whose connections stay open
HTTPS = "https"     # https-socket: HTTP over TLS
SUWSGI = "suwsgi"   # ssl-socket: the uwsgi protocol over TLS
ROUTER = "router"
FASTROUTER = "fastrouter"   # uwsgi in, passed on to a node (fastrouter)
RAWROUTER = "rawrouter"     # bytes in, passed on to a node (rawrouter)
SSLROUTER = "sslrouter"     # TLS in, its bytes passed on (sslrouter)
FASTCGI = "fastcgi"
FASTCGI_NPH = "fastcgi-nph"     # the response head has HTTP's status line
SCGI = "scgi"
SCGI_NPH = "scgi-nph"
# The sockets of the gateways (the routers' processes), not the workers'.
GATEWAYS = (ROUTER, FASTROUTER, RAWROUTER, SSLROUTER)
# The name each gateway goes by in uWSGI's lines.
GATEWAY_NAMES = {ROUTER: "uWSGI http", FASTROUTER: "uWSGI fastrouter",
                 RAWROUTER: "uWSGI rawrouter", SSLROUTER: "uWSGI sslrouter"}
# The option that declares each kind of socket, for error messages.
OPTION = {UWSGI: "socket", HTTP: "http-socket", HTTP11: "http11-socket",
          HTTPS: "https-socket", SUWSGI: "ssl-socket",
          ROUTER: "http", FASTROUTER: "fastrouter", RAWROUTER: "rawrouter",
          SSLROUTER: "sslrouter",
          FASTCGI: "fastcgi-socket", FASTCGI_NPH: "fastcgi-nph-socket",
          SCGI: "scgi-socket", SCGI_NPH: "scgi-nph-socket"}
# The kinds of socket the workers serve, and of them those that speak HTTP
# and those that speak a CGI gateway protocol (FastCGI, SCGI).
WORKER_PROTOCOLS = (UWSGI, HTTP, HTTP11, HTTPS, SUWSGI, FASTCGI,
                    FASTCGI_NPH, SCGI, SCGI_NPH)
HTTP_PROTOCOLS = (HTTP, HTTP11, HTTPS)
# The worker sockets that speak TLS (ugu.vassal.tls_socket), each with
# its context in the Listener's `tls`.
TLS_PROTOCOLS = (HTTPS, SUWSGI)
CGI_PROTOCOLS = (FASTCGI, FASTCGI_NPH, SCGI, SCGI_NPH)
# `protocol` (`socket-protocol`): what the `socket` addresses speak, by
# uWSGI's names; those ugu speaks, as its kinds of socket.
SPOKEN = {"uwsgi": UWSGI, "http": HTTP, "http11": HTTP11,
          "fastcgi": FASTCGI, "fastcgi-nph": FASTCGI_NPH, "scgi": SCGI,
          "scgi-nph": SCGI_NPH}
# uWSGI 2.0's other protocols, and what to use instead of each.
_UNSPOKEN = {
    "puwsgi": "write `protocol = uwsgi` (the web server then opens one "
              "connection per request)",
    **dict.fromkeys(
        ("suwsgi", "https"),
        "a socket speaking TLS needs its certificate: write "
        "`https-socket = ADDR,CERT,KEY` or `ssl-socket = ADDR,CERT,KEY`"),
    "raw": "its workers serve WSGI apps over uwsgi or HTTP only",
}
# A bare chmod-socket: uWSGI's mode "for lazy and brave users".
LAZY_MODE = 0o666
# Linux's IP_FREEBIND (Python's socket module does not name it).
IP_FREEBIND = 15


@dataclass(frozen=True)
class Tuning:
    """What the config asks of each socket bound here, read once: uWSGI
    sets the TCP options on every TCP socket it binds (the router's
    too), chmod and chown on the unix ones."""
    defer_accept: int = 0      # seconds; see bind
    mode: int | None = None    # chmod-socket (socket_mode)
    owner: str | None = None   # chown-socket: USER[:GROUP], names or ids
    keepalive: bool = False    # so-keepalive
    reuse_port: bool = False
    freebind: bool = False
    send_timeout: int = 0      # so-send-timeout, seconds
    fast_open: int = 0         # tcp-fast-open: the queue of TFO requests
    send_buffer: int = 0       # socket-sndbuf, bytes
    receive_buffer: int = 0    # socket-rcvbuf, bytes

    @classmethod
    def from_config(cls, config):
        return cls(
            defer_accept=(0 if config["no-defer-accept"]
                          else config["socket-timeout"]),
            mode=socket_mode(config), owner=config["chown-socket"],
            keepalive=config["so-keepalive"],
            reuse_port=config["reuse-port"], freebind=config["freebind"],
            send_timeout=config["so-send-timeout"],
            fast_open=config["tcp-fast-open"],
            send_buffer=config["socket-sndbuf"],
            receive_buffer=config["socket-rcvbuf"])


def socket_mode(config):
    """The mode `chmod-socket` asks for unix sockets: None when it is not
    set, 0 for the bare option (uWSGI's 666 "for lazy and brave users")."""
    value = config["chmod-socket"]
    if value is None:
        return None
    # As uWSGI: the bare option (or 1) means 666, anything else must be
    # three octal digits (an empty value or `0660` stop the start).  The
    # command line gives the bare option as `true`, which uWSGI refuses in
    # an INI file and ugu takes for the bare option there too.
    if value in ("true", "1"):
        return 0
    if not re.fullmatch("[0-7]{3}", value):
        raise ConfigError(f"invalid chmod value: {value} (write three octal "
                          f"digits, as 660, or no value for 666)",
                          option="chmod-socket")
    return int(value, 8)


@dataclass
class Listener:
    name: str          # the address as written in the config
    proto: str         # UWSGI, HTTP (http-socket), HTTP11, ROUTER (http)
                       # FASTROUTER, or a CGI kind (FASTCGI...)
    sock: socket.socket
    # A unix socket's file, as bound: vacuum removes only that file, not
    # one another process has bound at the same path since.
    inode: int | None = None
    # How the router serves the address: an ssl.SSLContext for `https`
    # (ugu.router.https), a Redirect for `http-to-https`
    # (ugu.router.redirect), None for `http`; a worker socket's
    # ssl.SSLContext for `https-socket` and `ssl-socket`.
    tls: object = None
    # Handed over by a zerg server (`zerg`): its file is the server's,
    # never vacuumed here.
    zerg: bool = False

    @property
    def port(self):
        address = self.sock.getsockname()
        return str(address[1]) if isinstance(address, tuple) else ""


def parse_address(text, option=None):
    """A (host, port) tuple for TCP, or a path string for a unix socket."""
    if "/" in text or ":" not in text:
        return text
    host, _, port = text.rpartition(":")
    if not port.isdigit() or int(port) > MAX_PORT:
        raise ConfigError(f"invalid port in address '{text}' (a TCP port "
                          f"is 0 to {MAX_PORT})", option=option)
    return (host or "0.0.0.0", int(port))


def socket_protocol(name):
    """The kind of socket `socket = ADDR` binds where `protocol = name`
    (None: unset, uwsgi as in uWSGI)."""
    if name is None:
        return UWSGI
    if name in SPOKEN:
        return SPOKEN[name]
    if name in _UNSPOKEN:
        raise ConfigError(f"ugu does not speak the {name} protocol; "
                          f"{_UNSPOKEN[name]}", option="protocol")
    # uWSGI's words; it stops the start too.
    raise ConfigError(f"unable to find protocol {name} (write uwsgi, "
                      f"http, http11, fastcgi, fastcgi-nph, scgi or "
                      f"scgi-nph)", option="protocol")


def bind(name, proto, backlog, inherited, index, tuning=Tuning()):
    """A listening socket for the address, reusing an inherited one.
    `index` numbers the socket in the log, as uWSGI's "socket 0".  With
    `tuning.defer_accept` seconds, as uWSGI sets by default (its
    socket-timeout), a TCP connection is accepted only once its first
    bytes arrive, or after that long: a connection that sends nothing
    holds no core.  A unix socket bound here gets the tuning's mode and
    owner (the router's no owner, as uWSGI's); an inherited socket keeps
    what it has."""
    key = f"{proto}:{name}"
    if name.startswith("="):
        # A shared socket's (shared-socket), bound before the jail and
        # the drop; at a reload its key names the shared socket's own
        # descriptor, kept by that.
        return _from_shared(name, proto, index, inherited)
    if key in inherited:
        sock = socket.socket(fileno=inherited.pop(key))
        _log_bound(name, proto, sock, index, inherited=True)
        return Listener(name, proto, sock, unix_inode(sock))
    address = parse_address(name, OPTION[proto])
    _check_backlog(backlog)
    sock = _new_socket(address)
    set_buffers(sock, tuning)
    if sock.family == socket.AF_INET:
        tune_tcp(sock, tuning, name)
    else:
        if abstract.bound_abstract(address):
            abstract.announce()
        address = abstract.bind_sockaddr(address)
    _listen(sock, address, name, OPTION[proto], backlog)
    if sock.family == socket.AF_UNIX:
        _set_file_mode(sock, name, tuning, proto not in GATEWAYS)
    _log_bound(name, proto, sock, index)
    return Listener(name, proto, sock, unix_inode(sock))


# shared-socket's and undeferred-shared-socket's sockets, in the order
# written, which `=N` names.
_shared = []
# The key a shared socket is passed on under at a reload.
_SHARED_KEY = "shared:"


def bind_shared(config, backlog):
    """shared-socket and undeferred-shared-socket: bound as uWSGI binds
    them, once the config is read, before the jail and the drop of
    privileges (a port under 1024 for the workers of a user); a reload
    inherits them."""
    inherited = {key: fd for key, fd in _inherited_items(os.environ)
                 if key.startswith(_SHARED_KEY)}
    names = [entry for entry in config.entries
             if not entry.placeholder and entry.key in (
                 "shared-socket", "undeferred-shared-socket")]
    for number, entry in enumerate(names):
        key = f"{_SHARED_KEY}{number}"
        if key in inherited:
            sock, how = socket.socket(fileno=inherited[key]), "inherited"
        else:
            sock = _bind_shared_one(entry.value, entry.key, backlog)
            how = "bound to"
        unix = sock.family == socket.AF_UNIX
        name = entry.value if unix else _address_name(sock)
        log.log(f"uwsgi shared socket {number} {how} "
                f"{'UNIX' if unix else 'TCP'} address {name} fd "
                f"{sock.fileno()}")
        _shared.append((name, sock))


def _address_name(sock):
    host, port = sock.getsockname()[:2]
    return f"{host}:{port}"


def _bind_shared_one(name, option, backlog):
    address = parse_address(name, option)
    sock = _new_socket(address)
    if isinstance(address, str) and abstract.bound_abstract(address):
        abstract.announce()
        address = abstract.bind_sockaddr(address)
    return _listen(sock, address, name, option, backlog)


def shared_for_reload():
    """(key, socket) of each shared socket, for export_for_reload."""
    return [(f"{_SHARED_KEY}{number}", sock)
            for number, (_, sock) in enumerate(_shared)]


def _from_shared(name, proto, index, inherited):
    """A Listener on the shared socket `=N` names, said as uWSGI says
    it, and named by the shared socket's address, as uWSGI names it."""
    number = atoi_number(name[1:])
    if number is None or number >= len(_shared):
        raise ConfigError(f"unable to use shared socket {name[1:]}: the "
                          f"shared-socket lines give =0 to "
                          f"={len(_shared) - 1}" if _shared else
                          f"unable to use shared socket {name[1:]}: no "
                          f"shared-socket line binds one",
                          option=OPTION[proto])
    shared_name, sock = _shared[number]
    # Passed on at a reload under that name: the same descriptor.
    inherited.pop(f"{proto}:{shared_name}", None)
    if proto in GATEWAYS:
        _log_bound(shared_name, proto, sock, index)
    else:
        log.log(f"uwsgi socket {index} mapped to shared socket {number} "
                f"({shared_name}) fd {sock.fileno()}")
    return Listener(shared_name, proto, sock, unix_inode(sock))


def atoi_number(text):
    return int(text) if text.isdigit() else None


def bind_unix(path, backlog, option):
    """A listening unix socket of the master's own (a zerg server's) at a
    path or @NAME; a stale file there goes, a live one stops the start."""
    sock = _new_socket(path)
    if abstract.is_abstract(path):
        abstract.announce()
    return _listen(sock, abstract.sockaddr(path), path, option, backlog)


def bind_plain(name, backlog, option):
    """A listening socket on HOST:PORT, :PORT or a unix path, bound for
    another process to serve (a zergpool's), with none of the workers'
    tuning."""
    address = parse_address(name, option)
    if not isinstance(address, tuple):
        return bind_unix(address, backlog, option)
    return _listen(_new_socket(address), address, name, option, backlog)


# The name a subscription server's socket is passed on under at a reload,
# apart from an `http` listener's at the same address.
_DATAGRAM = "dgram:"


def bind_datagram(name, inherited, proto=ROUTER):
    """A router's subscription server (`http-subscription-server`,
    `fastrouter-subscription-server`): a UDP socket on HOST:PORT, or a
    unix datagram socket on a path, reusing an inherited one; a Listener
    of the gateway `proto`, announced in uWSGI's words."""
    owner = GATEWAY_NAMES[proto]
    option = f"{OPTION[proto]}-subscription-server"
    key = f"{proto}:{_DATAGRAM}{name}"
    if key in inherited:
        sock = socket.socket(fileno=inherited.pop(key))
    else:
        address = parse_address(name, option)
        if isinstance(address, tuple):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        else:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            if not abstract.is_abstract(address):
                # As uWSGI: a socket file there goes (no peer to ask).
                _remove_socket_file(address)
            address = abstract.sockaddr(address)
        try:
            sock.bind(address)
        except OSError as e:
            sock.close()
            raise ConfigError(f"cannot bind the subscription server on "
                              f"{name}: {e.strerror or e}",
                              option=option) from None
    log.log(f"{owner} subscription server bound on {name} fd "
            f"{sock.fileno()}")
    return Listener(_DATAGRAM + name, proto, sock, unix_inode(sock))


def tune_tcp(sock, tuning, name):
    """uWSGI's options of a TCP socket, set before it binds; each
    connection accepted from it starts with the same (Linux copies
    them), so keepalive and the send timeout reach the workers'
    connections with no work per request."""
    if tuning.freebind:
        sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
    if tuning.reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if tuning.fast_open:
        _enable_fast_open(sock, tuning.fast_open, name)
    if tuning.send_timeout:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO,
                        struct.pack("ll", tuning.send_timeout, 0))
    if tuning.defer_accept:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT,
                        tuning.defer_accept)
    if tuning.keepalive:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


def set_buffers(sock, tuning):
    """socket-sndbuf and socket-rcvbuf, on a stream socket of either
    family before it binds; the connections it accepts start with the
    same sizes.  As uWSGI, the number goes to the kernel as an unsigned
    32-bit one, which caps it (at net.core.wmem_max, rmem_max)."""
    for name, size, option in (
            ("SO_SNDBUF", tuning.send_buffer, "socket-sndbuf"),
            ("SO_RCVBUF", tuning.receive_buffer, "socket-rcvbuf")):
        if not size:
            continue
        try:
            sock.setsockopt(socket.SOL_SOCKET, getattr(socket, name),
                            struct.pack("I", size & 0xFFFFFFFF))
        except OSError as e:
            sock.close()
            raise ConfigError(f"{name} setsockopt(): {e.strerror} (give "
                              f"{option} a size in bytes the kernel "
                              f"takes)", option=option) from None


def _enable_fast_open(sock, queue, name):
    """TCP Fast Open: a client's data may come with its SYN, up to
    `queue` such connections pending.  As in uWSGI, a kernel that
    refuses it costs a line, not the start."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, queue)
    except OSError as e:
        log.log(f"TCP_FASTOPEN setsockopt(): {e.strerror} "
                f"[core/socket.c line 719]")
    else:
        log.log(f"TCP_FASTOPEN enabled on {name}")


def set_nodelay(conn):
    """tcp-nodelay, on a connection just accepted: as uWSGI, on every
    one, so that a unix socket's says it cannot (each time, in uWSGI's
    words)."""
    try:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError as e:
        log.log(f"uwsgi_tcp_nodelay()/setsockopt(): {e.strerror} "
                f"[core/socket.c line 1901]")


# struct tcp_info up to tcpi_sacked: 8 one-byte fields, then six u32s.
# On a listening socket Linux reports its accept queue in tcpi_unacked
# and the queue's size in tcpi_sacked.
_TCP_INFO = struct.Struct("8B6I")


def listen_queue(listener):
    """(connections waiting to be accepted, the most that may wait) of a
    TCP listener, or None."""
    if listener.sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        info = listener.sock.getsockopt(socket.IPPROTO_TCP,
                                        socket.TCP_INFO, _TCP_INFO.size)
    except OSError:
        return None
    fields = _TCP_INFO.unpack_from(info)
    return fields[12], fields[13]


def unix_inode(sock):
    """The inode of a unix socket's file, or None (TCP, abstract, gone)."""
    path = sock.getsockname()
    if sock.family != socket.AF_UNIX or not isinstance(path, str) or \
            not path:
        return None
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def _check_backlog(backlog, limit_file=SOMAXCONN):
    """uWSGI refuses a listen queue the kernel would silently cut."""
    try:
        with open(limit_file) as f:
            limit = int(f.read())
    except (OSError, ValueError):
        return
    if backlog > limit:
        raise ConfigError(f"Listen queue size is greater than the system "
                          f"max net.core.somaxconn ({limit}): lower "
                          f"`listen` or raise net.core.somaxconn with "
                          f"sysctl", option="listen")


def _new_socket(address):
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    elif not abstract.bound_abstract(address) and \
            os.path.exists(address):
        _remove_stale_unix_socket(address)
    return sock


def _listen(sock, address, name, option, backlog):
    """`sock` bound to `address` and listening; where the bind fails,
    closed, and the start stopped naming the address as written."""
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        _say_bind_failed(e, name, address)
        raise _bind_error(e, name, option) from None
    sock.listen(backlog)
    return sock


def _say_bind_failed(error, name, address):
    """uWSGI's lines for a bind the kernel refused, which log watchers
    look for; ugu's own, naming the option and the fix, follows."""
    if error.errno is None:
        return
    if not isinstance(address, tuple):
        log.log(f"bind(): {error.strerror} [core/socket.c line 230]")
        return
    if error.errno == errno.EADDRINUSE:
        log.log(f"probably another instance of uWSGI is running on the "
                f"same address ({name}).")
    log.log(f"bind(): {error.strerror} [core/socket.c line 769]")


def _bind_error(error, name, option):
    hint = ""
    if error.errno == errno.EADDRINUSE:
        hint = (" (another process holds this address: stop it, or "
                "choose another one)")
    elif error.errno is None:
        # Python's own check, before the kernel's: a name too long.
        hint = (" (Linux keeps a unix socket's name, @NAME's too, in 108 "
                "bytes: choose a shorter one)")
    return ConfigError(f"cannot bind {name}: "
                       f"{error.strerror or error}{hint}",
                       option=option)


def _set_file_mode(sock, name, tuning, owned):
    """chmod-socket, then chown-socket where `owned`, on a unix socket's
    file.  An abstract socket has none: uWSGI leaves its mode, and its
    chown() fails and stops the start; so does ugu's, saying why."""
    if not abstract.bound_abstract(name):
        if tuning.mode is not None:
            chmod(sock, tuning.mode)
        if tuning.owner and owned:
            _chown(sock.getsockname(), tuning.owner)
    elif tuning.owner and owned:
        raise ConfigError(f"chown() {name}: an abstract socket has no "
                          f"file to chown (drop chown-socket, or bind a "
                          f"path)", option="chown-socket")


def chmod(sock, mode):
    """As uWSGI, between binding and saying so; only the lazy mode is
    said."""
    if not mode:
        log.log("chmod() socket to 666 for lazy and brave users")
        mode = LAZY_MODE
    os.chmod(sock.getsockname(), mode)


def _chown(path, owner):
    """chown-socket's USER[:GROUP], each a name or a number (an empty one
    is 0, as uWSGI reads it); a group left out stays as it is.  A name
    that is not there stops the start in uWSGI's words, the socket's
    file left behind, as uWSGI leaves it."""
    user, colon, group = owner.partition(":")
    uid = _owner_id(user, pwd.getpwnam, "pw_uid", "user")
    gid = _owner_id(group, grp.getgrnam, "gr_gid", "group") \
        if colon else -1
    try:
        os.chown(path, uid, gid)
    except OSError as e:
        raise ConfigError(f"chown() {path}: {e.strerror}",
                          option="chown-socket") from None


def _owner_id(name, getter, field, kind):
    if all(c in "0123456789" for c in name):
        return int(name or 0)
    try:
        return getattr(getter(name), field)
    except KeyError:
        raise ConfigError(f"unable to find {kind} {name}",
                          option="chown-socket") from None


def _remove_socket_file(path):
    try:
        if stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
    except OSError:
        pass


def _remove_stale_unix_socket(path):
    probe = socket.socket(socket.AF_UNIX)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
    except OSError:
        pass
    finally:
        probe.close()


def _log_bound(name, proto, sock, index, inherited=False):
    fd = sock.fileno()
    if proto in GATEWAYS:
        log.log(f"{GATEWAY_NAMES[proto]} bound on {name} fd {fd}")
        return
    unix = sock.family == socket.AF_UNIX
    if inherited:
        kind = "UNIX" if unix else "INET"
        log.log(f"uwsgi socket {index} inherited {kind} address {name} fd "
                f"{fd}")
        return
    auto = ""
    if not unix and name.endswith(":0"):
        host, port = sock.getsockname()[:2]
        name, auto = f"{host}:{port}", " (port auto-assigned)"
    log.log(f"uwsgi socket {index} bound to {'UNIX' if unix else 'TCP'} "
            f"address {name}{auto} fd {fd}")


def log_kept(listeners):
    """What a master says before it re-executes itself, after
    proc.return_home's lines, as uWSGI's does: every other descriptor
    closes with the exec, the worker sockets (in descriptor order) stay
    open for the new master."""
    numbered = [l for l in listeners if l.proto not in GATEWAYS]
    # By descriptor, a worker socket's line before its shared socket's.
    kept = [(l.sock.fileno(), 0, f"socket {index} ({l.name})")
            for index, l in enumerate(numbered)]
    kept += [(sock.fileno(), 1, f"shared socket {number} ({name})")
             for number, (name, sock) in enumerate(_shared)]
    for fd, _, what in sorted(kept):
        log.log(f"found fd {fd} mapped to {what}")


def adopt_stdin(proto, index, inherited, skip=False):
    """A listening socket found as stdin (an on-demand vassal's, which its
    Emperor bound) is one more socket of the instance, numbered `index`,
    as uWSGI takes it.  None where stdin is no listening socket, or
    where `skip` (skip-zero) says not to look."""
    for key, fd in list(inherited.items()):
        if fd == 0:
            # Passed on by the master re-executed: adopted again below.
            del inherited[key]
    if skip:
        return None
    try:
        if not stat.S_ISSOCK(os.fstat(0).st_mode):
            return None
    except OSError:
        return None
    sock = socket.socket(fileno=0)
    try:
        listening = sock.type == socket.SOCK_STREAM and \
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        address = sock.getsockname()
    except OSError:
        listening = False
    if not listening:
        sock.detach()   # not ours to close
        return None
    if sock.family == socket.AF_UNIX:
        name, kind = address if isinstance(address, str) else \
            address.decode("utf-8", "replace"), "UNIX"
    else:
        name, kind = f"{address[0]}:{address[1]}", "INET"
    log.log(f"uwsgi socket {index} inherited {kind} address {name} fd 0")
    return Listener(name, proto, sock, unix_inode(sock))


def inherited_sockets(environ=os.environ):
    """{"proto:name": fd} passed by the master we were re-executed from."""
    # The shared sockets' are bind_shared's, which took them already.
    return {key: fd for key, fd in
            _inherited_items({INHERIT_ENV: environ.pop(INHERIT_ENV, "")})
            if not key.startswith(_SHARED_KEY)}


def _inherited_items(environ):
    for item in filter(None, environ.get(INHERIT_ENV, "").split(",")):
        key, _, fd = item.rpartition("=")
        yield key, int(fd)


def export_for_reload(listeners, others=()):
    """Mark the sockets inheritable and describe them for the next exec;
    `others` are (key, socket) pairs of sockets that serve no worker."""
    pairs = [(f"{'zerg:' if l.zerg else ''}{l.proto}:{l.name}", l.sock)
             for l in listeners] + list(others)
    for _, sock in pairs:
        sock.set_inheritable(True)
    os.environ[INHERIT_ENV] = ",".join(
        f"{key}={sock.fileno()}" for key, sock in pairs)


def close_unused(inherited):
    """Sockets the old config had and the new one dropped."""
    for fd in inherited.values():
        os.close(fd)


def socket_map(config, worker_sockets):
    """map-socket's `SOCKET:WORKER[,WORKER...]` lines as {socket number:
    the workers that accept on it}; a socket no line names stays every
    worker's.  What uWSGI refuses as each worker starts (no ':', a worker
    out of 1..processes) stops the start here, naming the line; so does
    a socket number the instance does not have, which uWSGI skips."""
    found = {}
    for value in config["map-socket"]:
        number, colon, workers = value.partition(":")
        if not colon or not number.strip().isdigit():
            raise ConfigError(f"invalid socket mapping '{value}', must be "
                              "socket:worker[,worker...]",
                              option="map-socket")
        if int(number) >= worker_sockets:
            raise ConfigError(f"socket mapping '{value}' names socket "
                              f"{int(number)}, and the workers have "
                              f"{worker_sockets} (numbered from 0)",
                              option="map-socket")
        # A later line for the same socket decides alone, as in uWSGI.
        wids = found[int(number)] = set()
        for word in filter(None, workers.split(",")):
            wid = int(word) if word.strip().isdigit() else 0
            if not 1 <= wid <= config["processes"]:
                raise ConfigError(f"invalid worker num: {word} (workers "
                                  f"are 1 to {config['processes']})",
                                  option="map-socket")
            wids.add(wid)
    return found


def map_for_worker(mapping, wid, listeners):
    """The worker's own listeners, uWSGI's line for each one mapped to
    it; the others are closed in it (their fds then read /dev/null, as
    uWSGI leaves them)."""
    kept = []
    for number, listener in enumerate(listeners):
        wids = mapping.get(number)
        if wids is None:
            kept.append(listener)
        elif wid in wids:
            log.log(f"mapped socket {number} ({listener.name}) to worker "
                    f"{wid}")
            kept.append(listener)
        else:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, listener.sock.fileno())
            os.close(null)
    return kept
