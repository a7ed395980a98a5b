"""`ping` and `nagios`: ugu as a client that asks a uwsgi socket whether
its instance is up, and exits with the answer, as uWSGI's ping and
nagios plugins do.

Both send a header of modifier1 100 with an empty block.  An instance
answers with a header whose size is that of its warning message (the
one uwsgi.set_warning_message() set) and the message after it: no
message is "up", a message is "up, with a warning".

`ping = ADDR` logs one line, and exits 0 (up), 2 (a warning, logged) or
1 (no answer within ping-timeout seconds, default 3).  `nagios` asks the
instance's first socket, with socket-timeout, and prints a Nagios
plugin's line on stdout: exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
"""

import errno
import sys

from ugu import fdwait, log, protocol
from ugu.stats import connect

MODIFIER_PING = 100
_HEADER = protocol.HEADER


def _read(sock, size, deadline_each):
    """`size` bytes, each wait for more at most `deadline_each` seconds;
    None when the peer closes or goes quiet first."""
    data = b""
    while len(data) < size:
        if not fdwait.readable([sock], deadline_each):
            return None
        try:
            chunk = sock.recv(size - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


def _ask(sock, timeout):
    """The instance's warning message (b"" when it has none), or None
    when no whole answer came."""
    sock.sendall(_HEADER.pack(MODIFIER_PING, 0, 0))
    head = _read(sock, _HEADER.size, timeout)
    if head is None:
        return None
    _, size, _ = _HEADER.unpack(head)
    if not size:
        return b""
    return _read(sock, size, timeout)


def ping(address, timeout):
    """`ping = ADDR`: the exit status."""
    timeout = timeout or 3
    # Below 0, uWSGI's poll() waits for ever.
    wait = timeout if timeout > 0 else None
    log.log(f"PING uwsgi host {address} (timeout: {timeout})")
    try:
        sock = connect(address, wait)
    except OSError:
        return 1
    with sock:
        sock.settimeout(None)
        try:
            message = _ask(sock, wait)
        except OSError as e:
            log.log(f"write(): {e.strerror or e}")
            return 2
    if message is None:
        return 1
    if message:
        log.log(f"[WARNING] node {address} message: "
                f"{message.decode('latin-1')}")
        return 2
    return 0


def nagios(sockets, timeout):
    """`nagios`: the check's line on stdout; the exit status."""
    if not sockets:
        return _say("UWSGI UNKNOWN: you have specified an invalid socket", 3)
    try:
        sock = connect(sockets[0], timeout)
    except OSError as e:
        reason = e.strerror or "Connection timed out"
        status = 3 if e.errno in (errno.EPERM, errno.EACCES) else 2
        return _say(f"UWSGI CRITICAL: could not connect() to workers "
                    f"{reason}", status)
    with sock:
        sock.settimeout(None)
        try:
            message = _ask(sock, timeout)
        except OSError:
            return _say("UWSGI CRITICAL: could not send ping packet to "
                        "workers", 2)
    if message is None:
        # uWSGI says this for a timeout too.
        return _say("UWSGI CRITICAL: error reading response", 2)
    if message:
        return _say(f"UWSGI WARNING: {message.decode('latin-1')}", 1)
    return _say("UWSGI OK: armed and ready", 0)


def _say(line, status):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return status
