"""uWSGI's cache: named key-value stores in shared memory (`cache2`, and
the legacy `cache`), made by the master before it forks, so that every
worker and mule of the instance reads and writes the same items, and
they outlive a worker's respawn.

The items keep uWSGI's layout, so that a `store` file written by one
opens in the other: `items` slots, each a header of eleven 64-bit fields
followed by `keysize` bytes of key, then the data blocks (without
`bitmap`, slot N's value lives in block N).  Slot 0 is never used: a
cache of N items holds N-1, as uWSGI's does.  What uWSGI rebuilds from
the slots at start lives beside them, in anonymous shared memory: the
counters, the hash table (the first slot of each chain of keys that
hash alike), the stack of free slots and, with `bitmap`, one byte per
block (uWSGI packs bits; this map is never stored).

One cross-process lock guards a cache.  Its holder's pid is kept, so
that the master frees the lock of a worker that dies holding it.  The
master sweeps expired items every cache-expire-freq seconds in its tick,
as uWSGI's sweeper thread does: an expired item is served until then.
The uwsgi module's functions over the caches are in cacheapi.py.
"""

import mmap
import os
import stat
import struct
import time

import _multiprocessing

from ugu import log
from ugu.options.errors import ConfigError
from ugu.options.expand import atoi
from ugu.vassal.transform import Gzip

# An item's header: flags, keysize, hash, valsize, first_block, expires,
# hits, prev, next, lru_prev, lru_next (uWSGI's struct uwsgi_cache_item).
ITEM = struct.Struct("=11Q")
(FLAGS, KEYSIZE, HASH, VALSIZE, FIRST_BLOCK, EXPIRES, HITS, PREV, NEXT,
 LRU_PREV, LRU_NEXT) = range(11)
_FIELD = struct.Struct("=Q")
NUMBER = struct.Struct("=q")
# The shared counters ahead of the hash table (the last three: the
# stats' hits, miss and full).
(HOLDER, N_ITEMS, FREE_TOP, NEXT_SCAN, LRU_HEAD, LRU_TAIL, BITMAP_POS,
 GOT, MISSED, FULL, LAST_MODIFIED) = range(11)
_COUNTERS = 11

# uWSGI's item flags (those its Python functions pass, and store).
UNGETTABLE, UPDATE, MATH, INC, DEC, MUL, DIV, FIXEXPIRE = (
    1, 1 << 1, 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8, 1 << 9)
MASK64 = (1 << 64) - 1
_SEMAPHORE = 1
DEFAULT_BLOCKSIZE = 65536
DEFAULT_KEYSIZE = 2048
DEFAULT_HASHSIZE = 65536
DEFAULT_EXPIRE_FREQ = 3

# cache2's keys, as uWSGI 2.0 spells them -> ugu's name of the setting.
_KEYS = {
    "name": "name", "items": "items", "max_items": "items",
    "maxitems": "items", "blocksize": "blocksize", "blocks": "blocks",
    "hash": "hash", "hashsize": "hashsize", "hash_size": "hashsize",
    "keysize": "keysize", "key_size": "keysize", "store": "store",
    "store_sync": "store_sync", "storesync": "store_sync",
    "store_delete": "store_delete", "storedelete": "store_delete",
    "bitmap": "bitmap", "math_initial": "math_initial",
    "ignore_full": "ignore_full", "purge_lru": "purge_lru",
    "lru": "purge_lru", "lazy_expire": "lazy_expire", "lazy": "lazy_expire",
    "sweep_on_full": "sweep_on_full", "clear_on_full": "clear_on_full",
    "no_expire": "no_expire", "lastmod": "lastmod",
}
# The keys uWSGI 2.0 knows that ugu refuses, and why.
_REFUSED = {
    **dict.fromkeys(("node", "nodes", "sync", "udp", "udp_servers",
                     "udp_server", "udpservers", "udpserver"),
                    "ugu's caches are local: it has no cache UDP servers "
                    "or nodes to sync with; remove the key"),
}


def djb33x(key):
    """uWSGI's default key hash (Bernstein's), over C's signed chars."""
    found = 5381
    for byte in key:
        found = ((found * 33) ^ (byte | 0xFFFFFF00 if byte > 127 else byte)) \
            & 0xFFFFFFFF
    return found


class Cache:
    """One cache, in memory every process of the instance shares."""

    def __init__(self, name, items, blocksize=DEFAULT_BLOCKSIZE, blocks=None,
                 keysize=DEFAULT_KEYSIZE, hashsize=DEFAULT_HASHSIZE,
                 bitmap=False, store=None, store_sync=0, store_delete=False,
                 math_initial=0, ignore_full=False, purge_lru=False,
                 lazy_expire=False, sweep_on_full=0, clear_on_full=False,
                 no_expire=False, lastmod=False):
        self.name = name
        self.max_items = items
        self.blocksize = blocksize
        self.blocks = blocks or items
        self.keysize = keysize
        self.hashsize = hashsize
        self.bitmap = bitmap
        self.max_item_size = blocksize * self.blocks if bitmap else blocksize
        self.store, self.store_sync = store, store_sync
        self.math_initial = math_initial
        self.ignore_full, self.purge_lru = ignore_full, purge_lru
        self.lazy_expire, self.no_expire = lazy_expire, no_expire
        self.sweep_on_full, self.clear_on_full = sweep_on_full, clear_on_full
        # Whether a change sets the stats' last_modified_at.
        self.lastmod = lastmod
        self.stride = ITEM.size + keysize
        self.data = self.stride * items
        self.filesize = self.data + blocksize * self.blocks
        self.items = self._map_items(store_delete)
        self._map_shared()
        self.lock = _multiprocessing.SemLock(
            _SEMAPHORE, 1, 1, f"/ugu-cache-{os.getpid()}-{id(self)}", True)
        self._restore()
        log.log(f'*** Cache "{name}" initialized: '
                f"{self.filesize // (1024 * 1024)}MB (key: {self.stride} "
                f"bytes, keys: {self.data} bytes, data: "
                f"{blocksize * self.blocks} bytes, bitmap: "
                f"{self._bitmap_bytes()} bytes) preallocated ***")

    @property
    def sweeps(self):
        """Whether the master's sweeper looks at this cache."""
        return not (self.no_expire or self.purge_lru or self.lazy_expire)

    def _bitmap_bytes(self):
        """The size uWSGI's bit map of the blocks takes, as it says it."""
        return (self.blocks + 7) // 8 if self.bitmap else 0

    def _map_items(self, store_delete):
        if not self.store:
            return mmap.mmap(-1, self.filesize)
        found = _stat(self.store)
        if store_delete and found and not self._fits(found):
            log.log(f"Removing invalid cache store file: {self.store}")
            os.unlink(self.store)
            found = None
        if found is None:
            log.log(f"creating a new cache store file: {self.store}")
        elif not self._fits(found):
            raise ConfigError(
                "invalid cache store file. Please remove it or fix cache "
                f"blocksize/items to match its size ({self.store} has "
                f"{found.st_size} bytes, this cache takes {self.filesize})",
                option="cache2")
        else:
            log.log(f"recovered cache from backing store file: {self.store}")
        fd = os.open(self.store, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            os.ftruncate(fd, self.filesize)
            return mmap.mmap(fd, self.filesize)
        finally:
            os.close(fd)

    def _fits(self, found):
        return stat.S_ISREG(found.st_mode) and \
            found.st_size == self.filesize

    def _map_shared(self):
        sizes = (_COUNTERS * 8, self.hashsize * 8, self.max_items * 8,
                 self.blocks if self.bitmap else 0)
        self.shared = mmap.mmap(-1, sum(sizes))
        view, start = memoryview(self.shared), 0
        parts = []
        for size in sizes:
            parts.append(view[start:start + size])
            start += size
        self.counters = parts[0].cast("Q")
        self.table = parts[1].cast("Q")
        self.free = parts[2].cast("Q")
        self.block_map = parts[3]

    def _restore(self):
        """The table, free slots and block map from the slots (a new
        cache's are all empty), as uWSGI's uwsgi_cache_fix; said only
        for a store."""
        restored = 0
        for slot in range(1, self.max_items):
            head = self._head(slot)
            if not head[KEYSIZE]:
                self._push_free(slot)
                continue
            restored += 1
            if not head[PREV]:
                self.table[head[HASH] % self.hashsize] = slot
            if head[EXPIRES]:
                self._plan_scan(head[EXPIRES])
            if not self.counters[LRU_HEAD] and not head[LRU_PREV]:
                self.counters[LRU_HEAD] = slot
            if not self.counters[LRU_TAIL] and not head[LRU_NEXT]:
                self.counters[LRU_TAIL] = slot
            if self.bitmap:
                self._mark(head[FIRST_BLOCK], head[VALSIZE], 1)
        self.counters[N_ITEMS] = restored
        if self.store:
            log.log(f"[uwsgi-cache] restored {restored} items")

    # -- the slots --------------------------------------------------------
    def _head(self, slot):
        return list(ITEM.unpack_from(self.items, slot * self.stride))

    def _put(self, slot, head):
        ITEM.pack_into(self.items, slot * self.stride, *head)

    def _set_field(self, slot, field, value):
        _FIELD.pack_into(self.items, slot * self.stride + field * 8, value)

    def _key_of(self, slot, size):
        start = slot * self.stride + ITEM.size
        return self.items[start:start + size]

    def _block(self, head):
        return self.data + head[FIRST_BLOCK] * self.blocksize

    def _push_free(self, slot):
        self.counters[FREE_TOP] += 1
        self.free[self.counters[FREE_TOP]] = slot

    def _plan_scan(self, expires):
        if not self.counters[NEXT_SCAN] or self.counters[NEXT_SCAN] > expires:
            self.counters[NEXT_SCAN] = expires

    # -- the lock -----------------------------------------------------------
    def __enter__(self):
        self.lock.acquire()
        self.counters[HOLDER] = os.getpid()
        return self

    def __exit__(self, *exc):
        self.counters[HOLDER] = 0
        self.lock.release()

    def holder_died(self, pid):
        """In the master: the lock a dead process held is free again."""
        if self.counters[HOLDER] == pid:
            self.__exit__()

    # -- the operations (each under the lock) --------------------------------
    def find(self, key):
        """The slot of `key`, or 0 (a lazy cache drops it if expired)."""
        wanted = djb33x(key)
        slot = self.table[wanted % self.hashsize]
        while slot:
            head = self._head(slot)
            if head[HASH] == wanted and head[KEYSIZE] == len(key) and \
                    self._key_of(slot, len(key)) == key:
                if self.lazy_expire and head[EXPIRES] and \
                        head[EXPIRES] <= int(time.time()):
                    self.delete(slot)
                    return 0
                return slot
            slot = head[NEXT]
        return 0

    def get(self, key):
        found = self.get_item(key)
        return found[0] if found is not None else None

    def get_item(self, key):
        """(value, expires) of the item at `key` (expires: when, in Unix
        time; 0 for never), or None."""
        slot = self.find(key)
        if not slot:
            self.counters[MISSED] += 1
            return None
        head = self._head(slot)
        if head[FLAGS] & UNGETTABLE:
            return None
        self.counters[GOT] += 1
        self._set_field(slot, HITS, head[HITS] + 1)
        if self.purge_lru:
            self._lru_unlink(slot, head)
            self._lru_append(slot)
        start = self._block(head)
        return bytes(self.items[start:start + head[VALSIZE]]), head[EXPIRES]

    def delete(self, slot):
        """Empty `slot` (one already empty too: uWSGI's clear walks them
        all)."""
        head = self._head(slot)
        if head[KEYSIZE]:
            if self.bitmap:
                self._mark(head[FIRST_BLOCK], head[VALSIZE], 0)
            self._push_free(slot)
            if head[PREV]:
                self._set_field(head[PREV], NEXT, head[NEXT])
            else:
                self.table[head[HASH] % self.hashsize] = head[NEXT]
            if head[NEXT]:
                self._set_field(head[NEXT], PREV, head[PREV])
            if self.purge_lru:
                self._lru_unlink(slot, head)
            self.counters[N_ITEMS] -= 1
            if self.lastmod:
                self.counters[LAST_MODIFIED] = int(time.time())
        head[KEYSIZE] = head[VALSIZE] = head[HASH] = head[PREV] = 0
        head[NEXT] = head[EXPIRES] = 0
        self._put(slot, head)

    def set(self, key, value, expires, flags):
        """Store `value` (8 bytes of a number under MATH) at `key`; with
        UPDATE, over the key's value.  False when it does not fit, when
        the key is there without UPDATE, when the cache is full."""
        if not key or not value or len(key) > self.keysize or \
                len(value) > self.max_item_size:
            return False
        slot = self.find(key)
        if not slot:
            stored = self._add(key, value, expires, flags)
        elif flags & UPDATE:
            stored = self._update(slot, value, expires, flags)
        else:
            return False
        if stored and self.lastmod:
            self.counters[LAST_MODIFIED] = int(time.time())
        return stored

    def _add(self, key, value, expires, flags):
        if not self.counters[FREE_TOP]:
            self._full()
            if not self.counters[FREE_TOP]:
                return False
        slot = self.free[self.counters[FREE_TOP]]
        self.counters[FREE_TOP] -= 1
        head = self._head(slot)
        head[FIRST_BLOCK] = slot
        if self.bitmap:
            first = self._take_blocks(len(value))
            if first is None:
                self.counters[FREE_TOP] += 1
                self._full()
                return False
            head[FIRST_BLOCK] = first
        if not self.purge_lru and expires:
            expires = (expires + int(time.time())) & MASK64
            self._plan_scan(expires)
        hashed = djb33x(key)
        head[EXPIRES], head[HASH], head[HITS], head[FLAGS] = (
            expires, hashed, 0, flags)
        head[VALSIZE], head[KEYSIZE], head[PREV], head[NEXT] = (
            len(value), len(key), 0, 0)
        start = slot * self.stride + ITEM.size
        self.items[start:start + len(key)] = key
        self._write(head, value, flags, fresh=True)
        last = self.table[hashed % self.hashsize]
        if not last:
            self.table[hashed % self.hashsize] = slot
        else:
            while (following := self._head(last)[NEXT]):
                last = following
            self._set_field(last, NEXT, slot)
            head[PREV] = last
        self._put(slot, head)
        if self.purge_lru:
            self._lru_append(slot)
        self.counters[N_ITEMS] += 1
        return True

    def _update(self, slot, value, expires, flags):
        head = self._head(slot)
        if not flags & FIXEXPIRE:
            if self.purge_lru:
                self._lru_unlink(slot, head)
                self._lru_append(slot)
                head = self._head(slot)
            elif expires:
                expires = (expires + int(time.time())) & MASK64
                self._plan_scan(expires)
            head[EXPIRES] = expires
        if self.bitmap:
            old = head[FIRST_BLOCK]
            first = self._take_blocks(len(value))
            if first is None:
                self._full()
                return False
            head[FIRST_BLOCK] = first
            self._mark(old, head[VALSIZE], 0)
        self._write(head, value, flags, fresh=False)
        head[VALSIZE] = len(value)
        self._put(slot, head)
        return True

    def _write(self, head, value, flags, fresh):
        """The value into the item's blocks; under MATH, the operation
        on the number there (math_initial for a new item)."""
        start = self._block(head)
        if not flags & MATH:
            self.items[start:start + len(value)] = value
            return
        number = self.math_initial if fresh else \
            NUMBER.unpack_from(self.items, start)[0]
        NUMBER.pack_into(self.items, start, _operate(
            number, NUMBER.unpack(value)[0], flags))

    def _full(self):
        """No slot or block left: uWSGI's warning, then what the cache's
        options say to free."""
        if not self.ignore_full:
            log.log(f'LRU item will be purged from cache "{self.name}"'
                    if self.purge_lru else
                    f'*** DANGER cache "{self.name}" is FULL !!! ***')
        self.counters[FULL] += 1
        if self.purge_lru and self.counters[LRU_HEAD]:
            self.delete(self.counters[LRU_HEAD])
        clear = self.clear_on_full
        if self.sweep_on_full:
            now = int(time.time())
            if self.counters[NEXT_SCAN] <= now:
                self.counters[NEXT_SCAN] = now + self.sweep_on_full
                if self._drop_expired(now):
                    clear = False
        if clear:
            for slot in range(1, self.max_items):
                self.delete(slot)

    def _drop_expired(self, now):
        dropped = 0
        for slot in range(1, self.max_items):
            expires = self._head(slot)[EXPIRES]
            if expires and expires <= now:
                self.delete(slot)
                dropped += 1
        return dropped

    def keys(self):
        found = []
        for slot in filter(None, self.table.tolist()):
            while slot:
                head = self._head(slot)
                found.append(bytes(self._key_of(slot, head[KEYSIZE])))
                slot = head[NEXT]
        return found

    def clear(self):
        for slot in range(1, self.max_items):
            self.delete(slot)

    # -- least recently used ----------------------------------------------
    def _lru_unlink(self, slot, head):
        if head[LRU_NEXT]:
            self._set_field(head[LRU_NEXT], LRU_PREV, head[LRU_PREV])
        else:
            self.counters[LRU_TAIL] = head[LRU_PREV]
        if head[LRU_PREV]:
            self._set_field(head[LRU_PREV], LRU_NEXT, head[LRU_NEXT])
        else:
            self.counters[LRU_HEAD] = head[LRU_NEXT]

    def _lru_append(self, slot):
        tail = self.counters[LRU_TAIL]
        if tail:
            self._set_field(tail, LRU_NEXT, slot)
        else:
            self.counters[LRU_HEAD] = slot
        self._set_field(slot, LRU_NEXT, 0)
        self._set_field(slot, LRU_PREV, tail)
        self.counters[LRU_TAIL] = slot

    # -- blocks of a bitmap cache -----------------------------------------
    def _take_blocks(self, size):
        """The first of enough free consecutive blocks for `size`
        bytes, looked for from after the last ones taken, then from the
        start; marked taken."""
        count = -(-size // self.blocksize)
        wanted = b"\0" * count
        blocks = self.block_map.tobytes()
        start = self.counters[BITMAP_POS]
        first = blocks.find(wanted, start)
        if first < 0:
            first = blocks.find(wanted, 0, start + count - 1)
        if first < 0:
            return None
        self._mark(first, size, 1)
        end = first + count
        self.counters[BITMAP_POS] = 0 if end >= self.blocks else end
        return first

    def _mark(self, first, size, used):
        count = -(-size // self.blocksize)
        self.block_map[first:first + count] = bytes([used]) * count

    # -- the master's chores ----------------------------------------------
    def sweep(self, now):
        """Drop the expired items, once one may be (uWSGI's sweeper);
        how many went."""
        with self:
            due = self.counters[NEXT_SCAN]
        if not due or due > now:
            return 0
        dropped = 0
        for slot in range(1, self.max_items):
            with self:
                if slot == 1:
                    self.counters[NEXT_SCAN] = 0
                expires = self._head(slot)[EXPIRES]
                if expires and expires <= now:
                    self.delete(slot)
                    dropped += 1
                elif expires:
                    self._plan_scan(expires)
        return dropped

    def stats(self):
        """The cache in the stats server's document, as uWSGI's."""
        return {
            "name": self.name, "hash": "djb33x", "hashsize": self.hashsize,
            "keysize": self.keysize, "max_items": self.max_items,
            "blocks": self.blocks, "blocksize": self.blocksize,
            "items": self.counters[N_ITEMS], "hits": self.counters[GOT],
            "miss": self.counters[MISSED], "full": self.counters[FULL],
            "last_modified_at": self.counters[LAST_MODIFIED]}

    def flush(self):
        if self.store:
            self.items.flush()


def _operate(number, delta, flags):
    """uWSGI's 64-bit arithmetic: wraps, divides toward zero, and a
    division by zero gives 0."""
    if flags & INC:
        number += delta
    elif flags & DEC:
        number -= delta
    elif flags & MUL:
        number *= delta
    elif flags & DIV:
        number = 0 if delta == 0 else \
            (abs(number) // abs(delta)) * (-1 if (number < 0) != (delta < 0)
                                           else 1)
    return (number + (1 << 63)) % (1 << 64) - (1 << 63)


def _stat(path):
    try:
        return os.stat(path)
    except FileNotFoundError:
        return None


# -- the instance's caches ---------------------------------------------------
class Caches:
    """The caches of an instance, in uWSGI's order (the legacy `cache`
    first), and the master's chores on them."""

    def __init__(self, caches, config):
        self.all = caches
        self.sweeping = [] if config["cache-no-expire"] else \
            [c for c in caches if c.sweeps]
        self.every = config["cache-expire-freq"] or DEFAULT_EXPIRE_FREQ
        self.report = config["cache-report-freed-items"]
        self.next_sweep = 0.0
        self.cycles = 0

    def by_name(self, name):
        """The cache named `name` (None or "": the first), or None."""
        if not name:
            return self.all[0]
        return next((c for c in self.all if c.name == name), None)

    def announce(self):
        """Said once the master has spawned its children, as uWSGI starts
        its sweeper there."""
        if self.sweeping:
            log.log("cache sweeper thread enabled")

    def tick(self):
        """Each second of the master: the sweep when due, and the stores
        synced every store_sync seconds (uWSGI's master cycles)."""
        self.cycles += 1
        if self.sweeping and time.monotonic() >= self.next_sweep:
            self.next_sweep = time.monotonic() + self.every
            now = int(time.time())
            for cache in self.sweeping:
                dropped = cache.sweep(now)
                if dropped and self.report:
                    log.log(f'freed {dropped} items for cache '
                            f'"{cache.name}"')
        for cache in self.all:
            if cache.store_sync and self.cycles % cache.store_sync == 0:
                cache.flush()

    def died(self, pid):
        for cache in self.all:
            cache.holder_died(pid)

    def close(self):
        for cache in self.all:
            cache.flush()


_caches = None


def by_name(name):
    """The instance's cache named `name` (None or "": its first), or
    None."""
    return _caches.by_name(name) if _caches else None


def create_all(config):
    """Make the instance's caches (in the master, before any fork) and
    fill them from add-cache-item and load-file-in-cache; None without
    any."""
    global _caches
    made = []
    if config["cache"]:
        made.append(_filled(config, _legacy(config)))
    # Read first, so that a line's error names its own line; made in turn.
    made += [_filled(config, Cache(name, items, **settings))
             for name, items, settings in config.parsed(
                 ("cache2",), lambda _, value: _cache2(
                     value, config["cache-store-sync"]))]
    if not made:
        return None
    _caches = Caches(made, config)
    return _caches


def _legacy(config):
    """The cache "default" of the options before cache2."""
    try:
        return Cache("default", config["cache"],
                     blocksize=config["cache-blocksize"] or DEFAULT_BLOCKSIZE,
                     store=config["cache-store"] or None,
                     store_sync=config["cache-store-sync"],
                     lastmod=config["cache-use-last-modified"])
    except ConfigError as e:
        e.option = "cache-store"
        raise


def _filled(config, cache):
    """`cache` with its items from load-file-in-cache and add-cache-item,
    in uWSGI's order, said after its own start-up lines."""
    config.parsed(("load-file-in-cache",),
                  lambda _, value: _load_file(cache, value))
    config.parsed(("load-file-in-cache-gzip",),
                  lambda _, value: _load_file(cache, value, gzipped=True))
    config.parsed(("add-cache-item",),
                  lambda _, value: _add_item(cache, value))
    return cache


def _cache2(value, store_sync):
    """(name, items, the other settings) of cache2's KEY=VALUE,... as
    uWSGI 2.0 reads them."""
    given = {}
    for pair in value.split(","):
        key, equal, text = pair.partition("=")
        if key in _REFUSED:
            raise ConfigError(f"cache2 key '{key}': {_REFUSED[key]}",
                              option="cache2")
        if key not in _KEYS or not equal:
            raise ConfigError(f"'{pair}' is not a cache2 KEY=VALUE uWSGI "
                              f"knows (name, items, blocksize, keysize, "
                              f"store, ...)", option="cache2")
        given[_KEYS[key]] = text
    name = given.pop("name", "")
    if not name:
        raise ConfigError("you have to specify a cache name",
                          option="cache2")
    items = atoi(given.pop("items", "0"))
    if items <= 0:
        raise ConfigError("you have to specify the maximum number of cache "
                          "items", option="cache2")
    settings = {"store_sync": store_sync}
    for key, text in given.items():
        if key == "hash":
            _check_hash(name, text)
        else:
            settings[key] = _setting(name, key, text)
    if settings.get("blocks", items) < items:
        raise ConfigError(f'invalid number of cache blocks for "{name}", '
                          f"must be higher than max_items ({items})",
                          option="cache2")
    return name, items, settings


def _check_hash(name, text):
    if text != "djb33x":
        raise ConfigError(f'invalid cache hash for "{name}": ugu has '
                          f"uWSGI's default hash (djb33x) only; remove "
                          f"the key", option="cache2")


def _setting(name, key, text):
    if key == "store":
        return text
    if key in ("bitmap", "store_delete", "ignore_full", "purge_lru",
               "lazy_expire", "clear_on_full", "no_expire", "lastmod"):
        # uWSGI turns these on whatever their value.
        return True
    number = atoi(text)
    if key == "math_initial":
        return number
    if number <= 0 and key in ("blocksize", "blocks", "hashsize",
                               "keysize"):
        raise ConfigError(f'invalid cache {key} for "{name}"',
                          option="cache2")
    if key == "keysize" and number >= 65535:
        raise ConfigError(f'invalid cache keysize for "{name}"',
                          option="cache2")
    return number


def _target(cache, value):
    """The rest of `value` if it is for `cache`: a value starting with
    "NAME " is for cache NAME only, any other for every cache."""
    name, space, rest = value.partition(" ")
    if not space:
        return value
    return rest if name == cache.name else None


def _add_item(cache, value):
    item = _target(cache, value)
    if item is None:
        return
    key, equal, text = item.partition("=")
    if not equal:
        log.log(f"[cache] unable to store item {value}")
        return
    _store_at_start(cache, key.encode(), text.encode())


def _load_file(cache, value, gzipped=False):
    path = _target(cache, value)
    if path is None:
        return
    option = "load-file-in-cache-gzip" if gzipped else "load-file-in-cache"
    try:
        with open(path, "rb") as f:
            content = f.read()
    except OSError as e:
        # uWSGI's start ends there too, saying what open() said.
        raise ConfigError(f'open("{path}"): {e.strerror}',
                          option=option) from None
    if not gzipped:
        _store_at_start(cache, path.encode(), content)
        return
    layer = Gzip()
    with cache:
        stored = cache.set(path.encode(), layer.chunk(content)
                           + layer.final(), 0, 0)
    if stored:
        # uWSGI says nothing of a gzipped file it could not store.
        log.log(f'[cache-gzip] stored "{path}" in "{cache.name}"')


def _store_at_start(cache, key, value):
    with cache:
        stored = cache.set(key, value, 0, 0)
    shown = key.decode()
    if stored:
        log.log(f'[cache] stored "{shown}" in "{cache.name}"')
    else:
        log.log(f'[cache-error] unable to store "{shown}" in '
                f'"{cache.name}"')

