"""Offload threads: they finish sending files so that the request's core
is free for the next request at once (uWSGI's `offload-threads`).

Each thread runs its own epoll loop over any number of transfers, so one
slow client never holds up another: a transfer goes on whenever its socket
has room.  A transfer owns the client connection and the open file from
the moment it is submitted; the engine closes both when the file is sent,
the client goes away, or the client has taken nothing for STALL_TIMEOUT.
"""

import collections
import itertools
import os
import select
import time

from ugu import fdwait, log
from ugu.vassal.async_worker import unpatched

# A client that accepts no byte for this long is given up on.  uWSGI's
# offload engine waits on such a client for ever, leaking the file.
STALL_TIMEOUT = 60.0


class Transfer:
    """A file going out on a client connection; owns both descriptors."""

    def __init__(self, sock_fd, fd, offset, count, close_fd):
        self.sock_fd, self.fd = sock_fd, fd
        self._close_fd = close_fd
        self.offset, self.count = offset, count
        self.last_progress = time.monotonic()

    def advance(self):
        """Send what the socket takes now; True once the file is sent."""
        while self.count > 0:
            try:
                sent = os.sendfile(self.sock_fd, self.fd, self.offset,
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
        self._close_fd(self.fd)
        self._close_fd(self.sock_fd)


class OffloadThread:
    def __init__(self, number):
        self.name = f"offload-{number}"
        # Appends and pops of a deque are atomic: no lock to share with
        # the cores, which may be greenlets.
        self.tasks = collections.deque()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        self._poller = unpatched("select", "epoll")()
        self._poller.register(self._wake_read, select.EPOLLIN)
        self._transfers = {}    # socket fd -> Transfer
        self._stopping = False
        self._ended = unpatched("_thread", "allocate_lock")()

    def start(self):
        self._ended.acquire()
        unpatched("_thread", "start_new_thread")(self._run, ())

    def join(self):
        self._ended.acquire()
        self._ended.release()

    def submit(self, transfer):
        self.tasks.append(transfer)
        os.write(self._wake_write, b"t")

    def stop(self):
        """Finish the transfers under way, then end."""
        self.tasks.append(None)
        os.write(self._wake_write, b"s")

    def _run(self):
        try:
            self._loop()
        finally:
            self._ended.release()

    def _loop(self):
        while not (self._stopping and not self._transfers):
            for fd, _ in self._poller.poll(self._poll_timeout()):
                if fd == self._wake_read:
                    self._take_tasks()
                else:
                    self._progress(self._transfers[fd])
            self._drop_stalled()
        self._poller.close()

    def _poll_timeout(self):
        return STALL_TIMEOUT / 4 if self._transfers else -1

    def _take_tasks(self):
        try:
            os.read(self._wake_read, 4096)
        except BlockingIOError:
            pass
        while self.tasks:
            transfer = self.tasks.popleft()
            if transfer is None:
                self._stopping = True
                continue
            os.set_blocking(transfer.sock_fd, False)
            if _step(transfer):
                transfer.close()
            else:
                self._transfers[transfer.sock_fd] = transfer
                self._poller.register(transfer.sock_fd, select.EPOLLOUT)

    def _progress(self, transfer):
        # Also on EPOLLERR or EPOLLHUP (a client gone): the next
        # sendfile() fails, and says so in uWSGI's line.
        if _step(transfer):
            self._finish(transfer)

    def _finish(self, transfer):
        self._poller.unregister(transfer.sock_fd)
        del self._transfers[transfer.sock_fd]
        transfer.close()

    def _drop_stalled(self):
        limit = time.monotonic() - STALL_TIMEOUT
        for transfer in list(self._transfers.values()):
            if transfer.last_progress < limit:
                log.log(f"offload transfer abandoned: the client took "
                        f"nothing for {int(STALL_TIMEOUT)} seconds")
                self._finish(transfer)


def _step(transfer):
    """Advance a transfer; True when it is over (sent or failed)."""
    try:
        return transfer.advance()
    except OSError as e:
        # uWSGI's line for it, from its offload engine.
        log.log(f"u_offload_sendfile_do(): {e.strerror} "
                f"[core/offload.c line 376]")
        return True


class OffloadEngine:
    def __init__(self, threads, wid):
        # gevent's os.close defers a socket's close to its loop, which
        # need not run again soon; the transfer's descriptors are no
        # greenlet's business.
        self._close_fd = unpatched("os", "close")
        self._threads = [OffloadThread(n) for n in range(threads)]
        self._next = itertools.cycle(self._threads)
        for thread in self._threads:
            thread.start()
        log.log(f"spawned {threads} offload threads for uWSGI worker {wid}")

    def submit(self, conn, fd, offset, count):
        """Take over the transfer of the file on a connection its core has
        let go of (the core still closes its socket).  What the socket
        takes at once goes from here, on the core's own descriptor,
        without waking a thread: a small file ends here, and the core,
        never blocked, is as free as with a handover.  The rest goes from
        a thread, on a duplicate of the socket, so that the core's close
        of its own cannot cut the transfer short."""
        sock_fd = conn.fileno()
        if conn.gettimeout() is None:
            # A socket with a timeout is non-blocking already.
            os.set_blocking(sock_fd, False)
        transfer = Transfer(sock_fd, fd, offset, count, self._close_fd)
        if _step(transfer):
            self._close_fd(fd)
            return
        transfer.sock_fd = os.dup(sock_fd)
        next(self._next).submit(transfer)

    def stop(self):
        for thread in self._threads:
            thread.stop()
        for thread in self._threads:
            thread.join()


# disable-sendfile's piece: what uWSGI reads and writes at a time.
READ_WRITE_SIZE = 8192


def _read_write(sock_fd, fd, offset, count):
    """sendfile() as disable-sendfile does it, in read() and write():
    the bytes written (0 where the file ended)."""
    data = os.pread(fd, min(count, READ_WRITE_SIZE), offset)
    return os.write(sock_fd, data) if data else 0


# What a core sends a file with (offload threads always use sendfile(),
# as uWSGI's do).
_sendfile = os.sendfile


def disable_sendfile():
    """disable-sendfile: the cores read and write a file instead."""
    global _sendfile
    _sendfile = _read_write


def send_file(conn, fd, offset, count, on_wait=None):
    """sendfile() the whole range from a core, however many calls it
    takes.  The connection may be non-blocking (it has a timeout): wait
    for room up to that timeout (calling `on_wait` each time), then give
    up on a client that stopped reading.  A file that ends before `count`
    bytes fails the send."""
    timeout = conn.gettimeout()
    while count > 0:
        try:
            sent = _sendfile(conn.fileno(), fd, offset, count)
        except BlockingIOError:
            if on_wait:
                on_wait()
            if not fdwait.writable(conn, timeout):
                raise TimeoutError("client stopped reading") from None
            continue
        if sent == 0:
            # The file shrank under us: uWSGI's sendfile loop takes this
            # for a failed write with no errno, and so does its caller.
            raise OSError(0, os.strerror(0))
        offset += sent
        count -= sent
