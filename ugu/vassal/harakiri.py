"""Harakiri: the master kills a worker stuck on one request.

Once a second the master reads each core's request start time from the
scoreboard.  A request older than `harakiri` seconds gets its worker
SIGKILLed, with uWSGI's log lines naming the request; the kernel then
closes the client's connection at once, and the worker is respawned as
after any other death.
"""

import time

from ugu import log


def stuck_cores(scoreboard, wid, limit, now):
    """(core, start, request text) of every core past the limit."""
    found = []
    for core in range(scoreboard.cores):
        running = scoreboard.running(wid, core)
        if running and now - running[0] >= limit:
            found.append((core, *running))
    return found


def check(children, scoreboard, limit):
    """The workers (Child records) to kill now, after logging why."""
    now = time.time()
    doomed = []
    for child in children:
        if child.stopping:
            continue
        stuck = stuck_cores(scoreboard, child.number, limit, now)
        if stuck:
            _log_harakiri(child, scoreboard, stuck)
            doomed.append(child)
    return doomed


def _log_harakiri(child, scoreboard, stuck):
    wid = child.number
    log.verbose(f"*** HARAKIRI ON WORKER {wid} (pid: {child.pid}, try: 1, "
                f"graceful: yes) ***")
    log.verbose(f"HARAKIRI !!! worker {wid} status !!!")
    for core in range(scoreboard.cores):
        running = scoreboard.running(wid, core)
        if running:
            log.verbose(f"HARAKIRI [core {core}] {running[1]} since "
                        f"{int(running[0])}")
    log.verbose(f"HARAKIRI !!! end of worker {wid} status !!!")
    log.verbose(f"HARAKIRI triggered by worker {wid} core {stuck[0][0]} !!!")
