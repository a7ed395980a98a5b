"""Offload threads: they finish sending files so that the request's core
is free for the next request at once (uWSGI's `offload-threads`).

Each thread runs its own epoll loop over any number of transfers, so one
slow client never holds up another: a transfer goes on whenever its socket
has room.  A task owns the client connection and the open file from the
moment it is submitted; the thread closes both when the file is sent, the
client goes away, or the client has taken nothing for STALL_TIMEOUT.
"""

import itertools
import os
import queue
import select
import threading
import time

from ugu import log

# A client that accepts no byte for this long is given up on.  uWSGI's
# offload engine waits on such a client for ever, leaking the file.
STALL_TIMEOUT = 60.0


class Transfer:
    def __init__(self, conn, fd, offset, count):
        self.conn, self.fd = conn, fd
        self.offset, self.count = offset, count
        self.last_progress = time.monotonic()

    def advance(self):
        """Send what the socket takes now; True once the file is sent."""
        while self.count > 0:
            try:
                sent = os.sendfile(self.conn.fileno(), self.fd, self.offset,
                                   self.count)
            except BlockingIOError:
                return False
            if sent == 0:
                return True     # the file shrank: nothing more to send
            self.offset += sent
            self.count -= sent
            self.last_progress = time.monotonic()
        return True

    def close(self):
        os.close(self.fd)
        self.conn.close()


class OffloadThread(threading.Thread):
    def __init__(self, number):
        super().__init__(daemon=True, name=f"offload-{number}")
        self.tasks = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        self._poller = select.epoll()
        self._poller.register(self._wake_read, select.EPOLLIN)
        self._transfers = {}    # socket fd -> Transfer
        self._stopping = False

    def submit(self, transfer):
        self.tasks.put(transfer)
        os.write(self._wake_write, b"t")

    def stop(self):
        """Finish the transfers under way, then end."""
        self.tasks.put(None)
        os.write(self._wake_write, b"s")

    def run(self):
        while not (self._stopping and not self._transfers):
            for fd, events in self._poller.poll(self._poll_timeout()):
                if fd == self._wake_read:
                    self._take_tasks()
                else:
                    self._progress(self._transfers[fd], events)
            self._drop_stalled()
        self._poller.close()

    def _poll_timeout(self):
        return STALL_TIMEOUT / 4 if self._transfers else -1

    def _take_tasks(self):
        try:
            os.read(self._wake_read, 4096)
        except BlockingIOError:
            pass
        while not self.tasks.empty():
            transfer = self.tasks.get_nowait()
            if transfer is None:
                self._stopping = True
                continue
            transfer.conn.setblocking(False)
            if self._step(transfer):
                transfer.close()
            else:
                fd = transfer.conn.fileno()
                self._transfers[fd] = transfer
                self._poller.register(fd, select.EPOLLOUT)

    def _progress(self, transfer, events):
        if events & (select.EPOLLERR | select.EPOLLHUP) or \
                self._step(transfer):
            self._finish(transfer)

    def _step(self, transfer):
        """Advance a transfer; True when it is over (sent or failed)."""
        try:
            done = transfer.advance()
        except OSError as e:
            log.log(f"offload transfer failed: {e.strerror}")
            done = True
        return done

    def _finish(self, transfer):
        fd = transfer.conn.fileno()
        self._poller.unregister(fd)
        del self._transfers[fd]
        transfer.close()

    def _drop_stalled(self):
        limit = time.monotonic() - STALL_TIMEOUT
        for transfer in list(self._transfers.values()):
            if transfer.last_progress < limit:
                log.log(f"offload transfer abandoned: the client took "
                        f"nothing for {int(STALL_TIMEOUT)} seconds")
                self._finish(transfer)


class OffloadEngine:
    def __init__(self, threads, wid):
        self._threads = [OffloadThread(n) for n in range(threads)]
        self._next = itertools.cycle(self._threads)
        for thread in self._threads:
            thread.start()
        log.log(f"spawned {threads} offload threads for uWSGI worker {wid}")

    def submit(self, conn, fd, offset, count):
        next(self._next).submit(Transfer(conn, fd, offset, count))

    def stop(self):
        for thread in self._threads:
            thread.stop()
        for thread in self._threads:
            thread.join()


def send_file(conn, fd, offset, count):
    """sendfile() the whole range from a core, however many calls it
    takes.  The connection may be non-blocking (it has a timeout): wait
    for room up to that timeout, then give up on a client that stopped
    reading."""
    timeout = conn.gettimeout()
    while count > 0:
        try:
            sent = os.sendfile(conn.fileno(), fd, offset, count)
        except BlockingIOError:
            if not select.select([], [conn], [], timeout)[1]:
                raise TimeoutError("client stopped reading") from None
            continue
        if sent == 0:
            return
        offset += sent
        count -= sent
