"""Offload threads: they finish sending a file so that the request's core
is free for the next request at once (uWSGI's `offload-threads`).

A task owns the client connection and the open file from the moment it is
submitted: the thread sends the file with sendfile() and closes both.
"""

import os
import queue
import select
import threading

from ugu import log


class OffloadEngine:
    def __init__(self, threads, wid):
        self._tasks = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._run, daemon=True,
                                          name=f"offload-{i}")
                         for i in range(threads)]
        for thread in self._threads:
            thread.start()
        log.log(f"spawned {threads} offload threads for uWSGI worker {wid}")

    def submit(self, conn, fd, offset, count):
        self._tasks.put((conn, fd, offset, count))

    def stop(self):
        """Let queued transfers finish, then end the threads."""
        for _ in self._threads:
            self._tasks.put(None)
        for thread in self._threads:
            thread.join()

    def _run(self):
        while True:
            task = self._tasks.get()
            if task is None:
                return
            conn, fd, offset, count = task
            try:
                send_file(conn, fd, offset, count)
            except OSError as e:
                log.log(f"offload transfer failed: {e}")
            finally:
                os.close(fd)
                conn.close()


def send_file(conn, fd, offset, count):
    """sendfile() the whole range, however many calls it takes.  The
    connection may be non-blocking (it has a timeout): wait for room up to
    that timeout, then give up on a client that stopped reading."""
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
