"""The busyness cheaper algorithm (`cheaper-algo = busyness`), deciding
as uWSGI 2.0's cheaper_busyness plugin does, with its log lines.

Every `cheaper-overload` seconds (a cycle) it takes each running worker's
busyness: the share of the cycle that its finished requests took (the
growth of its running time on the scoreboard), or 100% for a worker
found busy at some check of the cycle though none of its requests ended
(one request longer than the cycle).  Their average decides:

- above `cheaper-busyness-max`: spawn `cheaper-step` workers.  Spawning
  within multiplier x overload seconds of the last stop adds the penalty
  to the multiplier (the stop came too soon); a later spawn takes one
  off, down to `cheaper-busyness-multiplier`.
- below `cheaper-busyness-min`: once multiplier x overload seconds have
  passed since the last spawn or stop, stop one worker (the master picks
  the oldest idle); a stop that follows a stop takes one off the
  multiplier.
- in between: the cycle does not count as idle, so the time before a
  stop moves one cycle further; after three such cycles in a row it
  starts again.

At each check between cycles it watches the workers' listen queue: more
than `cheaper-busyness-backlog-alert` connections waiting, or some
waiting for `cheaper-busyness-backlog-nonzero` seconds, spawn
`cheaper-busyness-backlog-step` "emergency" workers at once (also at a
cycle that finds the load between the limits); while emergency workers
run, the time before a stop is backlog-multiplier x overload seconds.

A setting of 0 takes its default, as uWSGI reads these options.
"""

import time

from ugu import log
from ugu.options import registry

ALGORITHM = "busyness"
# What the algorithm did last: a second stop in a row lowers the
# multiplier.
SPAWNED, CHEAPED = 1, 2
# Cycles in a row between the limits after which the time before a stop
# starts again, as uWSGI counts them.
TOLERANCE = 3


def timed(config):
    """Whether the workers must time their requests: they feed the
    algorithm, and cost nothing more without it."""
    return bool(config["cheaper"]) and config["cheaper-algo"] == ALGORITHM


def setting(config, name):
    value = config[f"cheaper-busyness-{name}"]
    return value or registry.lookup(f"cheaper-busyness-{name}").default


def announce(config):
    """Its settings, said at start-up as uWSGI's plugin says them (with
    the algorithm named, whether the cheaper is on or not)."""
    if config["cheaper-algo"] != ALGORITHM:
        return
    log.log(f"[busyness] settings: min={setting(config, 'min')}%, "
            f"max={setting(config, 'max')}%, "
            f"overload={config['cheaper-overload']}, "
            f"multiplier={setting(config, 'multiplier')}, "
            f"respawn penalty={setting(config, 'penalty')}")
    log.log(f"[busyness] backlog alert is set to "
            f"{setting(config, 'backlog-alert')} request(s), step is "
            f"{setting(config, 'backlog-step')}")
    log.log(f"[busyness] backlog non-zero alert is set to "
            f"{setting(config, 'backlog-nonzero')} second(s)")


class Busyness:
    def __init__(self, cheaper, config, clock=time.monotonic):
        self.cheaper = cheaper
        self.clock = clock
        self.max = setting(config, "max")
        self.min = setting(config, "min")
        self.min_multi = self.multi = setting(config, "multiplier")
        self.penalty = setting(config, "penalty")
        self.verbose = config["cheaper-busyness-verbose"]
        self.backlog_alert = setting(config, "backlog-alert")
        self.backlog_multi = setting(config, "backlog-multiplier")
        self.backlog_step = setting(config, "backlog-step")
        self.backlog_nonzero = setting(config, "backlog-nonzero")
        slots = range(1, cheaper.processes + 1)
        self.last_values = dict.fromkeys(slots, 0)  # running times
        self.was_busy = dict.fromkeys(slots, 0)     # checks found busy
        self.last_action = None
        self.last_cheaped = None
        self.tolerance = 0
        self.emergency = 0          # emergency workers running
        self.backlog_since = None   # when the queue began to fill
        self.tcheck = self.clock()
        self.set_next_cheap(self.tcheck)

    def needed(self, census, can_spawn):
        now = self.clock()
        active = {w.number for w in census.running}
        idle = {w.number for w in census.idle}
        for wid in self.was_busy:
            if wid in active:
                self.was_busy[wid] += wid not in idle
            else:
                self.was_busy[wid] = 0
        if now - self.tcheck >= self.cheaper.overload:
            self.tcheck = now
            return self.cycle(census, can_spawn, now, active)
        return self.watch_backlog(census, can_spawn, now)

    def cycle(self, census, can_spawn, now, active):
        busyness = self.measure(census.scoreboard, active)
        overload = self.cheaper.overload
        if self.verbose:
            log.log(f"[busyness] {overload}s average busyness of "
                    f"{len(active)} worker(s) is at {busyness}%")
        if busyness > self.max:
            self.tolerance = 0
            return self.spawn(census, can_spawn, now, busyness)
        if can_spawn and census.backlog > self.backlog_alert and \
                len(active) < self.cheaper.processes:
            return self.spawn_emergency(census, now)
        if len(active) == 1:
            # Nothing to stop, nothing to count.
            return 0
        if busyness < self.min:
            self.tolerance = 0
            return self.cheap(now, busyness, len(active))
        self.not_idle(now, busyness)
        return 0

    def measure(self, scoreboard, active):
        """The average busyness (%) of the active workers over the cycle
        now ending; each slot's running time is kept for the next."""
        cycle = self.cheaper.overload * 1_000_000
        total = 0
        for wid in self.last_values:
            running_time = scoreboard.running_time(wid)
            if wid in active:
                total += self.worker_busyness(wid, running_time, cycle,
                                              len(active))
            self.last_values[wid] = running_time
        return total // len(active) if active else 0

    def worker_busyness(self, wid, running_time, cycle, active):
        spent = running_time - self.last_values[wid]
        percent = min(100, spent * 100 // cycle)
        if not spent and self.was_busy[wid]:
            if self.verbose:
                log.log(f"[busyness] worker {wid} was busy "
                        f"{self.was_busy[wid]} time(s) in last cycle but "
                        f"no request was completed during this time, "
                        f"marking as 100% busy")
            percent = 100
        self.was_busy[wid] = 0
        if self.verbose and active > 1:
            log.log(f"[busyness] worker nr {wid} {self.cheaper.overload}s "
                    f"average busyness is at {percent}%")
        return percent

    def spawn(self, census, can_spawn, now, busyness):
        overload = self.cheaper.overload
        count = min(self.cheaper.step, census.free) if can_spawn else 0
        if not count:
            log.log(f"[busyness] {overload}s average busyness is at "
                    f"{busyness}% but we already started maximum number of "
                    f"workers available with current limits "
                    f"({len(census.running)})")
            return 0
        self.last_action = SPAWNED
        if self.last_cheaped is not None and \
                (now - self.last_cheaped) // overload <= self.multi:
            self.multi += self.penalty
            log.log(f"[busyness] worker(s) respawned to fast, increasing "
                    f"cheaper multiplier to {self.multi} (+{self.penalty})")
        else:
            self.decrease_multi()
        self.set_next_cheap(now)
        log.log(f"[busyness] {overload}s average busyness is at "
                f"{busyness}%, will spawn {count} new worker(s)")
        return count

    def cheap(self, now, busyness, active):
        """-1 where the time before a stop has passed."""
        if active <= self.cheaper.floor:
            return 0
        if now < self.next_cheap:
            if self.verbose:
                log.log(f"[busyness] need to wait "
                        f"{int(self.next_cheap - now)} more second(s) to "
                        f"cheap worker")
            return 0
        if self.last_action == CHEAPED:
            self.decrease_multi()
        self.set_next_cheap(now)
        log.log(f"[busyness] {self.cheaper.overload}s average busyness is "
                f"at {busyness}%, cheap one of {active} running workers")
        self.last_cheaped = now
        self.last_action = CHEAPED
        self.emergency = max(0, self.emergency - 1)
        return -1

    def not_idle(self, now, busyness):
        """A cycle between the limits: it does not count towards a
        stop."""
        self.emergency = max(0, self.emergency - 1)
        self.tolerance += 1
        overload = self.cheaper.overload
        if self.tolerance >= TOLERANCE:
            what = "resetting"
            self.set_next_cheap(now)
        else:
            what = "adjusting"
            self.next_cheap += overload
        if self.verbose:
            log.log(f"[busyness] {overload}s average busyness is at "
                    f"{busyness}%, {self.tolerance} non-idle cycle(s), "
                    f"{what} cheaper timer")

    def watch_backlog(self, census, can_spawn, now):
        backlog = census.backlog
        if can_spawn and backlog > self.backlog_alert and \
                len(census.running) < self.cheaper.processes:
            return self.spawn_emergency(census, now)
        if not backlog:
            if self.backlog_since is not None and self.verbose:
                log.log("[busyness] backlog is now empty")
            self.backlog_since = None
            return 0
        if self.backlog_since is None:
            if self.verbose:
                log.log(f"[busyness] backlog is starting to fill "
                        f"({backlog})")
            self.backlog_since = now
            return 0
        waited = int(now - self.backlog_since)
        if can_spawn and waited >= self.backlog_nonzero:
            log.log(f"[busyness] backlog was non-zero for {waited} "
                    f"second(s), spawning new worker(s)")
            self.backlog_since = now
            return self.spawn_emergency(census, now)
        return 0

    def spawn_emergency(self, census, now):
        # A spike may be short: stops may come as soon as at the start.
        self.multi = self.min_multi
        self.last_action = SPAWNED
        count = min(self.backlog_step, census.free)
        self.set_next_cheap(now)
        if not count:
            log.log(f"[busyness] {census.backlog} requests in listen queue "
                    f"but we are already started maximum number of workers "
                    f"({self.cheaper.processes})")
            return 0
        self.emergency += count
        log.log(f"[busyness] {census.backlog} requests in listen queue, "
                f"spawning {count} emergency worker(s) ({self.emergency})!")
        return count

    def set_next_cheap(self, now):
        """When a worker may be stopped next: sooner while emergency
        workers run, so that a spike's workers go quickly."""
        overload = self.cheaper.overload
        if self.emergency:
            if self.verbose:
                log.log(f"[busyness] {self.emergency} emergency worker(s) "
                        f"running, using {overload * self.backlog_multi} "
                        f"seconds cheaper timer")
            self.next_cheap = now + overload * self.backlog_multi
        else:
            self.next_cheap = now + overload * self.multi

    def decrease_multi(self):
        if self.multi > self.min_multi:
            self.multi -= 1
            log.log(f"[busyness] decreasing cheaper multiplier to "
                    f"{self.multi}")
