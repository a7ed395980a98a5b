"""Binding the vassal's listening sockets, and keeping them across reloads.

uWSGI address forms: `HOST:PORT`, `:PORT` (all interfaces), or a path for a
unix socket.  A reload re-executes the master; the listening sockets stay
open and their numbers travel in `UGU_INHERITED_SOCKETS`, so no connection
is refused while the new master starts.
"""

import errno
import os
import resource
import socket
import struct
from dataclasses import dataclass

from ugu import log
from ugu.options.errors import ConfigError

INHERIT_ENV = "UGU_INHERITED_SOCKETS"

MAX_PORT = 65535
SOMAXCONN = "/proc/sys/net/core/somaxconn"

UWSGI = "uwsgi"
HTTP = "http"
ROUTER = "router"
# The option that declares each kind of socket, for error messages.
OPTION = {UWSGI: "socket", HTTP: "http-socket", ROUTER: "http"}
# A bare chmod-socket: uWSGI's mode "for lazy and brave users".
LAZY_MODE = 0o666


@dataclass
class Listener:
    name: str          # the address as written in the config
    proto: str         # UWSGI, HTTP (http-socket) or ROUTER (http)
    sock: socket.socket
    # A unix socket's file, as bound: vacuum removes only that file, not
    # one another process has bound at the same path since.
    inode: int | None = None
    # How the router serves the address: an ssl.SSLContext for `https`
    # (ugu.router.https), a Redirect for `http-to-https`
    # (ugu.router.redirect), None for `http`.
    tls: object = None

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


def bind(name, proto, backlog, inherited, index, defer_accept=0,
         mode=None):
    """A listening socket for the address, reusing an inherited one.
    `index` numbers the socket in the log, as uWSGI's "socket 0".  With
    `defer_accept` seconds, as uWSGI sets by default (its socket-timeout),
    a TCP connection is accepted only once its first bytes arrive, or
    after that long: a connection that sends nothing holds no core.  A
    unix socket bound here gets `mode` (see hygiene.socket_mode); an
    inherited one keeps what it has."""
    key = f"{proto}:{name}"
    if key in inherited:
        sock = socket.socket(fileno=inherited.pop(key))
        _log_bound(name, proto, sock, index, inherited=True)
        return Listener(name, proto, sock, unix_inode(sock))
    address = parse_address(name, OPTION[proto])
    _check_backlog(backlog)
    sock = _new_socket(address, name, proto)
    if defer_accept and sock.family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT,
                        defer_accept)
    sock.listen(backlog)
    if mode is not None and sock.family == socket.AF_UNIX:
        _chmod(sock, mode)
    _log_bound(name, proto, sock, index)
    return Listener(name, proto, sock, unix_inode(sock))


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


def _new_socket(address, name, proto):
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    elif os.path.exists(address):
        _remove_stale_unix_socket(address)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        hint = ""
        if e.errno == errno.EADDRINUSE:
            hint = (" (another process holds this address: stop it, or "
                    "choose another one)")
        raise ConfigError(f"cannot bind {name}: {e.strerror}{hint}",
                          option=OPTION[proto]) from None
    return sock


def _chmod(sock, mode):
    """As uWSGI, between binding and saying so; only the lazy mode is
    said."""
    if not mode:
        log.log("chmod() socket to 666 for lazy and brave users")
        mode = LAZY_MODE
    os.chmod(sock.getsockname(), mode)


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
    if proto == ROUTER:
        log.log(f"uWSGI http bound on {name} fd {fd}")
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
    """What a master says before it re-executes itself, as uWSGI's does:
    every other descriptor closes with the exec, the worker sockets (in
    descriptor order) stay open for the new master."""
    max_fd = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    log.log(f"closing all non-uwsgi socket fds > 2 (max_fd = {max_fd})...")
    numbered = [l for l in listeners if l.proto != ROUTER]
    for index, listener in sorted(enumerate(numbered),
                                  key=lambda item: item[1].sock.fileno()):
        log.log(f"found fd {listener.sock.fileno()} mapped to socket "
                f"{index} ({listener.name})")


def inherited_sockets(environ=os.environ):
    """{"proto:name": fd} passed by the master we were re-executed from."""
    text = environ.pop(INHERIT_ENV, "")
    table = {}
    for item in filter(None, text.split(",")):
        key, _, fd = item.rpartition("=")
        table[key] = int(fd)
    return table


def export_for_reload(listeners):
    """Mark the sockets inheritable and describe them for the next exec."""
    for listener in listeners:
        listener.sock.set_inheritable(True)
    os.environ[INHERIT_ENV] = ",".join(
        f"{l.proto}:{l.name}={l.sock.fileno()}" for l in listeners)


def close_unused(inherited):
    """Sockets the old config had and the new one dropped."""
    for fd in inherited.values():
        os.close(fd)
