"""The cheaper algorithms, check by check, as uWSGI 2.0 counts
(core/master_utils.c): a worker's busy core on the real scoreboard is what
makes it busy.  Timing a real vassal's scaling would need seconds of load
per check; the vassal-level behaviour is in test_master."""

import pytest

from ugu.options.errors import ConfigError
from ugu.options.resolve import resolve
from ugu.vassal.cheaper import Cheaper
from ugu.vassal.master import Child
from ugu.vassal.scoreboard import Scoreboard


class Pool:
    def __init__(self, processes=3, cheaper=1, overload=3, *more):
        config = resolve(["--master", "--processes", str(processes),
                          "--cheaper", str(cheaper), "--cheaper-overload",
                          str(overload), *more], {})
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
