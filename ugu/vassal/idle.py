"""`cheap`, `idle` and `die-on-idle`, as uWSGI 2.0 has them.

In cheap mode the master runs no worker: it watches the worker sockets
and spawns the workers (`cheaper` of them with the cheaper on, else
`processes`) when the first connection waits there.  `idle = N` puts the
instance back in cheap mode once no request has ended for more than N
seconds and no worker is busy: the master stops the workers (SIGINT, then
SIGKILL after IDLE_MERCY seconds) and says cheap mode is on once they are
all gone.  With `die-on-idle` the instance ends instead (under an
Emperor, it asks the Emperor to stop it).
"""

import time

from ugu import log

# Seconds a worker stopped for idleness has before SIGKILL, as uWSGI
# waits for each.
IDLE_MERCY = 3
CHEAP_LINE = "cheap mode enabled: waiting for socket connection..."


class IdleWatch:
    def __init__(self, seconds):
        self.seconds = seconds
        self._last_total = 0
        self._since = 0       # whole seconds of the clock; 0: not yet

    def expired(self, total, busy):
        """Whether the instance has been idle for too long, given its
        request total and whether any worker is busy, once a second.
        Says uWSGI's line when it has."""
        now = int(time.time())
        if not self._since:
            self._since = now
        if busy:
            return False
        if total != self._last_total:
            self._since, self._last_total = now, total
            return False
        if self._since < now and now - self._since > self.seconds:
            log.log(f"workers have been inactive for more than "
                    f"{self.seconds} seconds ({now}-{self._since})")
            # Counted afresh once the workers come back.
            self._since = 0
            return True
        return False
