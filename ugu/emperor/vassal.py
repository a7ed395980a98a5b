"""What the Emperor knows about one vassal process.

A record lives from spawn to reap.  Once the process is gone the Emperor
forgets it, and the next scan finds its file as new: so a record only ever
describes a live process, and what outlives one (throttling, exile) is kept
by the Emperor under the vassal's name.
"""

import enum
import socket
import time
from dataclasses import dataclass, field

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
    monitor: str = ""            # the `emperor` value that found it
    cwd: str = "."               # the folder it was started in
    owner: tuple = (0, 0)        # (uid, gid) it runs as
    ready: bool = False          # it has loaded its apps
    accepting: bool = False      # a worker of it accepts requests
    loyal: bool = False          # it has served a request
    beat: float | None = None    # Emperor's clock at its last heartbeat
    respawns: int = 0            # reloads, as uWSGI counts them
    # ondemand.Sleeper it was woken from; asleep: it asked to go back.
    on_demand: object = None
    asleep: bool = False
    # emperor-broodlord: a zerg, spawned from the [zerg] section of the
    # file of the vassal that called for it; the Emperor keeps it under
    # `key`, as several share the name.
    zerg: bool = False
    key: str = ""
    # Wall-clock seconds of its news, for the stats; 0 means never.
    stamps: dict = field(default_factory=lambda: {"born": int(time.time())})

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

        "Spawned" is news once a run; "accepting" every time; "loyal"
        too, as uWSGI logs it: each worker process announces its loyalty
        after its first request, a respawned one as well.  Heartbeats and
        stop-me always.  Other bytes answer options ugu does not have, and
        are ignored as uWSGI ignores bytes it does not expect.
        """
        if byte == ToEmperor.SPAWNED and not self.ready:
            self.ready = True
        elif byte == ToEmperor.ACCEPTING:
            self.accepting = True
        elif byte == ToEmperor.LOYAL:
            self.loyal = True
        elif byte not in (ToEmperor.HEARTBEAT, ToEmperor.STOP_ME,
                          ToEmperor.SOS):
            return None
        self.stamps[ToEmperor(byte).name.lower()] = int(time.time())
        return ToEmperor(byte)

    def __post_init__(self):
        self.key = self.key or self.name

    def reloaded(self, mtime):
        """It was told to reload from a file of `mtime`."""
        self.mtime = mtime
        self.respawns += 1
        self.ready = self.accepting = self.loyal = False
        self.stamps["run"] = int(time.time())

    def close_link(self):
        if self.link is not None:
            self.link.close()
            self.link = None
