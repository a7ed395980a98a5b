"""uWSGI's loggers that send each message over a socket, of the kinds its
2.0 builds in: `socket` (the logsocket plugin: each message as it is, as
one datagram to a UDP HOST:PORT or a unix datagram socket's path, after
an optional `,PREFIX`), `rsyslog` (each message as an RFC 3164 packet to
a syslog daemon: `HOST[:PORT][,IDENT[,PRI]]`, or the path of a unix
datagram socket) and `syslog` (the local syslog, as libc's syslog() writes to it:
`IDENT[,FACILITY]`).  `log-socket = ADDR` and `log-syslog =
ARGS` are their shorthands (`logger = socket:ADDR`, `logger =
syslog:ARGS`).

In uWSGI every process writes its messages into the log master's
socketpair, one write a message, and the master hands each message to
the logger.  Here the logger is that socketpair: its descriptor is what
the processes write to (fd 1 and 2, or a req-logger's or named logger's
descriptor, as a file logger's would be), and a thread of the process
that opened it (the master, or the Emperor) reads it, a message at a
time, and sends each on.  A message longer than log-master-bufsize is
cut to it, as uWSGI reads it.

Imported only where such a logger is configured.
"""

import os
import socket
import threading
import time

from ugu import fdwait
from ugu.options.errors import ConfigError
from ugu.options.expand import atoi

KINDS = ("socket", "rsyslog", "syslog")
# rsyslog's defaults: the packet's size (RFC 3164's most), its port, and
# its priority (daemon.notice).
RSYSLOG_PACKET_SIZE = 1024
RSYSLOG_PORT = 514
RSYSLOG_PRI = 29
# The most a logger's read asks for, whatever log-master-bufsize says.
MOST_READ = 16 << 20
# The local syslog's socket, and the priority messages go at.
SYSLOG_PATH = "/dev/log"
LOG_INFO = 6
# syslog's facilities by name, as uWSGI's syslog logger knows them.
FACILITIES = {
    "auth": 4, "authpriv": 10, "cron": 9, "daemon": 3, "ftp": 11,
    "kern": 0, "lpr": 6, "mail": 2, "news": 7, "security": 4,
    "syslog": 5, "user": 1, "uucp": 8,
    **{f"local{n}": 16 + n for n in range(8)},
}

# The forwarders' read ends, which children close (see _fork_child).
_read_ends = []


def open_logger(kind, arg, spec, option, config):
    """The descriptor a process writes a message to, one write each, for
    the logger `kind:arg` (arg None where the spec has none); its thread
    sends each message on."""
    send = _SENDERS[kind](arg, spec, option, config)
    return forward(send, config, option, kind)


def open_udp(target, config, option):
    """The descriptor of uWSGI's logto to a UDP HOST:PORT (`target`, an
    address already resolved): each write is sent on as one datagram, as
    uWSGI writes to a UDP socket connected to it.  Sent, not written to
    a connected socket: a receiver that is not there makes such a
    socket's next write fail, and the app's print() with it."""
    sock = _datagrams(socket.AF_INET)

    def send(message):
        sock.sendto(message, target)
    return forward(send, config, option, "udp")


def forward(send, config, option, kind):
    """The descriptor that processes write messages to, one write each;
    a thread of this process sends each with `send`."""
    stream = config["log-master-req-stream" if option == "req-logger"
                    else "log-master-stream"]
    read, write = socket.socketpair(
        socket.AF_UNIX, socket.SOCK_STREAM if stream else socket.SOCK_DGRAM)
    # A message longer than a datagram the system sends cannot come: a
    # larger size would only be asked of read() (which allocates it
    # first) and of setsockopt() (a C int), which refused it.
    size = min(config["log-master-bufsize"], MOST_READ)
    # As uWSGI grows the log pipe's buffers to hold one message.
    for sock, which in ((read, socket.SO_RCVBUF),
                        (write, socket.SO_SNDBUF)):
        if sock.getsockopt(socket.SOL_SOCKET, which) < size:
            sock.setsockopt(socket.SOL_SOCKET, which, size)
    if not _read_ends:
        os.register_at_fork(after_in_child=_fork_child)
    read.setblocking(False)
    forwarder = _Forwarder(read, size, send, stream)
    _read_ends.append(forwarder)
    threading.Thread(target=forwarder.run, name=f"logger {kind}",
                     daemon=True).start()
    return write.detach()


def flush():
    """Send what the loggers have not sent yet: the process is about to
    end, or to exec, which would end their threads first."""
    for forwarder in _read_ends:
        forwarder.drain()


def _fork_child():
    # Only the process that opened the loggers reads them: a child that
    # held a read end would keep a reloaded master's writes waiting.
    for forwarder in _read_ends:
        forwarder.read.close()
    _read_ends.clear()


class _Forwarder:
    """A logger's thread: reads the socketpair, a message at a time, and
    sends each on."""

    def __init__(self, read, size, send, stream):
        self.read, self.size, self.send = read, size, send
        self.stream = stream
        # Held while a message is read and sent, so that flush() finds
        # none half sent.
        self.lock = threading.Lock()
        self.ended = False

    def run(self):
        while not self.ended:
            try:
                fdwait.readable([self.read])
            except (OSError, ValueError):
                return
            self.drain()

    def drain(self):
        with self.lock:
            while not self.ended:
                try:
                    message = self.read.recv(self.size)
                except BlockingIOError:
                    return
                except OSError:
                    self.ended = True
                    return
                if not message:
                    # A stream whose writers are all gone (a datagram
                    # socket's empty message is none: it goes on).
                    self.ended = self.stream
                    if self.stream:
                        return
                    continue
                try:
                    self.send(message)
                except OSError:
                    # A message the receiver refuses, or has no room
                    # for, is lost; the next is tried.
                    pass


def _socket_sender(arg, spec, option, config):
    """uWSGI's socket logger: ADDR[,PREFIX]; each message as it is,
    after the prefix."""
    if not arg:
        raise ConfigError(f"logger '{spec}': name the address to send to "
                          "(socket:HOST:PORT or socket:/PATH, then "
                          "optionally ,PREFIX)", option=option)
    address, comma, prefix = arg.partition(",")
    if ":" in address:
        family = socket.AF_INET
        host, _, port = address.partition(":")
        target = (_resolve(host, spec, option), _port(port))
    else:
        family, target = socket.AF_UNIX, address
    sock = _datagrams(family)
    head = prefix.encode()

    def send(message):
        sock.sendto(head + message, target)
    return send


def _rsyslog_sender(arg, spec, option, config):
    """uWSGI's rsyslog logger: ADDR[,IDENT[,PRI]], ADDR a HOST[:PORT]
    (UDP) or, from a '/', a unix datagram socket's path; each message
    without its line end, as `<PRI>Mmm dd hh:mm:ss IDENT: message`."""
    if not arg:
        raise ConfigError(f"logger '{spec}': name the syslog server "
                          "(rsyslog:HOST[:PORT][,IDENT[,PRI]], or "
                          "rsyslog:/PATH of a unix datagram socket)",
                          option=option)
    address, comma, rest = arg.partition(",")
    pri = RSYSLOG_PRI
    if comma:
        ident, comma2, pri_text = rest.partition(",")
        if comma2:
            pri = atoi(pri_text)
    else:
        ident = f"{socket.gethostname()} uwsgi"
    if address.startswith("/"):
        family, target = socket.AF_UNIX, address.partition(":")[0]
    else:
        family = socket.AF_INET
        host, colon, port = address.partition(":")
        target = (_resolve(host, spec, option),
                  _port(port) if colon else RSYSLOG_PORT)
    sock = _datagrams(family)
    packet_size = config["rsyslog-packet-size"] or RSYSLOG_PACKET_SIZE
    split = config["rsyslog-split-messages"]
    ident = ident.encode()

    def send(message):
        if message.endswith(b"\n"):
            message = message[:-1]
        head = b"<%d>%s %s: " % (pri, time.ctime().encode()[4:19], ident)
        # uWSGI cuts a message into pieces of the packet's size less 30
        # bytes, and drops a packet that its head makes too long; here
        # the pieces are cut to what the packet holds after the head.
        room = min(packet_size - 30, packet_size - 1 - len(head))
        if room <= 0:
            return
        for start in range(0, len(message), room):
            if start and not split:
                return
            sock.sendto(head + message[start:start + room], target)
    return send


def _syslog_sender(arg, spec, option, config):
    """uWSGI's syslog logger: [IDENT[,FACILITY]] (ident uwsgi, facility
    daemon); each message at priority info, as libc's syslog() sends it
    to the local syslog's socket: `<PRI>Mmm dd hh:mm:ss IDENT: message`,
    the message with its newline."""
    ident, comma, name = (arg or "uwsgi").partition(",")
    facility = FACILITIES["daemon"]
    if comma:
        if name not in FACILITIES:
            # uWSGI logs to the daemon facility instead, and says nothing.
            raise ConfigError(f"logger '{spec}': '{name}' is no syslog "
                              f"facility (write one of "
                              f"{', '.join(FACILITIES)})", option=option)
        facility = FACILITIES[name]
    pri = facility * 8 + LOG_INFO
    sock = _datagrams(socket.AF_UNIX)
    ident = ident.encode()

    def send(message):
        stamp = time.strftime("%b %e %H:%M:%S").encode()
        sock.sendto(b"<%d>%s %s: %s" % (pri, stamp, ident, message),
                    SYSLOG_PATH)
    return send


def _datagrams(family):
    """A socket that sends datagrams without waiting: a message the
    receiver has no room for is lost, rather than holding the logger,
    and every process that writes to it, up."""
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    return sock


_SENDERS = {"socket": _socket_sender, "rsyslog": _rsyslog_sender,
            "syslog": _syslog_sender}


def _resolve(host, spec, option):
    """The IPv4 address of `host` (an empty one: any, as uWSGI's)."""
    if not host:
        return "0.0.0.0"
    try:
        return socket.gethostbyname(host)
    except OSError:
        raise ConfigError(f"logger '{spec}': cannot resolve '{host}' to "
                          "an IPv4 address", option=option) from None


def _port(text):
    return atoi(text) % 65536
