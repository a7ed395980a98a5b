"""Waiting for descriptors to become readable or writable.

select() refuses a descriptor numbered 1024 or above, and a process
reaches those as soon as an app holds a thousand files or connections, or
an Emperor a few hundred vassals; poll() has no such limit.  These answer
as select() would: a descriptor at its end or in error counts as ready (the
read or write then says what happened), and a closed one raises OSError.
"""

import errno
import math
import select

_READ = select.POLLIN
_WRITE = select.POLLOUT
_ENDED = select.POLLHUP | select.POLLERR


def readable(objects, timeout=None):
    """Those of `objects` (descriptors, or objects with fileno()) that can
    be read without blocking, waiting up to `timeout` seconds for one
    (None: for ever)."""
    return _ready(objects, _READ, timeout)


def writable(obj, timeout=None):
    """Whether `obj` can be written without blocking within `timeout`
    seconds (None: for ever)."""
    return bool(_ready((obj,), _WRITE, timeout))


def _ready(objects, events, timeout):
    poller = select.poll()
    by_fd = {}
    for obj in objects:
        fd = obj if isinstance(obj, int) else obj.fileno()
        by_fd.setdefault(fd, []).append(obj)
        poller.register(fd, events)
    found = []
    for fd, got in poller.poll(_milliseconds(timeout)):
        if got & select.POLLNVAL:
            raise OSError(errno.EBADF, "Bad file descriptor")
        if got & (events | _ENDED):
            found.extend(by_fd[fd])
    return found


def _milliseconds(timeout):
    """poll()'s timeout: rounded up, so that a short wait is one wait and
    not a busy loop of zero-length ones."""
    if timeout is None:
        return None
    return max(0, math.ceil(timeout * 1000))
