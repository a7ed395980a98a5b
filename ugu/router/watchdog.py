"""`http-harakiri`, `fastrouter-harakiri`, `rawrouter-harakiri` and
`sslrouter-harakiri`: the master kills (SIGKILL) a router process whose
event loop has been stuck for longer than N seconds, and respawns it.

uWSGI's router sets, each time its loop wakes up with events, a deadline
N seconds ahead in memory the master reads, and clears it when it goes
back to waiting; the master, once a second, kills the process whose
deadline has passed.  So it measures no connection: only how long one
turn of the router's loop, which serves every connection, takes.  Here
the router's gevent loop moves its deadline N seconds ahead once a
second, from a greenlet of its own, which runs only while the loop
turns: a loop stuck in one connection's work (a blocking call, a long
computation) stops moving it, and the master kills the process, as
uWSGI's would.  A connection that only waits on a slow client or node
holds nothing (the *-timeout options bound those).

Imported only where such an option is set.
"""

import mmap
import struct
import time

# The deadline: a double, seconds since the epoch (0: none).
_DEADLINE = struct.Struct("d")
# The router process's own Watchdog, set in it after the fork.
mine = None


class Watchdog:
    """The deadline of one router process, in memory its master
    shares."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.area = mmap.mmap(-1, _DEADLINE.size)

    def overdue(self, now):
        """Whether the deadline has passed (it is then cleared, as uWSGI
        clears it once it has killed the process)."""
        deadline, = _DEADLINE.unpack_from(self.area)
        if 0 < deadline < now:
            _DEADLINE.pack_into(self.area, 0, 0.0)
            return True
        return False

    def close(self):
        self.area.close()

    def beat(self):
        """In the router process, once gevent runs there: a greenlet
        that moves the deadline ahead every second."""
        import gevent

        def run():
            while True:
                _DEADLINE.pack_into(self.area, 0,
                                    time.time() + self.seconds)
                gevent.sleep(1)
        gevent.spawn(run)


def start():
    """In a router process: its watchdog's greenlet, where it has one."""
    if mine is not None:
        mine.beat()
