"""`fs-reload` and `fs-brutal-reload`: reload the instance when a file or
directory changes, as uWSGI 2.0's fsmon does it on Linux, through inotify;
`fs-signal = PATH SIGNAL` raises a uWSGI signal then (signals.py).

A directory's watch sees its entries appear, change, move or go, not what
happens deeper down.  One reading of the inotify descriptor acts once, for
the path of its first event (a burst of writes is one reload).  The
watches are made after the first spawn; a path that cannot be watched is
said, in uWSGI's words, and left out.
"""

import ctypes
import errno
import fcntl
import os
import struct
import termios

from ugu import log, proc
from ugu.options.expand import atoi

# <sys/inotify.h>: what uWSGI watches for.
IN_MODIFY = 0x002
IN_ATTRIB = 0x004
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
WATCHED = (IN_ATTRIB | IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_MODIFY
           | IN_MOVE_SELF | IN_MOVED_FROM | IN_MOVED_TO)
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
# struct inotify_event begins with the watch descriptor (int).
_EVENT_WD = struct.Struct("i")
# The whole head: wd, mask, cookie, the length of the name that follows.
_EVENT = struct.Struct("iIII")

# option -> whether its reload is graceful
OPTIONS = {"fs-reload": True, "fs-brutal-reload": False}


class FsMonitor:
    """The master's inotify descriptor and what each watch does."""

    def __init__(self, fd, watches):
        self.fd = fd
        # watch descriptor -> (path, graceful, None), or (path, None,
        # the uWSGI signal it raises)
        self.watches = watches

    @classmethod
    def from_config(cls, config):
        """None without fs-reload, fs-brutal-reload or fs-signal."""
        wanted = [(path, graceful, None)
                  for option, graceful in OPTIONS.items()
                  for path in config[option]]
        wanted += _signals(config["fs-signal"])
        if not wanted:
            return None
        fd = inotify()
        watches = {}
        for path, graceful, signum in wanted:
            wd = add_watch(fd, path)
            if wd < 0:
                error = os.strerror(ctypes.get_errno())
                log.log(f"fsmon_add()/inotify_add_watch(): {error} "
                        f"[core/fsmon.c line 28]")
                log.log(f'[uwsgi-fsmon] unable to register monitor for '
                        f'"{path}"')
                continue
            watches[wd] = (path, graceful, signum)
            log.log(f'[uwsgi-fsmon] registered monitor for "{path}"')
        return cls(fd, watches)

    def fileno(self):
        return self.fd

    def event(self):
        """(path, graceful, signal) of the first event waiting, the others
        read with it; None when there is none."""
        pending = struct.unpack(
            "i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0" * 4))[0]
        if not pending:
            return None
        try:
            data = os.read(self.fd, pending)
        except OSError as e:
            if e.errno != errno.EAGAIN:
                log.log(f"uwsgi_fsmon_ack()/read(): {e.strerror}")
            return None
        found = self.watches.get(_EVENT_WD.unpack_from(data)[0])
        if found:
            log.verbose(f'[uwsgi-fsmon] detected event on "{found[0]}"')
        return found

    def close(self):
        os.close(self.fd)


def inotify():
    """A new inotify descriptor, non-blocking, not inherited."""
    fd = proc.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "inotify_init1()")
    return fd


def read_events(fd):
    """The watch descriptors of the events waiting on `fd`, in order."""
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return []
    found, at = [], 0
    while at + _EVENT.size <= len(data):
        wd, _, _, length = _EVENT.unpack_from(data, at)
        found.append(wd)
        at += _EVENT.size + length
    return found


def add_watch(fd, path):
    """A watch of `path` on inotify descriptor `fd`, as uWSGI's watches;
    its descriptor, or -1 (errno set)."""
    return proc.libc.inotify_add_watch(fd, os.fsencode(path), WATCHED)


def _signals(values):
    """fs-signal's (path, None, signal number), each value a PATH SIGNAL;
    one without its signal said, in uWSGI's words, and left out."""
    found = []
    for value in values:
        path, space, signum = value.partition(" ")
        if not space:
            log.log(f'[uwsgi-fsmon] invalid syntax: "{value}"')
            continue
        found.append((path, None, atoi(signum) & 0xFF))
    return found
