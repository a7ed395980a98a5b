"""uWSGI's default cheaper algorithm ("spare"), run by the master each
second.

All running workers busy for `cheaper-overload` checks in a row: spawn
`cheaper-step` more, up to `processes`.  More than one idle worker above
the `cheaper` floor for as many checks: stop the oldest idle one.
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
        if running and not idle:
            return self._overload(running, pending)
        self.overloaded = 0
        if len(running) > self.floor and len(idle) > 1:
            return self._spare(idle)
        self.idle = 0
        return Change()

    def _overload(self, running, pending):
        self.idle = 0
        self.overloaded += 1
        if self.overloaded < self.overload_limit:
            return Change()
        self.overloaded = 0
        taken = {w.number for w in running} | {n for _, n in pending}
        free = [wid for wid in range(1, self.processes + 1)
                if wid not in taken]
        spawn = free[:self.step]
        self._cheaped.difference_update(spawn)
        return Change(spawn=spawn)

    def _spare(self, idle):
        self.idle += 1
        if self.idle < self.overload_limit:
            return Change()
        self.idle = 0
        oldest = min(idle, key=lambda w: w.born)
        self._cheaped.add(oldest.number)
        return Change(stop=[oldest])
