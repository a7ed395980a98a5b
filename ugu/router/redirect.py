"""`http-to-https = ADDR[,PORT]`: an address of the HTTP router that
answers every request with a redirect to the same host over https, as
uWSGI's router does: `301 Moved Permanently`, `Location:
https://HOST[:PORT]URI`, the request's Host cut at its first colon (the
machine's name without one), PORT the option's, URI the request's target
as sent.  Nothing reaches a backend, and the connection closes after the
answer; a head uWSGI's parser refuses (no method, target or protocol, a
header line without a name, a Host over 255 bytes) closes it unanswered.

The master reads the option (standard library only: it imports this
module); the router process serves the listener with `answer`, on a
socket gevent has patched.
"""

import socket
from dataclasses import dataclass

from ugu.vassal.sockets import parse_address

OPTION = "http-to-https"
END_OF_HEAD = b"\r\n\r\n"
STATUS = b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://"
# The longest Host uWSGI's router takes (as the request's key).
KEY_MAX = 0xff


@dataclass(frozen=True)
class Redirect:
    """What one http-to-https listener's redirects name after the host:
    b":PORT", or nothing."""

    port: bytes = b""


def parse(value):
    """(ADDR, its Redirect) of one `http-to-https` line."""
    address, comma, port = value.partition(",")
    parse_address(address, OPTION)
    return address, Redirect(b":" + port.encode() if comma else b"")


def answer(sock, redirect, timeout, limit):
    """Read one request head from `sock` (each read within `timeout`
    seconds, the head within `limit` bytes) and answer it with the
    redirect; then close."""
    try:
        head = _read_head(sock, timeout, limit)
        location = head and _location(head, redirect)
        if location:
            sock.sendall(b"%s%s\r\n\r\n" % (STATUS, location))
    except OSError:
        # Gone, reset or silent: there is no one to answer.
        pass
    finally:
        sock.close()


def _read_head(sock, timeout, limit):
    """The head without its blank line, or None.  Each read waits up to
    `timeout`, as uWSGI's router starts its timeout again at each
    read."""
    sock.settimeout(timeout)
    data = b""
    while (end := data.find(END_OF_HEAD)) < 0:
        if len(data) >= limit:
            return None
        more = sock.recv(limit - len(data))
        if not more:
            return None
        data += more
    return data[:end]


def _location(head, redirect):
    """The Location's value after `https://`, or None for a head uWSGI's
    parser refuses."""
    line, _, fields = head.partition(b"\r\n")
    method, space, rest = line.partition(b" ")
    target, space2, _ = rest.partition(b" ")
    if not (method and space and space2):
        return None
    host = _host(fields)
    if host is False or host and len(host) > KEY_MAX:
        return None
    return (host or HOSTNAME).partition(b":")[0] + redirect.port + target


def _host(fields):
    """The Host header's value (several joined as uWSGI joins them),
    None without one, False for a header line without a name."""
    found = None
    for field in _unfolded(fields):
        name, colon, value = field.partition(b":")
        if not colon or not name:
            return False
        if name.upper() == b"HOST":
            value = value.lstrip(b" ")
            found = value if found is None else found + b", " + value
    return found


def _unfolded(fields):
    """Header lines, a continuation line joined to the one before it."""
    lines = []
    for line in fields.split(b"\r\n") if fields else ():
        if lines and line[:1] in (b" ", b"\t"):
            lines[-1] += b"\r\n" + line
        else:
            lines.append(line)
    return lines


HOSTNAME = socket.gethostname().encode()
