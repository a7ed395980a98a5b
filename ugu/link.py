"""The emperor-vassal link: one byte per message on a socketpair.

The emperor passes its end's number to the vassal in `UWSGI_EMPEROR_FD`, as
uWSGI does.  The byte values are uWSGI's, so that each side can be mixed
with the real thing.
"""

import enum
import os
import socket

ENV_FD = "UWSGI_EMPEROR_FD"


class ToVassal(enum.IntEnum):
    STOP = 0
    RELOAD = 1
    GRACEFUL_STOP = 2


class ToEmperor(enum.IntEnum):
    SPAWNED = 1
    ACCEPTING = 5
    LOYAL = 17
    STOP_ME = 22
    HEARTBEAT = 26
    # vassal-sos: send reinforcements (a zerg, in broodlord mode).
    SOS = 30


def detected_line(fd):
    """What uWSGI's vassal says first, as it finds the link (fd `fd`)."""
    return f"*** has_emperor mode detected (fd: {fd}) ***"


def environment_fd(environ=os.environ):
    """The link's descriptor the Emperor passed, or None."""
    fd = environ.get(ENV_FD)
    return int(fd) if fd is not None and fd.isdigit() else None


class VassalLink:
    """The vassal's end: report to the emperor, hear its orders."""

    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def from_environment(cls, environ=os.environ):
        fd = environment_fd(environ)
        if fd is None:
            return None
        os.set_inheritable(fd, True)
        return cls(socket.socket(fileno=fd))

    def fileno(self):
        return self.sock.fileno()

    def send(self, message):
        try:
            self.sock.send(bytes([message]))
        except OSError:
            # The emperor is gone; the master notices on its next read.
            pass

    def receive(self):
        """The next order as a byte value, or None when the emperor has
        gone away."""
        try:
            data = self.sock.recv(1)
        except OSError:
            return None
        return data[0] if data else None
