"""Recycling workers before they hurt anyone, as uWSGI does.

The worker itself checks `max-requests` (plus `max-requests-delta` for each
worker before it: worker 1 keeps the bare limit, as uWSGI 2.0 counts,
whatever its help says), `reload-on-rss` and `reload-on-as` after each
request, but only once it has lived `min-worker-lifetime` seconds, so
that a burst of quick requests cannot make it respawn in a loop.  The
master checks `max-worker-lifetime` (plus `max-worker-lifetime-delta` for
each worker before it), and `evil-reload-on-rss` and
`evil-reload-on-as` once a second: those kill a worker whatever it is
doing, as a request that never ends never reaches the worker's own check.
"""

import os
import threading
import time

from ugu import log
from ugu.options.errors import ConfigError

MEGABYTE = 1 << 20
_PAGE = os.sysconf("SC_PAGE_SIZE")


def check(config):
    """uWSGI refuses a lifetime floor above the lifetime ceiling."""
    floor, ceiling = config["min-worker-lifetime"], \
        config["max-worker-lifetime"]
    if ceiling and floor >= ceiling:
        raise ConfigError(f"invalid min-worker-lifetime value ({floor}), "
                          f"must be lower than max-worker-lifetime "
                          f"({ceiling})", option="min-worker-lifetime")


def memory(pid="self"):
    """(resident, virtual) bytes of a process; (0, 0) when it is gone."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            size, resident = f.read().split()[:2]
    except OSError:
        return 0, 0
    return int(resident) * _PAGE, int(size) * _PAGE


def resident(pid):
    return memory(pid)[0]


class Recycler:
    """Lives in one worker; its pipe wakes the worker's main thread when
    a core decides that the worker's work is done."""

    def __init__(self, config, wid, scoreboard):
        self.wid, self.scoreboard = wid, scoreboard
        limit = config["max-requests"]
        self.max_requests = limit + (wid - 1) * \
            config["max-requests-delta"] if limit else 0
        self.rss_limit = config["reload-on-rss"] * MEGABYTE
        self.as_limit = config["reload-on-as"] * MEGABYTE
        self.min_lifetime = config["min-worker-lifetime"]
        self.born = time.monotonic()
        self._read, self._write = os.pipe()
        self._once = threading.Lock()

    def fileno(self):
        return self._read

    def due(self, requests):
        if not (self.max_requests or self.rss_limit or self.as_limit):
            return False
        if time.monotonic() - self.born < self.min_lifetime:
            return False
        if self.max_requests and requests >= self.max_requests:
            return True
        if not (self.rss_limit or self.as_limit):
            return False
        rss, vsz = memory()
        # At the limit already, as uWSGI compares.
        return bool(self.as_limit) and vsz >= self.as_limit or \
            bool(self.rss_limit) and rss >= self.rss_limit

    def retire(self):
        """Tell the master this exit is planned, then end the worker
        gracefully (once, whichever core gets here first)."""
        if not self._once.acquire(blocking=False):
            return
        self.scoreboard.set_retiring(self.wid)
        log.log(f"...The work of process {os.getpid()} is done. Seeya!")
        os.write(self._write, b"x")


def lifetime_over(child, config):
    """True when the master must recycle the worker for its age."""
    limit = config["max-worker-lifetime"]
    if not limit:
        return False
    # Each worker after the first lives max-worker-lifetime-delta
    # seconds longer than the one before it, so that they do not all
    # recycle at once.
    limit += (child.number - 1) * config["max-worker-lifetime-delta"]
    # Whole seconds past the limit, as uWSGI counts them.
    return not child.stopping and int(time.monotonic() - child.born) > limit


def evil(child, config):
    """uWSGI's lines when the master must kill the worker for its memory
    (evil-reload-on-as, then evil-reload-on-rss: both when both are
    passed, as uWSGI says them); none while it may live."""
    rss, vsz = memory(child.pid)
    lines = []
    as_limit = config["evil-reload-on-as"] * MEGABYTE
    if as_limit and vsz >= as_limit:
        lines.append(f"*** EVIL RELOAD ON WORKER {child.number} ADDRESS "
                     f"SPACE: {vsz} (pid: {child.pid}) ***")
    rss_limit = config["evil-reload-on-rss"] * MEGABYTE
    if rss_limit and rss >= rss_limit:
        lines.append(f"*** EVIL RELOAD ON WORKER {child.number} RSS: {rss} "
                     f"(pid: {child.pid}) ***")
    return lines
