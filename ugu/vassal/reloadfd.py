"""reload-on-fd and brutal-reload-on-fd: the master reloads the instance
(gracefully, or brutally) when a descriptor it inherited is readable.

Each value is `FD[:SIZE][ MESSAGE]`: the master reads SIZE bytes (1 by
default) from FD each time it is ready, says so (with MESSAGE, if given),
then reloads.  A descriptor at its end (a pipe whose writer closed) is
said once and no longer watched: uWSGI 2.0 would find it ready for ever
and reload again and again (README's differences).  A read asks for at
most READ_CAP bytes, more than a pipe holds: uWSGI's master allocates
SIZE at once and dies of a size the memory cannot hold, as Python's
read() raised MemoryError in the master.
"""

import os
import re
import select

from ugu import log
from ugu.options.errors import ConfigError

_VALUE = re.compile(r"([0-9]*)[^ :]*(?::([0-9]*)[^ ]*)?(?: (.*))?",
                    re.DOTALL)
# The most a read of the descriptor asks for (a pipe holds 1 MiB at
# most): read() allocates what it is asked for before it reads.
READ_CAP = 16 << 20


class ReloadFd:
    def __init__(self, fd, size, message, graceful):
        self.fd, self.size, self.message = fd, size, message
        self.graceful = graceful

    def fileno(self):
        return self.fd


def from_config(config):
    """The descriptors to watch, said as uWSGI says each, graceful ones
    first."""
    watched = []
    for option, graceful, kind in (("reload-on-fd", True, "graceful"),
                                   ("brutal-reload-on-fd", False, "brutal")):
        for watch in config.parsed((option,), lambda name, value,
                                   graceful=graceful: _checked(
                                       name, value, graceful)):
            log.log(f"added {kind} reload monitor for fd {watch.fd} (read "
                    f"size: {watch.size})")
            watched.append(watch)
    return watched


def _checked(option, value, graceful):
    watch = _parse(option, value, graceful)
    _check_open(option, watch.fd)
    return watch


def _parse(option, value, graceful):
    """FD[:SIZE][ MESSAGE], the numbers read as strtoul reads them (their
    leading digits)."""
    found = _VALUE.match(value)
    fd, size, message = found.group(1), found.group(2), found.group(3)
    if not fd:
        raise ConfigError(f"'{value}' names no descriptor (write FD, "
                          f"FD:SIZE or FD:SIZE MESSAGE, as 3:1 reload)",
                          option=option)
    return ReloadFd(int(fd), int(size or 0) or 1, message, graceful)


def _check_open(option, fd):
    try:
        os.fstat(fd)
    except OSError as e:
        raise ConfigError(f"descriptor {fd} is not open ({e.strerror}): "
                          f"start ugu with it open, as `3<PIPE`",
                          option=option) from None


def ready(watch):
    """Read the descriptor that is ready; True to reload, False where it
    ended (and is no longer to be watched)."""
    name = "reload-on-fd" if watch.graceful else "brutal-reload-on-fd"
    try:
        data = os.read(watch.fd, min(watch.size, READ_CAP))
    except BlockingIOError:
        return False
    except OSError as e:
        log.log(f"[{name}] read(): {e.strerror} [core/master_events.c "
                f"line {81 if watch.graceful else 111}]")
        data = b"?"
    if not data:
        log.log(f"[{name}] fd {watch.fd} ended: no longer watched")
        watch.fd = -1
        return False
    if watch.message:
        log.verbose(f"*** fd {watch.fd} ready: {watch.message} ***")
    else:
        log.verbose(f"*** fd {watch.fd} ready !!! ***")
    return True


def drain(watch):
    """What is already there once the reload began: read and said, as
    uWSGI's master goes on reading while its workers end, so that it
    makes no reload of its own."""
    poller = select.poll()
    while watch.fd >= 0:
        poller.register(watch.fd, select.POLLIN)
        if not poller.poll(0) or not ready(watch):
            return
