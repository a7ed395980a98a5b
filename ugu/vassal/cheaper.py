"""uWSGI's default cheaper algorithm ("spare"), run by the master each
second.

All running workers busy at more than `cheaper-overload` checks (each
check with an idle worker taking one back): spawn `cheaper-step` more, up
to `processes`.  Once no overload is left, every `cheaper-overload`-th
check that finds more than one idle worker above the `cheaper` floor
stops the oldest idle one.
"""

from dataclasses import dataclass, field

from ugu.options.errors import ConfigError


@dataclass
class Change:
    spawn: list = field(default_factory=list)   # worker ids to start
    stop: list = field(default_factory=list)    # Child records to stop


class Cheaper:
    def __init__(self, config):
        self.floor = config["cheaper"]
        self.processes = config["processes"]
        if self.floor >= self.processes:
            raise ConfigError("invalid cheaper value: must be lower than "
                              "processes", option="cheaper")
        self.initial = min(self.processes,
                           config["cheaper-initial"] or self.floor)
        self.step = max(1, config["cheaper-step"])
        self.overload_limit = max(1, config["cheaper-overload"])
        self.overloaded = 0
        self.idle = 0
        self._cheaped = set()

    def is_cheaped(self, wid):
        return wid in self._cheaped

    def decide(self, workers, scoreboard, pending):
        """What to change, given the running workers (Child records), the
        scoreboard and the workers already due to respawn."""
        running = [w for w in workers if not w.stopping]
        idle = [w for w in running if not scoreboard.busy(w.number)]
        if idle:
            # One idle check takes back one overloaded check, as in
            # uWSGI, rather than starting the count again.
            self.overloaded = max(0, self.overloaded - 1)
        else:
            self.overloaded += 1
            self.idle = 0
        if self.overloaded > self.overload_limit:
            self.overloaded = 0
            return self._spawn(running, pending)
        # One spare worker is the steady state: it neither counts towards
        # stopping one nor resets the count.
        if self.overloaded or len(idle) == 1:
            return Change()
        self.idle += 1
        if len(running) > self.floor and idle and \
                self.idle % self.overload_limit == 0:
            return self._stop_oldest(idle)
        return Change()

    def _spawn(self, running, pending):
        taken = {w.number for w in running} | {n for _, n in pending}
        free = [wid for wid in range(1, self.processes + 1)
                if wid not in taken]
        spawn = free[:self.step]
        self._cheaped.difference_update(spawn)
        return Change(spawn=spawn)

    def _stop_oldest(self, idle):
        oldest = min(idle, key=lambda w: w.born)
        self._cheaped.add(oldest.number)
        return Change(stop=[oldest])
