"""A connection of the router: the C socket itself, non-blocking, waited
on through gevent's loop, with timeouts kept by one sweeping timer.

gevent's socket class costs three times as much to make and close (its
watchers and Python-level methods), and each of its timed waits starts
and stops a Timeout of its own (measured: 15 to 20 us a wait, when a bare
relay spends about 165 us a request).  Here a wait records its deadline,
and a timer running every SWEEP_INTERVAL throws TimeoutError into the
waits past theirs, as uWSGI's router checks its timeouts once in a while
rather than per operation: a timeout fires up to SWEEP_INTERVAL late.
"""

import socket

from gevent import get_hub

READ, WRITE = 1, 2
SWEEP_INTERVAL = 0.1


class Channel:
    def __init__(self, sock):
        """sock: a non-blocking _socket.socket, owned from now on."""
        self.sock = sock
        self._watchers = {}
        self._interrupt = None

    def recv(self, size, timeout):
        while True:
            try:
                return self.sock.recv(size)
            except BlockingIOError:
                self.wait(READ, timeout)

    def sendall(self, data, timeout):
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view):]
            except BlockingIOError:
                self.wait(WRITE, timeout)

    def wait(self, events, timeout):
        """Until the socket is ready for events; TimeoutError past
        timeout seconds."""
        if timeout <= 0:
            raise TimeoutError("timed out")
        if events == READ and self._interrupt is not None:
            raise self._interrupt
        watcher = self._watchers.get(events)
        if watcher is None:
            watcher = get_hub().loop.io(self.sock.fileno(), events)
            self._watchers[events] = watcher
        _deadlines.wait(watcher, timeout)

    def interrupt(self, error):
        """Have the wait to read, the one under way or the next, raise
        `error` instead; None ends that."""
        self._interrupt = error
        watcher = self._watchers.get(READ)
        if error is not None and watcher is not None and watcher.active:
            get_hub().cancel_wait(watcher, error)

    def on_readable(self, callback):
        """A started watcher calling `callback` once, when the socket has
        something to read (or has closed); close() it when done."""
        watcher = get_hub().loop.io(self.sock.fileno(), READ)

        def fired():
            watcher.stop()
            callback()
        watcher.start(fired)
        return watcher

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        for watcher in self._watchers.values():
            watcher.close()
        self._watchers.clear()
        self.sock.close()


class Deadlines:
    """The waits of one process, by watcher, with their deadlines."""

    def __init__(self):
        self._waiting = {}
        self._timer = None

    def wait(self, watcher, timeout):
        hub = get_hub()
        if self._timer is None:
            self._timer = hub.loop.timer(SWEEP_INTERVAL, SWEEP_INTERVAL)
            # Unreferenced: the sweep alone does not keep the loop going.
            self._timer.ref = False
            self._timer.start(self._sweep)
        self._waiting[watcher] = hub.loop.now() + timeout
        try:
            hub.wait(watcher)
        finally:
            del self._waiting[watcher]

    def _sweep(self):
        hub = get_hub()
        now = hub.loop.now()
        for watcher, deadline in list(self._waiting.items()):
            if deadline <= now:
                hub.cancel_wait(watcher, TimeoutError("timed out"))


_deadlines = Deadlines()
