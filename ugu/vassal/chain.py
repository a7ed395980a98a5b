"""Chain reload: replace the workers one at a time, in uWSGI's steps.

The chain stands at a worker id.  Each master tick, it first waits while
the worker before it is running but not yet accepting (its replacement is
starting); then it stops the worker it stands at gracefully, if that one
is running and accepting, or else moves on.  The stopped worker's end
moves the chain on, and its replacement is waited for from the next tick,
as in uWSGI, whose lines these are.
"""

import time

from ugu import log


class ChainReload:
    def __init__(self, master):
        self.master = master
        self.position = 0       # the worker id the chain stands at; 0: off
        self._victim_pid = None  # the process stopped there, while it ends
        self._waiting_said = None

    @property
    def running(self):
        return bool(self.position)

    def start(self, announce=False):
        """Begin (fifo `c` announces it, touch-chain-reload has its own
        line); a chain under way goes on."""
        if self.position:
            if announce:
                log.verbose("chain reload already running...")
            return
        if announce:
            log.verbose("chain reload starting...")
        self.position, self._victim_pid = 1, None

    def tick(self):
        if not self.position or self._waiting():
            return
        if self.position > self.master.config["processes"]:
            self.position = 0
            log.verbose("chain reloading complete")
            return
        while self.position <= self.master.config["processes"]:
            child = self.master.worker(self.position)
            if self._victim_pid is not None:
                if child is None or child.pid != self._victim_pid:
                    # Gone: uWSGI's master moves the chain on as it reaps
                    # it; the next tick waits for its replacement.
                    self._victim_pid = None
                    self.position += 1
                return
            if self._serving(child):
                log.verbose(f"chain next victim is worker {self.position}")
                self.master.recycle(child)
                self._victim_pid = child.pid
                return
            self.position += 1

    def _waiting(self):
        """Whether the worker before the chain runs but does not accept
        yet; said once a second."""
        wid = self.position - 1
        child = self.master.worker(wid) if wid else None
        if child is None or child.stopping or \
                self.master.shared.scoreboard.accepting(wid):
            return False
        now = int(time.time())
        if now != self._waiting_said:
            log.verbose(f"chain is still waiting for worker {wid}...")
            self._waiting_said = now
        return True

    def _serving(self, child):
        """Whether a worker (a Child, or None) runs and accepts."""
        return (child is not None and not child.stopping
                and not child.recycling
                and self.master.shared.scoreboard.accepting(child.number))
