"""The spare cheaper algorithm, check by check, as uWSGI 2.0 counts
(core/master_utils.c): a worker's busy core on the real scoreboard is what
makes it busy.  Timing a real vassal's scaling would need seconds of load
per check; the vassal-level behaviour is in test_master."""

from ugu.options.resolve import resolve
from ugu.vassal.cheaper import Cheaper
from ugu.vassal.master import Child
from ugu.vassal.scoreboard import Scoreboard


class Pool:
    def __init__(self, processes=3, cheaper=1, overload=3):
        config = resolve(["--master", "--processes", str(processes),
                          "--cheaper", str(cheaper), "--cheaper-overload",
                          str(overload)], {})
        self.cheaper = Cheaper(config)
        self.board = Scoreboard(processes, 1)
        self.workers = [Child("worker", 1, 100)]

    def busy(self, *wids):
        for wid in range(1, self.board.workers + 1):
            if wid in wids:
                self.board.begin(wid, 0)
            else:
                self.board.end(wid, 0)

    def check(self):
        """One master check; the spawned workers join, the stopped leave."""
        change = self.cheaper.decide(self.workers, self.board, {})
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
