"""Zerg mode: listening sockets handed from one instance to others.

A zerg server (`zerg-server = PATH`) listens on a unix socket; to each
client it sends the descriptors of the workers' sockets and hangs up.  A
zerg (`zerg = PATH`) connects there at its first start and serves those
sockets, besides any of its own, so instances can be added to a busy
address without a proxy before them.

The message is uWSGI's: the ten bytes `uwsgi-zerg`, a native int with the
number of sockets, and the descriptors as SCM_RIGHTS, in one sendmsg; so
the zergs and zerg servers of ugu and of uWSGI attach to each other.
"""

import array
import socket
import struct

from ugu import abstract, log
from ugu.options.errors import ConfigError
from ugu.vassal import sockets
from ugu.vassal.sockets import Listener

MAGIC = b"uwsgi-zerg"
COUNT = struct.Struct("i")          # a C int, in the machine's order
# The most descriptors one answer may carry (the kernel's SCM_MAX_FD).
MAX_FDS = 253


class ZergError(Exception):
    """The zerg server at a path gave no sockets; the message is uWSGI's."""


def send(conn, fds):
    """One answer: the magic, the count and the descriptors."""
    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
    conn.sendmsg([MAGIC, COUNT.pack(len(fds))], rights if fds else [])


def receive(path, timeout):
    """The descriptors the zerg server at `path` hands out.  uWSGI waits
    for its answer for ever (a stopped server leaves the zerg hanging at
    its start); here `timeout` seconds make it a server that is not
    there."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        try:
            conn.connect(abstract.sockaddr(path))
        except OSError:
            raise ZergError(f"--- unable to connect to zerg server {path} "
                            f"---") from None
        try:
            data, fds, _, _ = socket.recv_fds(conn, len(MAGIC) + COUNT.size,
                                              MAX_FDS)
        except TimeoutError:
            log.log(f"zerg server {path} sent nothing in {timeout} "
                    f"seconds (socket-timeout)")
            fds, data = [], b""
        except OSError as e:
            log.log(f"recvmsg(): {e.strerror}")
            fds, data = [], b""
    finally:
        conn.close()
    if not data.startswith(MAGIC) or not fds:
        for fd in fds:
            socket.socket(fileno=fd).close()
        raise ZergError("--- invalid data received from zerg-server ---")
    return fds


def name_of(sock):
    """The address a socket from a zerg server is known by: HOST:PORT, a
    path, or @NAME in the abstract namespace."""
    address = sock.getsockname()
    if isinstance(address, tuple):
        return f"{address[0]}:{address[1]}"
    if isinstance(address, bytes):
        return "@" + address[1:].rstrip(b"\0").decode(errors="replace")
    return address


def family_word(sock):
    return {socket.AF_UNIX: "UNIX", socket.AF_INET: "INET",
            socket.AF_INET6: "INET6"}.get(sock.family, "UNIX")


def attach(config, proto, first_index):
    """The sockets of every `zerg` server as Listeners speaking `proto`,
    numbered from `first_index` on, each said in uWSGI's words.  A server
    that gives none stops the start, but with zerg-fallback, which goes
    on with the sockets of the config alone."""
    found = []
    for path in config["zerg"]:
        try:
            fds = receive(path, config["socket-timeout"])
        except ZergError as e:
            log.log(str(e))
            if not config["zerg-fallback"]:
                raise
            continue
        for fd in fds:
            sock = socket.socket(fileno=fd)
            listener = Listener(name_of(sock), proto, sock, zerg=True)
            index = first_index + len(found)
            log.log(f"uwsgi zerg socket {index} attached to "
                    f"{family_word(sock)} address {listener.name} fd {fd}")
            found.append(listener)
    if found:
        log.log("zerg sockets attached")
    return found


def attach_router(config):
    """The HTTP router's sockets from each `http-zerg` server, said as
    its own are; none stops the start, in uWSGI's words (which name no
    server here)."""
    found = []
    for path in config["http-zerg"]:
        try:
            fds = receive(path, config["socket-timeout"])
        except ZergError as e:
            said = str(e).replace(f" {path} ---", " ---")
            log.log(said)
            raise ZergError(said) from None
        for fd in fds:
            sock = socket.socket(fileno=fd)
            listener = Listener(name_of(sock), sockets.ROUTER, sock,
                                zerg=True)
            log.log(f"uWSGI http bound on {listener.name} fd {fd}")
            found.append(listener)
    return found


def inherited(table, router, first_index=0):
    """The zerg sockets a reload passed on (keys `zerg:KIND:NAME`), the
    router's or the workers', as Listeners: uWSGI closes them at a
    reload, and the zerg stops serving its server's addresses (or exits,
    where it has no other)."""
    found = []
    for key in [k for k in table if k.startswith(ZERG_KEY)]:
        _, kind, name = key.split(":", 2)
        if (kind == sockets.ROUTER) != router:
            continue
        sock = socket.socket(fileno=table.pop(key))
        if router:
            log.log(f"uWSGI http bound on {name} fd {sock.fileno()}")
        else:
            log.log(f"uwsgi zerg socket {first_index + len(found)} "
                    f"inherited {family_word(sock)} address {name} fd "
                    f"{sock.fileno()}")
        found.append(Listener(name, kind, sock, zerg=True))
    return found


ZERG_KEY = "zerg:"


class ZergServer:
    """The master's unix socket where zergs come for the sockets."""

    def __init__(self, path, backlog):
        self.path = path
        self.fds = list     # called for the descriptors to hand out
        self.sock = bind(path, backlog, "zerg-server")

    def announce(self, fds):
        """Answer from now on with the descriptors `fds()` gives."""
        self.fds = fds
        log.log(f"*** Zerg server enabled on {self.path} ***")

    def fileno(self):
        return self.sock.fileno()

    def answer(self):
        """Hand the sockets to one zerg waiting to be accepted."""
        serve_one(self.sock, self.fds())

    def close(self):
        self.sock.close()


def serve_one(server, fds):
    try:
        conn, _ = server.accept()
    except (BlockingIOError, InterruptedError):
        return
    except OSError as e:
        log.log(f"zerg: accept(): {e.strerror}")
        return
    with conn:
        # A zerg that does not read cannot hold the master: the answer
        # fits the socket's buffer, and a second is plenty.
        conn.settimeout(1)
        try:
            send(conn, fds)
        except OSError as e:
            log.log(f"sendmsg(): {e.strerror}")


def bind(path, backlog, option):
    """A listening unix socket for zergs: non-blocking, so that a client
    gone before its accept costs the master no wait."""
    if not path:
        raise ConfigError(f"{option} needs the path of a unix socket (a "
                          f"path or @NAME)", option=option)
    if ":" in path and not abstract.is_abstract(path) and "/" not in path:
        raise ConfigError(f"{option} = {path}: a zerg server listens on a "
                          f"unix socket; write a path or @NAME",
                          option=option)
    sock = sockets.bind_unix(path, backlog, option)
    sock.setblocking(False)
    return sock



class ZergPool:
    """`zergpool = PATH:ADDR[,ADDR...]`: sockets bound here for no worker
    of ours, handed to each zerg that connects to PATH by a process of
    their own (uWSGI's "zergpool" gateway)."""

    def __init__(self, value, backlog, inherited):
        path, colon, addresses = value.partition(":")
        if not colon or not path or not addresses.strip(","):
            raise ConfigError(f"invalid zergpool syntax: {value} (write "
                              f"PATH:ADDR[,ADDR...])", option="zergpool")
        self.path = path
        self.sock = self._take(inherited, "") or \
            bind(path, backlog, "zergpool")
        self.sockets = []
        for address in filter(None, addresses.split(",")):
            sock = self._take(inherited, address)
            if sock is None:
                sock = sockets.bind_plain(address, backlog, "zergpool")
            word = "UNIX" if sock.family == socket.AF_UNIX else "TCP"
            log.log(f"zergpool {path} bound to {word} socket "
                    f"{name_of(sock)} (fd: {sock.fileno()})")
            self.sockets.append((address, sock))

    def _take(self, inherited, address):
        fd = inherited.pop(f"{POOL_KEY}{self.path}:{address}", None)
        if fd is None:
            return None
        sock = socket.socket(fileno=fd)
        if not address:
            sock.setblocking(False)
        return sock

    def exported(self):
        """(key, socket) of each socket a reload passes on: uWSGI binds
        them again after its exec, which the zergs still holding a TCP
        address make fail, and the instance stops."""
        yield f"{POOL_KEY}{self.path}:", self.sock
        for address, sock in self.sockets:
            yield f"{POOL_KEY}{self.path}:{address}", sock

    def answer(self):
        serve_one(self.sock, [sock.fileno() for _, sock in self.sockets])

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()
        for _, sock in self.sockets:
            sock.close()


POOL_KEY = "zergpool:"


def pools(config, inherited):
    return [ZergPool(value, config["listen"], inherited)
            for value in config["zergpool"]]


def serve_pools(config, pools):
    """The zergpool process: answer each pool's zergs, until killed."""
    import selectors
    from ugu import proc
    proc.set_title(config, "uWSGI zergpool 1")
    selector = selectors.DefaultSelector()
    for pool in pools:
        selector.register(pool, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            key.fileobj.answer()
