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
"""

import mmap
import struct
import time

# Per worker: total requests, accepting flag, how it is leaving
# (RETIRING or LEAVING, below), and the harakiri deadline (0.0: none).
_WORKER = struct.Struct("<QBBd")
_REQUESTS = struct.Struct("<Q")
_DEADLINE = struct.Struct("<d")
_DEADLINE_AT = struct.calcsize("<QBB")
# Then per app of the worker (app ids start at 0): requests, exceptions.
_APP = struct.Struct("<QQ")
# Before the workers: the requests of the whole instance, which uWSGI's
# request log line counts (the master's slot 0 in uWSGI).
_TOTAL = struct.Struct("<Q")
# Per core: in_request flag, start time, "ADDR - METHOD URI" of the request.
_CORE = struct.Struct("<Bd240s")
REQUEST_TEXT = 240
# A worker ending on its own: max-requests or reload-on-rss retire it (the
# master logs it as killed); a SIGHUP makes it leave (the master says
# nothing more unless it sent the signal itself), as uWSGI's master tells
# them apart.
RETIRING = 1
LEAVING = 2
_TEXT = struct.Struct(f"{REQUEST_TEXT}s")


class Scoreboard:
    def __init__(self, workers, cores, apps=1):
        self.workers, self.cores = workers, cores
        self._cores_at = _WORKER.size + apps * _APP.size
        self._worker_size = self._cores_at + cores * _CORE.size
        self._map = mmap.mmap(-1, _TOTAL.size +
                              max(1, workers) * self._worker_size)

    def _worker_offset(self, wid):
        return _TOTAL.size + (wid - 1) * self._worker_size

    def _app_offset(self, wid, app_id):
        return self._worker_offset(wid) + _WORKER.size + app_id * _APP.size

    def _core_offset(self, wid, core):
        return self._worker_offset(wid) + self._cores_at + core * _CORE.size

    def _worker(self, wid):
        return list(_WORKER.unpack_from(self._map, self._worker_offset(wid)))

    def _set_worker(self, wid, index, value):
        fields = self._worker(wid)
        fields[index] = value
        _WORKER.pack_into(self._map, self._worker_offset(wid), *fields)

    def renew(self, wid):
        """Ready the slot for a new worker: idle, not yet accepting, not
        leaving, no deadline; the counters go on."""
        _WORKER.pack_into(self._map, self._worker_offset(wid),
                          self.requests(wid), 0, 0, 0.0)
        start = self._core_offset(wid, 0)
        size = self.cores * _CORE.size
        self._map[start:start + size] = bytes(size)

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

    # Every request writes these two: the one field, not the whole record.
    def set_requests(self, wid, count):
        _REQUESTS.pack_into(self._map, self._worker_offset(wid), count)

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

    def add_exception(self, wid, app_id):
        offset = self._app_offset(wid, app_id)
        requests, exceptions = _APP.unpack_from(self._map, offset)
        _APP.pack_into(self._map, offset, requests, exceptions + 1)

    def set_accepting(self, wid):
        self._set_worker(wid, 1, 1)

    def set_retiring(self, wid, how=RETIRING):
        self._set_worker(wid, 2, how)

    # -- read by the master -------------------------------------------
    def requests(self, wid):
        return self._worker(wid)[0]

    def app_counts(self, wid, app_id):
        """(requests, exceptions) of one app of the worker."""
        return _APP.unpack_from(self._map, self._app_offset(wid, app_id))

    def accepting(self, wid):
        return bool(self._worker(wid)[1])

    def retiring(self, wid):
        """0, RETIRING or LEAVING."""
        return self._worker(wid)[2]

    def harakiri(self, wid):
        return self._worker(wid)[3]

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
