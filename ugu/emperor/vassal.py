"""What the Emperor knows about one vassal process.

A record lives from spawn to reap.  Once the process is gone the Emperor
forgets it, and the next scan finds its file as new: so a record only ever
describes a live process, and what outlives one (throttling, exile) is kept
by the Emperor under the vassal's name.
"""

import enum
import socket
from dataclasses import dataclass

from ugu.link import ToEmperor


class State(enum.Enum):
    RUNNING = "running"
    STOPPING = "stopping"   # told to stop; killed if alive at its deadline
    CURSED = "cursed"       # its link broke while it runs; same deadline


@dataclass(eq=False)
class Vassal:
    name: str
    pid: int
    link: socket.socket | None   # our end, non-blocking; None once closed
    mtime: int                   # of the file it was (re)loaded from
    state: State = State.RUNNING
    deadline: float | None = None
    ready: bool = False          # it has loaded its apps
    loyal: bool = False          # it has served a request

    @property
    def status(self):
        """uWSGI's status number: 0 running, 1 on its way out."""
        return 0 if self.state is State.RUNNING else 1

    def doom(self, state, deadline):
        self.state = state
        self.deadline = deadline

    def fileno(self):
        return self.link.fileno()

    def send(self, message):
        """Send a ToVassal byte; a broken link is left to `receive`."""
        try:
            self.link.send(bytes([message]))
        except OSError:
            pass

    def receive(self):
        """(bytes waiting on the link, whether it reached EOF)."""
        chunks = []
        while True:
            try:
                chunk = self.link.recv(4096)
            except BlockingIOError:
                return b"".join(chunks), False
            except OSError:
                chunk = b""   # reset by a dying vassal: an EOF too
            if not chunk:
                return b"".join(chunks), True
            chunks.append(chunk)

    def hear(self, byte):
        """The ToEmperor message `byte` brings as news, else None.

        "Spawned" and "loyal" are news once; "accepting" every time, as a
        reloaded vassal accepts anew and uWSGI logs it again.  Other bytes
        (heartbeat, stop-me, ...) answer options ugu does not have, and are
        ignored as uWSGI ignores bytes it does not expect.
        """
        if byte == ToEmperor.SPAWNED and not self.ready:
            self.ready = True
            return ToEmperor.SPAWNED
        if byte == ToEmperor.ACCEPTING:
            return ToEmperor.ACCEPTING
        if byte == ToEmperor.LOYAL and not self.loyal:
            self.loyal = True
            return ToEmperor.LOYAL
        return None

    def close_link(self):
        if self.link is not None:
            self.link.close()
            self.link = None
