"""What each worker is doing, in memory shared by the master and workers.

An anonymous shared mapping made before the first fork: each worker writes
only its own slot (each core only its own cell), the master only reads, so
no lock crosses processes.  The master uses it to decide when the workers
are all busy (cheaper) and to report statistics.
"""

import mmap
import struct
import time

# Per core: in_request flag, start time of the current request.
_CORE = struct.Struct("<Bd")
# Per worker: total requests.
_WORKER = struct.Struct("<Q")


class Scoreboard:
    def __init__(self, workers, cores):
        self.workers, self.cores = workers, cores
        self._worker_size = _WORKER.size + cores * _CORE.size
        self._map = mmap.mmap(-1, max(1, workers) * self._worker_size)

    def _core_offset(self, wid, core):
        return ((wid - 1) * self._worker_size + _WORKER.size
                + core * _CORE.size)

    def reset(self, wid):
        start = (wid - 1) * self._worker_size
        self._map[start:start + self._worker_size] = bytes(self._worker_size)

    def begin(self, wid, core):
        _CORE.pack_into(self._map, self._core_offset(wid, core), 1,
                        time.time())

    def end(self, wid, core):
        _CORE.pack_into(self._map, self._core_offset(wid, core), 0, 0.0)

    def set_requests(self, wid, count):
        _WORKER.pack_into(self._map, (wid - 1) * self._worker_size, count)

    def requests(self, wid):
        return _WORKER.unpack_from(self._map,
                                   (wid - 1) * self._worker_size)[0]

    def busy(self, wid):
        """True while any core of the worker is inside a request."""
        return any(_CORE.unpack_from(self._map,
                                     self._core_offset(wid, core))[0]
                   for core in range(self.cores))
