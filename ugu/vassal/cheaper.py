"""The cheaper: adaptive process spawning, run by the master each second,
with uWSGI 2.0's built-in algorithms (`cheaper-algo`).

An algorithm tells how many workers to add (a positive count) or that one
should go (-1); the master then spawns workers into the first free slots,
or stops the oldest idle worker.

- `spare` (the default): all running workers busy at more than
  `cheaper-overload` checks (each check with an idle worker taking one
  back): spawn `cheaper-step` more, up to `processes`.  Once no overload
  is left, every `cheaper-overload`-th check that finds more than one idle
  worker above the `cheaper` floor stops one.
- `backlog`: spawn `cheaper-step` more while the worker sockets' listen
  queue holds more than `cheaper-overload` connections; stop one while it
  holds fewer and more than `cheaper` workers run.
- `busyness`: from the share of each `cheaper-overload` seconds the
  workers spent in requests, and the listen queue (busyness.py).
- `manual`: nothing of its own; the master fifo's `+` and `-` add or stop
  one worker (with any algorithm, as in uWSGI).

`cheaper-rss-limit-soft` stops the algorithm from spawning while the
workers' resident memory together reaches it; `cheaper-rss-limit-hard`
then stops one worker each check.
"""

from dataclasses import dataclass, field

from ugu import log
from ugu.options.errors import ConfigError
from ugu.vassal import busyness


@dataclass
class Change:
    spawn: list = field(default_factory=list)   # worker ids to start
    stop: list = field(default_factory=list)    # Child records to stop


@dataclass
class Census:
    """What an algorithm sees at one check."""
    running: list       # Child records of the workers not stopping
    idle: list          # those of them outside any request
    free: int           # slots where a worker could be spawned
    backlog: int        # connections waiting in the worker sockets' queues
    scoreboard: object  # the workers' running times, for busyness


class Spare:
    def __init__(self, cheaper, config):
        self.cheaper = cheaper
        self.overloaded = 0
        self.idle_checks = 0

    def needed(self, census, can_spawn):
        c = self.cheaper
        if census.idle:
            # One idle check takes back one overloaded check, as in
            # uWSGI, rather than starting the count again.
            self.overloaded = max(0, self.overloaded - 1)
        else:
            self.overloaded += 1
            self.idle_checks = 0
        if can_spawn and self.overloaded > c.overload:
            self.overloaded = 0
            return min(c.step, census.free)
        # One spare worker is the steady state: it neither counts towards
        # stopping one nor resets the count.
        if self.overloaded or len(census.idle) == 1:
            return 0
        self.idle_checks += 1
        if len(census.running) > c.floor and \
                self.idle_checks % c.overload == 0:
            return -1
        return 0


class Backlog:
    def __init__(self, cheaper, config):
        self.cheaper = cheaper

    def needed(self, census, can_spawn):
        c = self.cheaper
        if can_spawn and census.backlog > c.overload:
            return min(c.step, census.free)
        if census.backlog < c.overload and len(census.running) > c.floor:
            return -1
        return 0


class Manual:
    def __init__(self, cheaper, config):
        pass

    def needed(self, census, can_spawn):
        return 0


ALGORITHMS = {"spare": Spare, "backlog": Backlog, "manual": Manual,
              busyness.ALGORITHM: busyness.Busyness}


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
        self.overload = max(1, config["cheaper-overload"])
        self.rss_soft = config["cheaper-rss-limit-soft"]
        self.rss_hard = config["cheaper-rss-limit-hard"]
        self.algorithm = ALGORITHMS.get(config["cheaper-algo"],
                                        Spare)(self, config)
        # Workers asked for (+) or away (-) by the master fifo, and stops
        # that found no idle worker, retried at the next check.
        self.delta = 0
        self._cheaped = set()

    def is_cheaped(self, wid):
        return wid in self._cheaped

    def filled(self, wid):
        """A worker was spawned in the slot, by the cheaper or not."""
        self._cheaped.discard(wid)

    def decide(self, workers, scoreboard, pending, backlog, rss):
        """What to change, given the workers (Child records), the
        scoreboard, the workers already due to respawn, the worker
        sockets' listen queue and a function giving a pid's resident
        bytes."""
        running = [w for w in workers if not w.stopping]
        idle = [w for w in running if not scoreboard.busy(w.number)]
        free = self._free_slots(workers, pending)
        needed, can_spawn = self._memory_limits(running, rss)
        if self.delta:
            if can_spawn:
                needed = self.delta
            self.delta = 0
        elif not needed:
            needed = self.algorithm.needed(
                Census(running, idle, len(free), backlog, scoreboard),
                can_spawn)
        if needed > 0:
            return Change(spawn=free[:needed])
        return Change(stop=self._stop_oldest(idle, -needed))

    def _memory_limits(self, running, rss):
        """(workers to stop as a negative count, whether spawning is
        allowed) under cheaper-rss-limit-soft and -hard."""
        if not self.rss_soft:
            return 0, True
        total = sum(rss(w.pid) for w in running)
        if self.rss_hard and len(running) > 1 and total >= self.rss_hard:
            log.log(f"cheaper hard rss memory limit exceeded, cheap one of "
                    f"{len(running)} workers")
            return -1, False
        return 0, total < self.rss_soft

    def _free_slots(self, workers, pending):
        taken = {w.number for w in workers} | {n for _, n in pending}
        return [wid for wid in range(1, self.processes + 1)
                if wid not in taken]

    def _stop_oldest(self, idle, count):
        """The `count` oldest idle workers; a stop that finds none is
        kept for the next check, as uWSGI keeps it."""
        stop = sorted(idle, key=lambda w: w.born)[:count]
        self.delta -= count - len(stop)
        self._cheaped.update(w.number for w in stop)
        return stop


def check(config):
    """uWSGI's start-up checks, made with or without `cheaper`."""
    soft, hard = config["cheaper-rss-limit-soft"], \
        config["cheaper-rss-limit-hard"]
    if soft and not config["memory-report"]:
        raise ConfigError("enabling cheaper-rss-limit-soft requires "
                          "enabling also memory-report",
                          option="cheaper-rss-limit-soft")
    if hard and not soft:
        raise ConfigError("enabling cheaper-rss-limit-hard requires "
                          "setting also cheaper-rss-limit-soft",
                          option="cheaper-rss-limit-hard")
    if hard and hard <= soft:
        raise ConfigError("cheaper-rss-limit-hard value must be higher "
                          "than cheaper-rss-limit-soft value",
                          option="cheaper-rss-limit-hard")


def announce(config):
    """After the first spawn, as uWSGI's master loop says it, whether the
    cheaper is on or not."""
    name = config["cheaper-algo"]
    if name and name not in ALGORITHMS:
        log.log("unable to find requested cheaper algorithm, falling back "
                "to spare")
