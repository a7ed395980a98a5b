"""Harakiri: the master kills a worker whose request takes too long.

As in uWSGI 2.0 the deadline is the worker's, not each request's: every
request that starts sets it `harakiri` seconds ahead and every request
that ends clears it, so with threads or gevent a request outlives it while
others come and go.  Once a second the master reads the deadlines from the
scoreboard; a worker past its own is SIGKILLed, with uWSGI's log lines
naming the requests it was serving; the kernel then closes their clients'
connections at once, and the worker is respawned as after any other death.
With harakiri-graceful-timeout the first harakiri sends a gentler signal
(SIGTERM, on which a worker exits at once) and the deadline moves on by
the timeout; a worker still there then is killed.

Without a master each worker watches its own deadline, as uWSGI's alarm
does, and ends itself with exit code 0 and a hint that nobody respawns it.
"""

import os
import signal
import time
from dataclasses import dataclass

from ugu import log
from ugu.options.errors import ConfigError

# How often a worker without a master looks at its own deadline: as
# often as a master would.
SELF_CHECK = 1.0
# Its exit code then, uWSGI's.
EXIT_ALONE = 0
# As much of a /proc file as uWSGI reads for harakiri-verbose.
PROC_READ = 4096


@dataclass(frozen=True)
class Graceful:
    """harakiri-graceful-timeout and -signal: a worker's first harakiri
    sends `signum` and gives it `timeout` more seconds; the next one
    kills it.  A timeout of 0: every harakiri kills at once."""

    timeout: int = 0
    signum: int = signal.SIGTERM

    @classmethod
    def from_config(cls, config):
        signum = config["harakiri-graceful-signal"]
        if signum not in signal.valid_signals():
            # uWSGI's kill() would fail unsaid, leaving the worker to the
            # next harakiri's SIGKILL.
            raise ConfigError(f"{signum} is not a signal number (SIGTERM "
                              f"is {int(signal.SIGTERM)})",
                              option="harakiri-graceful-signal")
        return cls(config["harakiri-graceful-timeout"], signum)


def check(children, scoreboard, verbose=False, graceful=Graceful(),
          look=None):
    """(worker's Child record, signal) for each worker to signal now,
    after logging why (with `harakiri-verbose`, also where in the kernel
    it is stuck; with `look`, a function of the worker id, what it
    tells: py-tracebacker's stacks).  A worker signalled gracefully has
    a harakiri pending (`child.harakiri_tries`) until it ends, as in
    uWSGI."""
    now = time.time()
    doomed = []
    for child in children:
        if child.stopping:
            continue
        deadline = scoreboard.harakiri(child.number)
        user = ""
        if not deadline or deadline > now:
            # Then the app's own (uwsgi.set_user_harakiri), as uWSGI
            # looks at it after the worker's.
            deadline, user = scoreboard.user_harakiri(child.number), " (user)"
        if deadline and deadline <= now:
            doomed.append((child, _harakiri(child, deadline, scoreboard,
                                            verbose, graceful, look, user)))
    return doomed


def _harakiri(child, deadline, scoreboard, verbose, graceful, look,
              user=""):
    """The lines of one harakiri; the signal it sends."""
    wid, tries = child.number, child.harakiri_tries
    log.verbose(f"*** HARAKIRI ON WORKER {wid} (pid: {child.pid}, try: "
                f"{tries + 1}, graceful: {'no' if tries else 'yes'}) ***")
    if verbose:
        _log_stuck_in(child.pid, scoreboard.core_thread(wid))
    if look:
        look(wid)
    log.verbose(f"HARAKIRI !!! worker {wid} status !!!")
    for core in range(scoreboard.cores):
        running = scoreboard.running(wid, core)
        if running:
            log.verbose(f"HARAKIRI [core {core}] {running[1]} since "
                        f"{int(running[0])}")
    log.verbose(f"HARAKIRI !!! end of worker {wid} status !!!")
    child.harakiri_tries += 1
    signum = signal.SIGKILL
    if graceful.timeout:
        if not tries:
            signum = graceful.signum
        # As uWSGI: said on every try, the next one counted from this
        # deadline.
        deadline += graceful.timeout
        scoreboard.set_harakiri(wid, deadline)
        log.verbose(f"HARAKIRI: graceful termination attempt on worker "
                    f"{wid} with signal {graceful.signum}. Next harakiri: "
                    f"{int(deadline)}")
    # uWSGI 2.0 checks the worker's deadline once per core, from core 0,
    # so the first check, core 0's, is the one that fires.
    log.verbose(f"HARAKIRI{user} triggered by worker {wid} core 0 !!!")
    return signum


def _log_stuck_in(pid, tid):
    """uWSGI's lines of the system call core 0's thread is in and where
    the kernel sleeps it, read from /proc.  uWSGI reads its worker's
    main thread, which serves its core 0; ugu's core 0 has a thread of
    its own (`tid`), but in a gevent worker, where the main thread runs
    every core."""
    folder = f"/proc/{pid}/task/{tid}" if tid else f"/proc/{pid}"
    for name in ("syscall", "wchan"):
        try:
            with open(f"{folder}/{name}") as f:
                text = f.read(PROC_READ).rstrip("\n")
        except OSError:
            # Gone, or not ours to read: unsaid, as in uWSGI.
            continue
        if text:
            log.log(f"HARAKIRI: -- {name}> {text}")


def overdue(scoreboard, wid):
    """Whether worker `wid` is past its deadline."""
    deadline = scoreboard.harakiri(wid)
    return bool(deadline) and deadline <= time.time()


def say_alone(apps):
    """The last words of a worker without a master that ends itself
    (with EXIT_ALONE), in uWSGI's (the blank line first is uWSGI's too).
    uWSGI names the running request's app; ugu names the default one,
    the app of all but mounted requests."""
    app_id = apps.default.id if apps.default else -1
    log.log(f"\nKilling the current process (pid: {os.getpid()} app_id: "
            f"{app_id})...")
    log.log("*** if you want your workers to be automatically respawned "
            "consider enabling the uWSGI master process ***")
