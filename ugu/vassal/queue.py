"""uWSGI's queue (`queue = N`, `queue-blocksize`, `queue-store`,
`queue-store-sync`): N slots of `queue-blocksize` bytes in memory every
process of the instance shares, mapped by the master before it forks,
and the `uwsgi` module's queue functions, which exist only with a queue,
as in uWSGI.

It is a ring, not a bounded FIFO: queue_push writes at the push slot
and moves it on, over whatever the slot held (a full queue drops its
oldest item, as uWSGI's does); queue_pull takes from the pull slot,
queue_pop from the slot before the push slot (a stack).  The layout is
uWSGI's, so that a `queue-store` file opens in either server: a header
of the push and pull slots (two 64-bit numbers), then each slot: the
message's size, the time it was stored (64 bits each) and the message.
A size of 0 is an empty slot.

Where uWSGI writes past a slot (queue_set of a message up to 16 bytes
longer than the slot, any message with a slot of 16 bytes or less) or
crashes (queue_last(-1)), ugu refuses.  A store file whose header names
a slot the queue does not have, or whose slot says it holds more than a
slot does (a damaged file), is mended as it is recovered, saying so:
uWSGI's workers read and write past the queue on it, and die.
"""

import mmap
import os
import stat
import struct
import time

from ugu import log
from ugu.options.errors import ConfigError
from ugu.vassal import pyargs, rwlocks

HEADER = struct.Struct("=QQ")
ITEM = struct.Struct("=QQ")
DEFAULT_BLOCKSIZE = 8192


class Queue:
    def __init__(self, size, blocksize, store=None, store_sync=0):
        self.size, self.blocksize = size, blocksize
        self.store, self.store_sync = store, store_sync
        self.cycles = 0
        self.filesize = HEADER.size + size * blocksize
        self.map = self._map() if store else mmap.mmap(-1, self.filesize)
        self.locks = rwlocks.Locks("queue", 1)
        log.log(f"*** Queue subsystem initialized: "
                f"{size * blocksize // (1024 * 1024)}MB preallocated ***")

    def _map(self):
        try:
            found = os.stat(self.store)
        except FileNotFoundError:
            log.log(f"creating a new queue store file: {self.store}")
            found = None
        if found and (found.st_size != self.filesize
                      or not stat.S_ISREG(found.st_mode)):
            raise ConfigError(
                "invalid queue store file. Please remove it or fix queue "
                f"blocksize/items to match its size ({self.store} has "
                f"{found.st_size} bytes, this queue takes {self.filesize})",
                option="queue-store")
        try:
            fd = os.open(self.store, os.O_CREAT | os.O_RDWR, 0o600)
        except OSError as e:
            raise ConfigError(f'open("{self.store}"): {e.strerror}',
                              option="queue-store") from None
        try:
            if found is None:
                os.ftruncate(fd, self.filesize)
                return mmap.mmap(fd, self.filesize)
            log.log(f"recovered queue from backing store file: "
                    f"{self.store}")
            mapped = mmap.mmap(fd, self.filesize)
            self._mend(mapped)
            return mapped
        finally:
            os.close(fd)

    def _mend(self, mapped):
        """Put right what a damaged store file says: a push or pull slot
        past the last is 0, a slot holding more than it can is empty."""
        given = HEADER.unpack_from(mapped, 0)
        slots = tuple(slot if slot < self.size else 0 for slot in given)
        if slots != given:
            log.log(f"queue store {self.store}: the push and pull slots "
                    f"{given} are not all under {self.size}, set to "
                    f"{slots}")
            HEADER.pack_into(mapped, 0, *slots)
        for slot in range(self.size):
            start = self._start(slot)
            size = ITEM.unpack_from(mapped, start)[0]
            if size > self.room:
                log.log(f"queue store {self.store}: slot {slot} says it "
                        f"holds {size} bytes, more than its {self.room}: "
                        f"emptied")
                ITEM.pack_into(mapped, start, 0, 0)

    # -- the slots (each under the lock) ------------------------------------
    @property
    def room(self):
        """The longest message a slot holds."""
        return self.blocksize - ITEM.size

    def slots(self):
        """(push slot, pull slot)."""
        return HEADER.unpack_from(self.map, 0)

    def _set_slots(self, push, pull):
        HEADER.pack_into(self.map, 0, push, pull)

    def _start(self, slot):
        return HEADER.size + slot * self.blocksize

    def get(self, slot):
        """The message in `slot`, or None (empty, or no such slot)."""
        if not 0 <= slot < self.size:
            return None
        start = self._start(slot)
        size = ITEM.unpack_from(self.map, start)[0]
        if not size:
            return None
        start += ITEM.size
        return bytes(self.map[start:start + size])

    def _take(self, slot):
        message = self.get(slot)
        if message is not None:
            ITEM.pack_into(self.map, self._start(slot), 0, 0)
        return message

    def put(self, slot, message):
        if not message or len(message) > self.room or \
                not 0 <= slot < self.size:
            return False
        start = self._start(slot)
        ITEM.pack_into(self.map, start, len(message), int(time.time()))
        start += ITEM.size
        self.map[start:start + len(message)] = message
        return True

    def push(self, message):
        push, pull = self.slots()
        if not self.put(push, message):
            return False
        self._set_slots((push + 1) % self.size, pull)
        return True

    def pull(self):
        push, pull = self.slots()
        message = self._take(pull)
        if message is not None:
            self._set_slots(push, (pull + 1) % self.size)
        return message

    def pop(self):
        """The item before the push slot; the push slot moves back to it
        even when it is empty, as uWSGI's does."""
        push, pull = self.slots()
        push = (push or self.size) - 1
        self._set_slots(push, pull)
        return self._take(push)

    def last(self, count):
        """The newest `count` slots' messages, newest first (None for an
        empty one); with 0, the newest message alone."""
        push = self.slots()[0]
        base = (push or self.size) - 1
        if not count:
            return self.get(base)
        return [self.get((base - back) % self.size)
                for back in range(min(count, self.size))]

    # -- the master's side ----------------------------------------------------
    def tick(self):
        """Each second of the master: the store synced every
        queue-store-sync seconds."""
        self.cycles += 1
        if self.store and self.store_sync and \
                self.cycles % self.store_sync == 0:
            self.map.flush()

    def close(self):
        if self.store:
            self.map.flush()


_queue = None


def create(config):
    """The instance's queue (in the master, before any fork), or None."""
    global _queue
    size = config["queue"]
    if size <= 0:
        _queue = None
        return None
    blocksize = config["queue-blocksize"] or DEFAULT_BLOCKSIZE
    if blocksize <= ITEM.size:
        raise ConfigError(f"a queue slot of {blocksize} bytes holds no "
                          f"message (each starts with a {ITEM.size}-byte "
                          f"header): set queue-blocksize higher",
                          option="queue-blocksize")
    if blocksize * size % mmap.PAGESIZE:
        raise ConfigError(f"invalid queue size/blocksize {blocksize}: must "
                          f"be a multiple of memory page size "
                          f"({mmap.PAGESIZE} bytes)", option="queue-blocksize")
    _queue = Queue(size, blocksize, config["queue-store"] or None,
                   config["queue-store-sync"])
    return _queue


# -- the uwsgi module's functions -------------------------------------------
def _writing():
    return _queue.locks.writing(0)


def _reading():
    return _queue.locks.reading(0)


def _answer(done):
    return True if done else None


def queue_push(*args, **kwargs):
    (message,) = pyargs.parse("queue_push", args, kwargs, "y")
    with _writing():
        return _answer(_queue.push(message))


def queue_set(*args, **kwargs):
    slot, message = pyargs.parse("queue_set", args, kwargs, "ly")
    with _writing():
        return _answer(_queue.put(slot, message))


def queue_pull(*args, **kwargs):
    with _writing():
        return _queue.pull()


def queue_pop(*args, **kwargs):
    with _writing():
        return _queue.pop()


def queue_get(*args, **kwargs):
    (slot,) = pyargs.parse("queue_get", args, kwargs, "l")
    with _reading():
        return _queue.get(slot)


def queue_last(*args, **kwargs):
    (count,) = pyargs.parse("queue_last", args, kwargs, "|l", (0,))
    if count < 0:
        raise ValueError("queue_last() takes a number of items, 0 or more")
    with _reading():
        return _queue.last(count)


def queue_slot(*args, **kwargs):
    return _queue.slots()[0]


def queue_pull_slot(*args, **kwargs):
    return _queue.slots()[1]


FUNCTIONS = {f.__name__: f for f in (
    queue_push, queue_set, queue_pull, queue_pop, queue_get, queue_last,
    queue_slot, queue_pull_slot)}


def configured():
    return _queue is not None


def size():
    return _queue.size
