"""On-demand vassals (socket activation), as uWSGI 2.0's Emperor has them.

A vassal file for which one of the `emperor-on-demand-*` options names a
socket is not started: the Emperor binds that socket and waits.  The first
connection starts the vassal with the listening socket as its stdin (fd 0),
which the vassal takes as a socket of its own (ugu/vassal/sockets.py).  A
vassal that asks to be stopped (an idle one, say) goes back to waiting.
The Emperor keeps the socket open throughout, so no connection is refused
while a vassal comes and goes.
"""

import os
import socket
import time
from dataclasses import dataclass, field

from ugu import log

SOCKET_SUFFIX = ".socket"


@dataclass(frozen=True)
class Finder:
    """Which socket a vassal file asks for, by the first option set of
    uWSGI's order: an extension file, a folder, a command."""
    extension: str | None = None
    directory: str | None = None
    command: str | None = None

    @classmethod
    def from_config(cls, config):
        finder = cls(config["emperor-on-demand-extension"],
                     config["emperor-on-demand-directory"],
                     config["emperor-on-demand-exec"])
        return finder if finder.extension or finder.directory or \
            finder.command else None

    def socket_name(self, found):
        """The socket `found` (a monitor.Found) waits on; None: none."""
        if self.extension:
            try:
                with open(found.path + self.extension, "rb") as f:
                    return _first_line(f.read())
            except OSError:
                return None
        if self.directory:
            base = os.path.basename(found.name)
            stem = base.rpartition(".")[0]
            return f"{self.directory}/{stem}{SOCKET_SUFFIX}"
        # The shell gets the name quoted, as uWSGI's command line has it.
        import subprocess
        try:
            out = subprocess.run(f'{self.command} "{found.name}"',
                                 shell=True, cwd=found.cwd,
                                 stdout=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL).stdout
        except OSError:
            return None
        return _first_line(out)


def _first_line(data):
    """The text before the first control character; None if empty."""
    text = data.decode("utf-8", "replace")
    for i, char in enumerate(text):
        if char < " ":
            text = text[:i]
            break
    return text or None


def bind(name, backlog):
    """A listening socket on `name`: TCP for HOST:PORT (any host where
    HOST is empty), else a unix socket whose old file is replaced and
    which anyone may connect to, as uWSGI makes it."""
    if ":" in name:
        host, _, port = name.partition(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address = (host or "0.0.0.0", int(port) if port.isdigit() else 0)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        address = name
    try:
        if sock.family == socket.AF_UNIX:
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
        sock.bind(address)
        if sock.family == socket.AF_UNIX:
            os.chmod(name, 0o666)
        sock.listen(backlog)
    except (OSError, OverflowError) as e:
        sock.close()
        raise OSError(getattr(e, "errno", None),
                      getattr(e, "strerror", None) or str(e)) from None
    return sock


@dataclass(eq=False)
class Sleeper:
    """A vassal file waiting on its socket for a first connection."""
    name: str
    sock: socket.socket
    socket_name: str
    mtime: int
    cwd: str
    monitor: str
    owner: tuple | None
    # Wall-clock seconds it was first found, for the stats.
    born: int = field(default_factory=lambda: int(time.time()))

    def fileno(self):
        return self.sock.fileno()

    def close(self):
        self.sock.close()


def detected(name, socket_name):
    log.log(f'[uwsgi-emperor] {name} -> "on demand" instance detected, '
            f'waiting for connections on socket "{socket_name}" ...')


def back(name, socket_name):
    log.log(f'[uwsgi-emperor] {name} -> back to "on demand" mode, waiting '
            f'for connections on socket "{socket_name}" ...')
