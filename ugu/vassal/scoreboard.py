"""What each worker is doing, in memory shared by the master and workers.

An anonymous shared mapping made before the first fork: each worker writes
only its own slot (each core only its own cell); the master reads, and
writes a slot only to reset it for a new worker or to mark a worker it
stops quietly, when that worker is not writing it.  So no lock crosses
processes (the instance's request total is a plain counter, as uWSGI's).
The master uses it to decide when the workers are all busy (cheaper), to
find workers past their `harakiri` deadline, to know a new worker is
accepting (chain reload) and to print statistics.

A worker's counters (its requests, and each app's requests and
exceptions) outlive the worker: one respawned in its slot goes on
counting, as uWSGI's do, in the log line's `req:` and in the statistics.
A reload starts a new master, and a new scoreboard.

With a stats server (`stats`) the workers also keep what its document
shows and nothing else needs: each worker its traffic and response
times, each core its requests by kind, as uWSGI's shared worker table
holds them.
"""

import mmap
import struct
import time

# Per worker: total requests and the microseconds they took (uWSGI's
# running_time, which the stats and the busyness cheaper read), accepting
# flag, how it is leaving (RETIRING or LEAVING, below), the harakiri
# deadline (0.0: none), the kernel's id of the thread serving core 0 (0:
# the main thread); its pid, the spawns of its slot and the time of the
# last (for uwsgi.workers()); the deadline the app set with
# uwsgi.set_user_harakiri() (0.0: none).
_WORKER = struct.Struct("<QQBBdiiIqd")
_REQUESTS = struct.Struct("<Q")
# The two first fields, side by side so that a request that is timed
# writes both at once.
_ACCOUNT = struct.Struct("<QQ")
_RUNNING_TIME_AT = _REQUESTS.size
_DEADLINE = struct.Struct("<d")
_DEADLINE_AT = struct.calcsize("<QQBB")
_THREAD = struct.Struct("<i")
_THREAD_AT = struct.calcsize("<QQBBd")
# Then, for the stats: requests since the worker was spawned, bytes sent,
# and the running average of a request's microseconds (uWSGI's: halfway
# from the last average to each request).
_TRAFFIC = struct.Struct("<QQQ")
# Then per app of the worker (app ids start at 0): requests, exceptions;
# and whether the worker loaded it, the seconds its loading took, and its
# mountpoint.
_APP = struct.Struct("<QQ")
_APP_INFO = struct.Struct("<BQ255s")
# Before the workers: the requests of the whole instance, which uWSGI's
# request log line counts (the master's slot 0 in uWSGI).
_TOTAL = struct.Struct("<Q")
# Per core: in_request flag, start time, "ADDR - METHOD URI" of the
# request; then, for the stats and the metrics, its requests in all, of
# static files, offloaded, that failed writing to the client, routed, and
# its app's exceptions.
_CORE = struct.Struct("<Bd240s")
_CORE_COUNTS = struct.Struct("<QQQQQQ")
REQUEST_TEXT = 240
# A worker ending on its own: max-requests or reload-on-rss retire it (the
# master logs it as killed); a SIGHUP makes it leave (the master says
# nothing more unless it sent the signal itself), as uWSGI's master tells
# them apart.
RETIRING = 1
LEAVING = 2
_TEXT = struct.Struct(f"{REQUEST_TEXT}s")
_APP_SLOT = _APP.size + _APP_INFO.size
_CORE_SLOT = _CORE.size + _CORE_COUNTS.size
_MOUNTPOINT = 255


class Scoreboard:
    # In a worker: whether its app set a user harakiri, for the request's
    # end to clear it (no read of the slot otherwise).
    user_deadline_set = False

    def __init__(self, workers, cores, apps=1):
        self.workers, self.cores, self.apps = workers, cores, apps
        self._cores_at = _WORKER.size + _TRAFFIC.size + apps * _APP_SLOT
        self._worker_size = self._cores_at + cores * _CORE_SLOT
        self._map = mmap.mmap(-1, _TOTAL.size +
                              max(1, workers) * self._worker_size)

    def _worker_offset(self, wid):
        return _TOTAL.size + (wid - 1) * self._worker_size

    def _app_offset(self, wid, app_id):
        return self._worker_offset(wid) + _WORKER.size + _TRAFFIC.size + \
            app_id * _APP_SLOT

    def _core_offset(self, wid, core):
        return self._worker_offset(wid) + self._cores_at + core * _CORE_SLOT

    def _worker(self, wid):
        return list(_WORKER.unpack_from(self._map, self._worker_offset(wid)))

    def _set_worker(self, wid, index, value):
        fields = self._worker(wid)
        fields[index] = value
        _WORKER.pack_into(self._map, self._worker_offset(wid), *fields)

    def renew(self, wid, spawns, last_spawn):
        """Ready the slot for a new worker, its `spawns`th, spawned at
        `last_spawn`: idle, not yet accepting, not leaving, no deadline,
        no request since its spawn, no app loaded; the other counters go
        on."""
        _WORKER.pack_into(self._map, self._worker_offset(wid),
                          self.requests(wid), self.running_time(wid), 0, 0,
                          0.0, 0, 0, spawns, last_spawn, 0.0)
        offset = self._worker_offset(wid) + _WORKER.size
        _REQUESTS.pack_into(self._map, offset, 0)
        for app_id in range(self.apps):
            self._map[self._app_offset(wid, app_id) + _APP.size] = 0
        for core in range(self.cores):
            offset = self._core_offset(wid, core)
            self._map[offset:offset + _CORE.size] = bytes(_CORE.size)

    # -- written by the worker ------------------------------------------
    def begin(self, wid, core):
        _CORE.pack_into(self._map, self._core_offset(wid, core), 1,
                        time.time(), b"")

    def describe(self, wid, core, addr, method, uri):
        """Name the request a core is serving, for harakiri and SIGUSR2."""
        text = f"{addr} - {method} {uri}".encode("latin-1", "replace")
        _TEXT.pack_into(self._map,
                         self._core_offset(wid, core) + 9,
                         text[:REQUEST_TEXT])

    def end(self, wid, core):
        _CORE.pack_into(self._map, self._core_offset(wid, core), 0, 0.0,
                        b"")

    # Every request writes set_requests (or set_account) and
    # set_app_requests: the fields, not the whole record.
    def set_requests(self, wid, count):
        _REQUESTS.pack_into(self._map, self._worker_offset(wid), count)

    def set_account(self, wid, count, running_time):
        """set_requests for a worker that times its requests: the
        microseconds they took go in the same write."""
        _ACCOUNT.pack_into(self._map, self._worker_offset(wid), count,
                           running_time)

    def set_app_requests(self, wid, app_id, count):
        _REQUESTS.pack_into(self._map, self._app_offset(wid, app_id), count)

    def total(self):
        """The requests of the instance."""
        return _TOTAL.unpack_from(self._map, 0)[0]

    def add_to_total(self):
        """Count a request of the instance; returns the new total.  Not
        atomic across workers, as uWSGI's is not: two that end at once
        may count one (it only numbers log lines)."""
        total = _TOTAL.unpack_from(self._map, 0)[0] + 1
        _TOTAL.pack_into(self._map, 0, total)
        return total

    def set_harakiri(self, wid, deadline):
        """When the master kills the worker (time.time()), 0.0 for never:
        one deadline a worker, as in uWSGI 2.0, which each request that
        starts pushes back and each that ends clears."""
        _DEADLINE.pack_into(self._map, self._worker_offset(wid) +
                            _DEADLINE_AT, deadline)

    def set_user_harakiri(self, wid, deadline):
        """The app's own deadline for the worker (0.0: none), which the
        end of the request clears, as uWSGI's user harakiri."""
        self._set_worker(wid, 9, deadline)
        self.user_deadline_set = bool(deadline)

    def set_core_thread(self, wid, tid):
        """The thread serving core 0, for harakiri-verbose to look at."""
        _THREAD.pack_into(self._map, self._worker_offset(wid) + _THREAD_AT,
                          tid)

    def add_exception(self, wid, app_id):
        offset = self._app_offset(wid, app_id)
        requests, exceptions = _APP.unpack_from(self._map, offset)
        _APP.pack_into(self._map, offset, requests, exceptions + 1)

    def set_apps(self, wid, apps):
        """The apps the worker loaded (App records), for the stats."""
        for app in apps:
            mountpoint = app.mountpoint.encode("utf-8", "replace")
            _APP_INFO.pack_into(self._map, self._app_offset(wid, app.id) +
                                _APP.size, 1, app.startup_time,
                                mountpoint[:_MOUNTPOINT])

    def set_traffic(self, wid, delta, tx, avg_rt):
        _TRAFFIC.pack_into(self._map, self._worker_offset(wid) +
                           _WORKER.size, delta, tx, avg_rt)

    def set_core_counts(self, wid, core, counts):
        _CORE_COUNTS.pack_into(self._map, self._core_offset(wid, core) +
                               _CORE.size, *counts)

    def set_pid(self, wid, pid):
        self._set_worker(wid, 6, pid)

    def set_accepting(self, wid):
        self._set_worker(wid, 2, 1)

    def set_retiring(self, wid, how=RETIRING):
        self._set_worker(wid, 3, how)

    # -- read by the master -------------------------------------------
    def requests(self, wid):
        return self._worker(wid)[0]

    def app_counts(self, wid, app_id):
        """(requests, exceptions) of one app of the worker."""
        return _APP.unpack_from(self._map, self._app_offset(wid, app_id))

    def running_time(self, wid):
        """The microseconds the worker's timed requests took, in all."""
        return _REQUESTS.unpack_from(self._map, self._worker_offset(wid) +
                                     _RUNNING_TIME_AT)[0]

    def accepting(self, wid):
        return bool(self._worker(wid)[2])

    def retiring(self, wid):
        """0, RETIRING or LEAVING."""
        return self._worker(wid)[3]

    def harakiri(self, wid):
        return self._worker(wid)[4]

    def user_harakiri(self, wid):
        return self._worker(wid)[9]

    def traffic(self, wid):
        """(requests since its spawn, bytes sent, microseconds in
        requests, average microseconds of a request) of the worker."""
        delta, tx, avg_rt = _TRAFFIC.unpack_from(
            self._map, self._worker_offset(wid) + _WORKER.size)
        return delta, tx, self.running_time(wid), avg_rt

    def apps_of(self, wid):
        """(app id, startup seconds, mountpoint) of each app the worker
        loaded."""
        found = []
        for app_id in range(self.apps):
            loaded, startup, mountpoint = _APP_INFO.unpack_from(
                self._map, self._app_offset(wid, app_id) + _APP.size)
            if loaded:
                found.append((app_id, startup, mountpoint.rstrip(b"\0")
                              .decode("utf-8", "replace")))
        return found

    def core_counts(self, wid, core):
        """[requests, static, offloaded, write errors, routed,
        exceptions] of one core."""
        return list(_CORE_COUNTS.unpack_from(
            self._map, self._core_offset(wid, core) + _CORE.size))
    def core_thread(self, wid):
        return self._worker(wid)[5]

    def spawn(self, wid):
        """(pid, spawns, time of the last spawn) of the worker's slot."""
        return tuple(self._worker(wid)[6:9])

    def busy(self, wid):
        """True while any core of the worker is inside a request."""
        return any(self.running(wid, core) for core in range(self.cores))

    def running(self, wid, core):
        """(start time, request text) of the core's request, or None."""
        busy, start, text = _CORE.unpack_from(self._map,
                                              self._core_offset(wid, core))
        if not busy:
            return None
        return start, text.rstrip(b"\0").decode("latin-1")
