"""The gevent worker's listening server (`gevent = N`): gevent's
StreamServer, with a failed accept handled as the threaded cores handle
it.

gevent's own server prints a traceback for each accept that fails and
tries again after a pause that doubles up to a second.  When the app holds
every descriptor the worker may open (EMFILE), the log then fills with
tracebacks of gevent's code that name neither the cause nor the fix; here
it is said once, in the threaded worker's words, and accepting resumes
after the threaded worker's short pause.
"""

import errno

import gevent.server
from gevent import get_hub

# Where gevent closes the server: the listening socket itself is gone.
_FATAL = (errno.EBADF, errno.EINVAL, errno.ENOTSOCK)


class Server(gevent.server.StreamServer):
    """A StreamServer for `worker` (ugu.vassal.worker.Worker) that pauses
    `retry` seconds after an accept that failed."""

    def __init__(self, sock, handle, pool, worker, retry):
        super().__init__(sock, handle, spawn=pool)
        self.worker, self.retry = worker, retry
        self._resume = None

    def do_read(self):
        try:
            accepted = super().do_read()
        except ConnectionAbortedError:
            # Its client left before it was accepted.
            return None
        except OSError as e:
            if e.errno in _FATAL:
                raise
            self.worker.accept_failed(e)
            self._pause()
            return None
        if accepted:
            self.worker.accept_failing = False
        return accepted

    def _pause(self):
        self.stop_accepting()
        self._cancel_resume()
        self._resume = get_hub().loop.timer(self.retry)
        self._resume.start(self._resume_accepting)

    def _resume_accepting(self):
        if self.started:
            self.start_accepting()

    def _cancel_resume(self):
        if self._resume is not None:
            self._resume.close()
            self._resume = None

    def close(self):
        self._cancel_resume()
        super().close()
