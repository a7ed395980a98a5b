"""uWSGI's sharedarea: raw memory every process of the instance shares
(`sharedarea = PAGES`, or `sharedarea = pages=N` / `size=BYTES` /
`file=PATH,size=BYTES[,offset=BYTES]`), mapped by the master before it
forks, and the `uwsgi` module's functions over it (sharedarea_read,
sharedarea_write, sharedarea_inc64...), which exist only when one is
configured, as in uWSGI.

Area N is the Nth sharedarea line.  Each has a readers-writer lock
(rwlocks.py): reads take it to read, writes and increments to write,
and the app can hold it (sharedarea_rlock, _wlock, _unlock) around its
own reads and writes, or around the writable sharedarea_memoryview,
which takes no lock.  Numbers are stored in the machine's byte order,
read back signed, and wrap around as uWSGI's C types do.

Where uWSGI reads or writes outside the area (a negative area id; an
8-byte increment that checks only 4 bytes of room) ugu refuses with the
ValueError of any other bad offset.
"""

import ctypes
import mmap
import os
import struct

from ugu import log
from ugu.options.errors import ConfigError
from ugu.options.expand import atoi
from ugu.vassal import pyargs, rwlocks

PAGE = mmap.PAGESIZE
# sharedarea_readN's C types: signed, in the machine's byte order.
_SIGNED = {1: struct.Struct("=b"), 2: struct.Struct("=h"),
           4: struct.Struct("=i"), 8: struct.Struct("=q")}
_REFUSED_KEYS = {
    "fd": "ugu maps no inherited descriptor: use file=PATH,size=BYTES",
    "ptr": "uWSGI 2.0 ignores it (a plain area is made); remove the key",
}


class Area:
    """One sharedarea: `size` bytes at `view`, its id `number`."""

    def __init__(self, number, pages=0, path=None, size=0, offset=0):
        self.number = number
        if path is None:
            # uWSGI's layout: a page for its struct, then the area.
            self.map = mmap.mmap(-1, PAGE * (pages + 1))
            self.view = memoryview(self.map)[PAGE:]
            self.pages = pages
        else:
            self.map = _map_file(path, size, offset)
            self.view = memoryview(self.map)
            self.pages = -(-size // PAGE)
        self.size = len(self.view)
        base = _address(self.map)
        area = base + PAGE if path is None else base
        log.log(f"sharedarea {number} created at {hex(base)} "
                f"({self.pages} pages, area at {hex(area)})")

    def room(self, pos, length):
        """Whether `length` bytes from `pos` lie in the area."""
        return 0 <= pos < self.size and 0 <= length <= self.size - pos


class ObjectArea(Area):
    """py-sharedarea: a bytearray of `size` bytes, made in the master
    before it forks, as uWSGI's Python plugin makes it: each process
    then has its own copy (uWSGI leaves it uninitialised; here it is
    zeroed), which sharedarea_object returns, and only the lock is
    shared."""

    def __init__(self, number, size):
        self.number = number
        self.obj = bytearray(size)
        self.map = None
        self.view = memoryview(self.obj)
        self.size = size
        self.pages = -(-size // PAGE)
        log.log(f"sharedarea {number} created at {hex(id(self))} "
                f"({self.pages} pages, area at {hex(_address(self.obj))})")


def _address(found):
    return ctypes.addressof(ctypes.c_char.from_buffer(found))


def _map_file(path, size, offset):
    try:
        fd = os.open(path, os.O_RDWR | os.O_SYNC)
    except OSError as e:
        raise ConfigError(f'open("{path}"): {e.strerror}',
                          option="sharedarea") from None
    try:
        return mmap.mmap(fd, size, offset=offset)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot map {size} bytes of {path} from offset "
                          f"{offset}: {e}", option="sharedarea") from None
    finally:
        os.close(fd)


class Areas:
    """The instance's sharedareas and their locks."""

    def __init__(self, areas):
        self.all = areas
        self.locks = rwlocks.Locks("sharedarea", len(areas))

    def get(self, number, function):
        if not 0 <= number < len(self.all):
            raise ValueError(f"error calling uwsgi_{function}()")
        return self.all[number]


_areas = None


def create_all(config):
    """Map the sharedarea lines' areas (in the master, before any fork);
    None without any."""
    global _areas
    lines = config.parsed(("sharedarea",), lambda _, value: _settings(value))
    # The Python plugin's, after the core's, as uWSGI numbers them.
    sizes = config.parsed(("py-sharedarea",), lambda _, value: _size(value))
    if not lines and not sizes:
        _areas = None
        return None
    made = [Area(number, **settings) for number, settings in enumerate(lines)]
    made += [ObjectArea(number, size)
             for number, size in enumerate(sizes, len(made))]
    _areas = Areas(made)
    return _areas


def _size(value):
    size = atoi(value)
    if size <= 0:
        raise ConfigError(f"'{value}' is not a size: give py-sharedarea = "
                          "BYTES (more than 0)", option="py-sharedarea")
    return size


def _settings(value):
    """Area()'s keywords for a sharedarea line, as uWSGI reads it: a
    number of pages, or KEY=VALUE,..."""
    if "=" not in value:
        pages = atoi(value)
        if pages <= 0:
            raise ConfigError(f"'{value}' is not a number of pages: give "
                              f"sharedarea = N (N > 0), or pages=N, "
                              f"size=BYTES", option="sharedarea")
        return {"pages": pages}
    given = {}
    for pair in value.split(","):
        key, _, text = pair.partition("=")
        if key in _REFUSED_KEYS:
            raise ConfigError(f"sharedarea key '{key}': "
                              f"{_REFUSED_KEYS[key]}", option="sharedarea")
        if key not in ("pages", "size", "file", "offset"):
            raise ConfigError(f"'{pair}' is not a sharedarea KEY=VALUE "
                              f"uWSGI knows (pages, size, file, offset)",
                              option="sharedarea")
        given[key] = text
    return _keyval(value, given)


def _number(text):
    """size= and offset=: decimal, or hexadecimal after 0x."""
    if len(text) > 2 and text.startswith("0x"):
        digits = text[2:]
        end = 0
        while end < len(digits) and digits[end] in _HEX:
            end += 1
        return int(digits[:end] or "0", 16)
    return atoi(text)


_HEX = "0123456789abcdefABCDEF"


def _keyval(value, given):
    size = _number(given["size"]) if "size" in given else 0
    pages = atoi(given["pages"]) if "pages" in given else -(-size // PAGE)
    if pages <= 0:
        raise ConfigError(f"you need to set a size for a sharedarea !!! "
                          f"[{value}]", option="sharedarea")
    if "file" not in given:
        return {"pages": pages}
    if size <= 0:
        raise ConfigError(f"a sharedarea file needs size=BYTES, the length "
                          f"to map [{value}]", option="sharedarea")
    offset = _number(given["offset"]) if "offset" in given else 0
    return {"path": given["file"], "size": size, "offset": offset}


# -- the uwsgi module's functions -------------------------------------------
def _area(function, number, pos=0, length=0):
    """The area, if `length` bytes from `pos` lie in it; uWSGI's
    ValueError otherwise."""
    found = _areas.get(number, function)
    if not found.room(pos, length):
        raise ValueError(f"error calling uwsgi_{function}()")
    return found


def sharedarea_read(*args, **kwargs):
    number, pos, length = pyargs.parse("sharedarea_read", args, kwargs,
                                       "iL|L", (0,))
    found = _areas.get(number, "sharedarea_read")
    if not length and 0 <= pos < found.size:
        length = found.size - pos
    _area("sharedarea_read", number, pos, length)
    with _areas.locks.reading(number):
        return bytes(found.view[pos:pos + length])


def sharedarea_write(*args, **kwargs):
    number, pos, data = pyargs.parse("sharedarea_write", args, kwargs, "iLy")
    found = _area("sharedarea_write", number, pos, len(data))
    with _areas.locks.writing(number):
        found.view[pos:pos + len(data)] = data


def _reader(size, name):
    def read(*args, **kwargs):
        number, pos = pyargs.parse(name, args, kwargs, "iL")
        found = _area(name, number, pos, size)
        with _areas.locks.reading(number):
            return _SIGNED[size].unpack_from(found.view, pos)[0]
    read.__name__ = read.__qualname__ = name
    return read


def _writer(size, name, code):
    def write(*args, **kwargs):
        number, pos, value = pyargs.parse(name, args, kwargs, "iL" + code)
        function = name
        if size == 2 and not 0 <= value <= 0xFFFF:
            # uWSGI parses write16's value into 4 bytes of a 2-byte
            # variable and fails on any value that needs the other two.
            raise ValueError(f"error calling uwsgi_{function}()")
        found = _area(function, number, pos, size)
        with _areas.locks.writing(number):
            _store(found, pos, size, value)
    write.__name__ = write.__qualname__ = name
    return write


def _store(found, pos, size, value):
    bits = size * 8
    value &= (1 << bits) - 1
    if value >= 1 << (bits - 1):
        value -= 1 << bits
    _SIGNED[size].pack_into(found.view, pos, value)


def _adder(size, name, sign, code):
    def add(*args, **kwargs):
        number, pos, amount = pyargs.parse(name, args, kwargs,
                                           "iL|" + code, (1,))
        found = _area(name, number, pos, size)
        with _areas.locks.writing(number):
            current = _SIGNED[size].unpack_from(found.view, pos)[0]
            _store(found, pos, size, current + sign * amount)
    add.__name__ = add.__qualname__ = name
    return add


def _lock(name, take):
    def lock(*args, **kwargs):
        (number,) = pyargs.parse(name, args, kwargs, "i")
        _areas.get(number, name)
        getattr(_areas.locks, take)(number)
    lock.__name__ = lock.__qualname__ = name
    return lock


def sharedarea_memoryview(*args, **kwargs):
    """The whole area, writable, without a lock (the app takes it)."""
    (number,) = pyargs.parse("sharedarea_memoryview", args, kwargs, "i")
    if _areas is None or not 0 <= number < len(_areas.all):
        raise ValueError(f"cannot get a memoryview object from sharedarea "
                         f"{number}")
    return _areas.all[number].view


def sharedarea_object(*args, **kwargs):
    (number,) = pyargs.parse("sharedarea_object", args, kwargs, "i")
    if not 0 <= number < len(_areas.all):
        raise ValueError(f"cannot get an object from sharedarea {number}")
    found = _areas.all[number]
    if isinstance(found, ObjectArea):
        return found.obj
    # uWSGI returns its C NULL here, which Python reports as this.
    raise SystemError(f"sharedarea {number} holds no Python object (only "
                      f"uWSGI's py-sharedarea makes one)")


def _functions():
    made = [sharedarea_read, sharedarea_write, sharedarea_memoryview,
            sharedarea_object]
    for size, code in ((1, "b"), (2, "I"), (4, "I"), (8, "L")):
        bits = size * 8
        made += [_reader(size, f"sharedarea_read{bits}"),
                 _writer(size, f"sharedarea_write{bits}", code)]
    for size, code in ((4, "i"), (8, "l")):
        bits = size * 8
        made += [_adder(size, f"sharedarea_inc{bits}", 1, code),
                 _adder(size, f"sharedarea_dec{bits}", -1, code)]
    for name, take in (("sharedarea_rlock", "rlock"),
                       ("sharedarea_wlock", "wlock"),
                       ("sharedarea_unlock", "unlock")):
        made.append(_lock(name, take))
    found = {f.__name__: f for f in made}
    # uWSGI's other names for the same functions.
    for alias, name in (("readbyte", "read8"), ("writebyte", "write8"),
                        ("readlong", "read64"), ("writelong", "write64"),
                        ("inclong", "inc64")):
        found[f"sharedarea_{alias}"] = found[f"sharedarea_{name}"]
    return found


FUNCTIONS = _functions()


def configured():
    return _areas is not None
