"""Chain reload: replace the workers one at a time.

Each worker in turn is stopped gracefully; the next one is stopped only
once its predecessor's replacement is accepting, so that the instance
never runs with fewer than all-but-one workers.  The master advances the
chain once a second, logging as uWSGI does.
"""

from ugu import log


class ChainReload:
    def __init__(self, master):
        self.master = master
        self.queue = None       # worker ids still to replace
        self.victim = None      # (wid, old pid) being replaced

    def start(self, announce=False):
        if announce:
            log.verbose("chain reload starting...")
        self.queue = sorted(c.number for c in self.master.workers()
                            if not c.stopping)
        self.victim = None

    def tick(self):
        if self.queue is None:
            return
        if self.victim and not self._replaced(*self.victim):
            log.verbose(f"chain is still waiting for worker "
                        f"{self.victim[0]}...")
            return
        self.victim = None
        if not self.queue:
            log.verbose("chain reloading complete")
            self.queue = None
            return
        wid = self.queue.pop(0)
        child = self.master.worker(wid)
        log.verbose(f"chain next victim is worker {wid}")
        if child:
            self.victim = (wid, child.pid)
            self.master.recycle(child)

    def _replaced(self, wid, old_pid):
        child = self.master.worker(wid)
        return child is not None and child.pid != old_pid and \
            self.master.shared.scoreboard.accepting(wid)
