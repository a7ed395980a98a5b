"""The cheaper algorithms, check by check, as uWSGI 2.0 counts
(core/master_utils.c): a worker's busy core on the real scoreboard is what
makes it busy.  Timing a real vassal's scaling would need seconds of load
per check; the vassal-level behaviour is in test_master."""

import pytest

from ugu.options.errors import ConfigError
from ugu.options.resolve import resolve
from ugu.vassal.busyness import Busyness
from ugu.vassal.cheaper import Cheaper
from ugu.vassal.master import Child
from ugu.vassal.scoreboard import Scoreboard


class Pool:
    def __init__(self, processes=3, cheaper=1, overload=3, *more):
        config = resolve(["--master", "--processes", str(processes),
                          "--cheaper", str(cheaper), "--cheaper-overload",
                          str(overload), *more], {})
        self.config = config
        self.cheaper = Cheaper(config)
        self.board = Scoreboard(processes, 1)
        self.workers = [Child("worker", 1, 100)]
        self.backlog = 0
        self.rss = {}       # pid -> resident bytes

    def busy(self, *wids):
        for wid in range(1, self.board.workers + 1):
            if wid in wids:
                self.board.begin(wid, 0)
            else:
                self.board.end(wid, 0)

    def check(self):
        """One master check; the spawned workers join, the stopped leave."""
        change = self.cheaper.decide(self.workers, self.board, {},
                                     self.backlog,
                                     lambda pid: self.rss.get(pid, 0))
        for wid in change.spawn:
            self.workers.append(Child("worker", wid, 100 + wid))
        for child in change.stop:
            self.workers.remove(child)
        return ([wid for wid in change.spawn],
                [child.number for child in change.stop])


def test_spawns_after_more_overloaded_checks_than_cheaper_overload():
    pool = Pool(overload=3)
    pool.busy(1)
    assert [pool.check() for _ in range(3)] == [([], [])] * 3
    assert pool.check() == ([2], [])


def test_an_idle_check_takes_back_one_overloaded_check():
    pool = Pool(overload=3)
    pool.busy(1)
    pool.check(), pool.check(), pool.check()
    pool.busy()
    assert pool.check() == ([], [])
    pool.busy(1)
    assert pool.check() == ([], [])
    assert pool.check() == ([2], [])


def test_one_spare_worker_is_kept_and_more_are_stopped_oldest_first():
    pool = Pool(overload=2)
    pool.busy(1)
    while pool.check() == ([], []):
        pass
    pool.busy(1, 2)
    while pool.check() == ([], []):
        pass
    assert [w.number for w in pool.workers] == [1, 2, 3]
    pool.busy(1, 3)
    assert [pool.check() for _ in range(4)] == [([], [])] * 4
    pool.busy()
    assert pool.check() == ([], [])
    assert pool.check() == ([], [1])
    assert pool.check() == ([], [])
    assert pool.check() == ([], [2])
    assert [pool.check() for _ in range(4)] == [([], [])] * 4


def test_backlog_spawns_a_step_over_the_overload_and_stops_under_it():
    pool = Pool(4, 1, 2, "--cheaper-algo", "backlog", "--cheaper-step", "2")
    pool.backlog = 2
    assert pool.check() == ([], [])
    pool.backlog = 3
    assert pool.check() == ([2, 3], [])
    pool.backlog = 2
    assert pool.check() == ([], [])
    pool.backlog = 1
    assert pool.check() == ([], [1])


def test_backlog_keeps_a_stop_that_found_no_idle_worker():
    """As uWSGI: the stop is retried at the next check, before the
    algorithm is asked again (a backlog now over the overload spawns
    nothing that check)."""
    pool = Pool(3, 1, 2, "--cheaper-algo", "backlog")
    pool.workers.append(Child("worker", 2, 102))
    pool.busy(1, 2)
    assert pool.check() == ([], [])
    pool.backlog = 5
    pool.busy(2)
    assert pool.check() == ([], [1])
    assert pool.check() == ([1], [])


def test_manual_moves_only_on_the_fifo_delta():
    pool = Pool(3, 1, 1, "--cheaper-algo", "manual")
    pool.busy(1)
    assert [pool.check() for _ in range(3)] == [([], [])] * 3
    pool.cheaper.delta += 1
    assert pool.check() == ([2], [])
    pool.busy()
    assert [pool.check() for _ in range(3)] == [([], [])] * 3
    pool.cheaper.delta -= 1
    assert pool.check() == ([], [1])


def test_rss_limits_hold_back_spawning_and_stop_one_worker():
    pool = Pool(3, 1, 1, "--memory-report", "--cheaper-rss-limit-soft",
                "1000", "--cheaper-rss-limit-hard", "2000")
    pool.busy(1)
    pool.rss[100] = 1000
    assert [pool.check() for _ in range(3)] == [([], [])] * 3
    pool.rss[100] = 999
    assert pool.check() == ([2], [])
    pool.rss[102] = 1001
    pool.busy()
    assert pool.check() == ([], [1])
    # One worker left: the hard limit stops no more.
    pool.rss[102] = 5000
    assert pool.check() == ([], [])


@pytest.mark.parametrize("args, words", [
    (["--cheaper-rss-limit-soft", "10"], "enabling cheaper-rss-limit-soft "
                                         "requires enabling also "
                                         "memory-report"),
    (["--cheaper-rss-limit-hard", "10"], "enabling cheaper-rss-limit-hard "
                                         "requires setting also "
                                         "cheaper-rss-limit-soft"),
    (["--memory-report", "--cheaper-rss-limit-soft", "10",
      "--cheaper-rss-limit-hard", "10"], "cheaper-rss-limit-hard value "
                                         "must be higher than "
                                         "cheaper-rss-limit-soft value"),
])
def test_start_up_checks(args, words):
    from ugu.vassal import cheaper
    config = resolve(["--master", "--processes", "3", *args], {})
    with pytest.raises(ConfigError, match=words):
        cheaper.check(config)


class BusyPool(Pool):
    """A pool under the busyness algorithm, on a clock the test moves:
    each check() is a second later (cheaper-overload = 1, a cycle a
    check)."""

    def __init__(self, processes=4, cheaper=1, *more):
        super().__init__(processes, cheaper, 1, "--cheaper-algo",
                         "busyness", *more)
        self.start = self.now = 1000.0
        self.cheaper.algorithm = Busyness(self.cheaper, self.config,
                                          clock=lambda: self.now)

    def check(self):
        self.now += 1
        return super().check()

    def check_at(self, seconds):
        """A check `seconds` after the start."""
        self.now = self.start + seconds - 1
        return self.check()

    def serve(self, wid, seconds):
        """A request of the worker ends, having taken `seconds`."""
        running_time = self.board.running_time(wid) + int(seconds * 1e6)
        self.board.set_account(wid, self.board.requests(wid) + 1,
                               running_time)


def test_busyness_spawns_for_workers_busy_through_the_cycle(capfd):
    pool = BusyPool(4, 1, "--cheaper-busyness-verbose")
    assert pool.check() == ([], [])
    pool.busy(1)
    assert pool.check() == ([2], [])
    said = capfd.readouterr().err
    assert "[busyness] 1s average busyness of 1 worker(s) is at 0%\n" \
        "[busyness] worker 1 was busy 1 time(s) in last cycle but no " \
        "request was completed during this time, marking as 100% busy\n" \
        "[busyness] 1s average busyness of 1 worker(s) is at 100%\n" \
        "[busyness] 1s average busyness is at 100%, will spawn 1 new " \
        "worker(s)\n" in said


def test_busyness_is_the_share_of_the_cycle_in_finished_requests(capfd):
    pool = BusyPool(4, 1, "--cheaper-busyness-verbose",
                    "--cheaper-step", "2")
    pool.workers.append(Child("worker", 2, 102))
    pool.serve(1, 0.9)
    pool.serve(2, 0.3)
    assert pool.check() == ([3, 4], [])
    said = capfd.readouterr().err
    assert "[busyness] worker nr 1 1s average busyness is at 90%\n" \
        "[busyness] worker nr 2 1s average busyness is at 30%\n" \
        "[busyness] 1s average busyness of 2 worker(s) is at 60%\n" in said
    # Between min (25) and max (50): neither spawn nor stop.
    pool.serve(1, 0.4)
    pool.serve(2, 0.4)
    assert pool.check() == ([], [])


def test_busyness_stops_one_idle_worker_after_multiplier_cycles(capfd):
    pool = BusyPool(4, 1, "--cheaper-busyness-multiplier", "3",
                    "--cheaper-busyness-verbose")
    pool.workers.append(Child("worker", 2, 102))
    pool.workers.append(Child("worker", 3, 103))
    # The start counts as the last change: 3 cycles to wait.
    assert [pool.check() for _ in range(2)] == [([], [])] * 2
    assert pool.check() == ([], [1])
    assert pool.check() == ([], [])
    assert "[busyness] need to wait 1 more second(s) to cheap worker\n" \
        in capfd.readouterr().err
    assert pool.check() == ([], [])
    assert pool.check() == ([], [2])
    said = capfd.readouterr().err
    assert "[busyness] 1s average busyness is at 0%, cheap one of 2 " \
        "running workers\n" in said
    # The floor (cheaper = 1) reached: no more.
    assert [pool.check() for _ in range(5)] == [([], [])] * 5


def test_busyness_penalty_for_a_spawn_soon_after_a_stop(capfd):
    pool = BusyPool(3, 1, "--cheaper-busyness-multiplier", "1")
    pool.workers.append(Child("worker", 2, 102))
    assert pool.check() == ([], [1])
    pool.busy(2)
    assert pool.check() == ([1], [])
    assert "[busyness] worker(s) respawned to fast, increasing cheaper " \
        "multiplier to 3 (+2)\n" in capfd.readouterr().err
    # Stops in a row bring it back down.
    pool.busy()
    pool.workers.append(Child("worker", 3, 103))
    stops = [pool.check()[1] for _ in range(8)]
    assert [stop for stop in stops if stop] == [[2], [1]]
    assert stops.index([1]) - stops.index([2]) == 3
    assert "[busyness] decreasing cheaper multiplier to 2\n" \
        in capfd.readouterr().err


def test_busyness_cycles_between_the_limits_hold_back_a_stop(capfd):
    pool = BusyPool(3, 1, "--cheaper-busyness-multiplier", "2",
                    "--cheaper-busyness-verbose")
    pool.workers.append(Child("worker", 2, 102))
    for _ in range(3):
        pool.serve(1, 0.6)
        assert pool.check() == ([], [])
    said = capfd.readouterr().err
    assert "[busyness] 1s average busyness is at 30%, 1 non-idle " \
        "cycle(s), adjusting cheaper timer\n" in said
    assert "[busyness] 1s average busyness is at 30%, 3 non-idle " \
        "cycle(s), resetting cheaper timer\n" in said
    assert pool.check() == ([], [])
    assert pool.check() == ([], [1])


def test_busyness_spawns_emergency_workers_on_the_listen_queue(capfd):
    pool = BusyPool(4, 1, "--cheaper-busyness-backlog-alert", "5",
                    "--cheaper-busyness-backlog-step", "2",
                    "--cheaper-busyness-backlog-nonzero", "3",
                    "--cheaper-busyness-verbose")
    # Between cycles (a cycle each second from 0).
    pool.backlog = 6
    assert pool.check_at(0.5) == ([2, 3], [])
    assert "[busyness] 6 requests in listen queue, spawning 2 emergency " \
        "worker(s) (2)!\n" in capfd.readouterr().err
    pool.backlog = 1
    for t in (0.7, 1.0, 1.9, 2.0, 2.9, 3.0):
        assert pool.check_at(t) == ([], [])
    assert pool.check_at(3.8) == ([4], [])
    said = capfd.readouterr().err
    assert "[busyness] backlog is starting to fill (1)\n" in said
    # The timer before a stop is backlog-multiplier cycles while
    # emergency workers run.
    assert "[busyness] backlog was non-zero for 3 second(s), spawning new " \
        "worker(s)\n[busyness] 2 emergency worker(s) running, using 3 " \
        "seconds cheaper timer\n[busyness] 1 requests in listen queue, " \
        "spawning 1 emergency worker(s) (3)!\n" in said
    pool.backlog = 0
    assert pool.check_at(3.9) == ([], [])
    assert "[busyness] backlog is now empty\n" in capfd.readouterr().err


def test_busyness_settings_of_0_take_the_defaults(capfd):
    from ugu.vassal import busyness
    config = resolve(["--master", "--processes", "3", "--cheaper-algo",
                      "busyness", "--cheaper-busyness-max", "0",
                      "--cheaper-busyness-min", "10"], {})
    busyness.announce(config)
    assert capfd.readouterr().err == (
        "[busyness] settings: min=10%, max=50%, overload=3, "
        "multiplier=10, respawn penalty=2\n"
        "[busyness] backlog alert is set to 33 request(s), step is 1\n"
        "[busyness] backlog non-zero alert is set to 60 second(s)\n")
