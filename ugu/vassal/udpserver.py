"""uWSGI's UDP server (`udp = HOST:PORT`): the master binds a datagram
socket once its workers are spawned and logs every packet it gets as
`[udp:ADDR:PORT] PAYLOAD`, the sender's address and port before what it
sent.  It is a log collector for whatever sends lines over UDP.

As uWSGI's, it reads at most 4096 bytes of a packet and logs them up to
the first NUL byte; a packet whose first byte is uWSGI's multicast
announce modifier (73) is not logged.  HOST of 224. to 239. joins that
multicast group (the socket bound to any address); 255.255.255.255
binds a broadcast socket; an empty HOST binds every address.  A port
that cannot be bound is said, and the instance runs without the server,
as uWSGI's.

Unlike uWSGI, which writes a packet as it came, a packet without a line
end is logged with one, so that it does not run into the next line.

Imported only where `udp` is configured.
"""

import socket
import struct

from ugu import log
from ugu.options.errors import ConfigError
from ugu.options.expand import atoi

READ_SIZE = 4096
# uWSGI's modifier1 of a multicast announce: such packets are not logged.
MULTICAST_ANNOUNCE = 73


class UdpServer:
    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def bind(cls, address):
        """The server bound to `address` (HOST:PORT), said in uWSGI's
        words; None where the port cannot be bound."""
        host, _, port = address.partition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        group = _multicast(host)
        if host == "255.255.255.255":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        try:
            sock.bind(("" if group or not host else host,
                       atoi(port) % 65536))
        except OSError as e:
            sock.close()
            log.log(f"bind(): {e.strerror} [core/socket.c line 329]")
            log.log("unable to bind to udp socket. SNMP services will be "
                    "disabled.")
            return None
        if group:
            log.log(f"[uwsgi-mcast] joining multicast group: {host}:"
                    f"{atoi(port) % 65536}")
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                            struct.pack("4s4s", socket.inet_aton(host),
                                        socket.inet_aton("0.0.0.0")))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setblocking(False)
        log.log("UDP server enabled.")
        return cls(sock)

    def fileno(self):
        return self.sock.fileno()

    def answer(self):
        """Log the packets that came."""
        while True:
            try:
                data, (host, port) = self.sock.recvfrom(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.log(f"uwsgi_master_manage_udp()/recvfrom(): "
                        f"{e.strerror}")
                return
            if not data or data[0] == MULTICAST_ANNOUNCE:
                continue
            text = data.partition(b"\0")[0]
            if text.endswith(b"\n"):
                text = text[:-1]
            log.log_sent(f"[udp:{host}:{port}] {text.decode('latin-1')}")


def check(address):
    """Refuse an address uWSGI cannot bind (it says so and goes on
    without the server)."""
    host, colon, port = address.partition(":")
    if not colon:
        raise ConfigError(f"'{address}' is no HOST:PORT (write "
                          "127.0.0.1:PORT, or :PORT for every address)",
                          option="udp")
    if host and host != "255.255.255.255":
        try:
            socket.inet_aton(host)
        except OSError:
            raise ConfigError(f"'{host}' is no IPv4 address (uWSGI binds "
                              "the UDP server to a numeric address)",
                              option="udp") from None


def _multicast(host):
    first = host.partition(".")[0]
    return bool(first) and first.isdigit() and 224 <= int(first) <= 239
