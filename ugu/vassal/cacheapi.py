"""The `uwsgi` module's cache functions (uWSGI's cache_get, cache_set...)
over the instance's caches (see cache.py).

Each takes its arguments as uWSGI's C function parses them: keys and
values as str (their UTF-8) or read-only bytes ("s#"), a cache's name as
a str ("s"), numbers as ints ("l"), by position only; and answers as it
does: True or None, bytes or None.  A cache name that is not there
finds nothing, as in uWSGI; one with "@" is uWSGI's remote cache, which
ugu lacks, and raises.
"""

from ugu.vassal import cache, pyargs


def _arguments(function, args, kwargs, form, defaults=None):
    """The arguments as pyargs.parse() reads them (an optional one left
    out is None unless `defaults` says), a cache name ("s") local only."""
    optional = form.partition("|")[2]
    values = pyargs.parse(function, args, kwargs, form,
                          defaults or (None,) * len(optional))
    for code, value in zip(form.replace("|", ""), values):
        if code == "s" and value is not None and "@" in value:
            raise ValueError(f"{function}(): {value!r} names a remote "
                             f"cache (NAME@SERVER), and ugu's caches are "
                             f"local: name a cache of this instance's "
                             f"cache2 lines")
    return values


def cache_get(*args, **kwargs):
    key, name = _arguments("cache_get", args, kwargs, "y|s")
    found = cache.by_name(name)
    if found is None:
        return None
    with found:
        return found.get(key)


def cache_num(*args, **kwargs):
    """The number an 8-byte value holds (cache_inc's); 0 for any other."""
    key, name = _arguments("cache_num", args, kwargs, "y|s")
    found = cache.by_name(name)
    if found is None:
        return 0
    with found:
        value = found.get(key)
    if value is None or len(value) != 8:
        return 0
    return cache.NUMBER.unpack(value)[0]


def cache_exists(*args, **kwargs):
    key, name = _arguments("cache_exists", args, kwargs, "y|s")
    found = cache.by_name(name)
    if found is None:
        return None
    with found:
        return True if found.find(key) else None


def cache_del(*args, **kwargs):
    key, name = _arguments("cache_del", args, kwargs, "y|s")
    found = cache.by_name(name)
    if found is None:
        return None
    with found:
        slot = found.find(key)
        if slot:
            found.delete(slot)
    return True if slot else None


def cache_clear(*args, **kwargs):
    (name,) = _arguments("cache_clear", args, kwargs, "|s")
    found = cache.by_name(name)
    if found is None:
        return None
    with found:
        found.clear()
    return True


def cache_keys(*args, **kwargs):
    (name,) = _arguments("cache_keys", args, kwargs, "|s")
    found = cache.by_name(name)
    if found is None:
        raise ValueError("no local uWSGI cache available")
    with found:
        return found.keys()


def _setter(function, flags):
    def store(*args, **kwargs):
        key, value, expires, name = _arguments(
            function, args, kwargs, "yy|ls", (0, None))
        return _store(name, key, value, expires, flags)
    store.__name__ = store.__qualname__ = function
    return store


def _arithmetic(function, flag, default):
    """cache_inc and its kin: the number at the key (math_initial for a
    new one) changed by `value`, its expiry kept."""
    def change(*args, **kwargs):
        key, value, expires, name = _arguments(
            function, args, kwargs, "y|lls", (default, 0, None))
        return _store(name, key, cache.NUMBER.pack(value), expires,
                      cache.UPDATE | cache.MATH | cache.FIXEXPIRE | flag)
    change.__name__ = change.__qualname__ = function
    return change


def _store(name, key, value, expires, flags):
    found = cache.by_name(name)
    if found is None:
        return None
    with found:
        stored = found.set(key, value, expires & cache.MASK64, flags)
    return True if stored else None


cache_set = _setter("cache_set", 0)
cache_update = _setter("cache_update", cache.UPDATE)
FUNCTIONS = {f.__name__: f for f in (
    cache_get, cache_set, cache_update, cache_del, cache_exists, cache_clear,
    cache_num, cache_keys, _arithmetic("cache_inc", cache.INC, 1),
    _arithmetic("cache_dec", cache.DEC, 1),
    _arithmetic("cache_mul", cache.MUL, 2),
    _arithmetic("cache_div", cache.DIV, 2))}
