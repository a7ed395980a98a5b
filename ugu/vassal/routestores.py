"""The instance's caches, metrics, RPC functions and mime types, as the
route actions reach them (ugu.routing.backends), and the `cachestore`
rules' stores of a response's body once it is sent.

Each process of the instance finds the caches, metrics and RPC table
that are its own (made by the master before it forks, or by itself),
so installing the functions once, in the master, serves every worker.
"""

from ugu.routing import backends
from ugu.vassal import cache, metrics, rpc
from ugu.vassal.transform import Gzip

_MODES = {
    "set": 0,
    "update": cache.UPDATE,
    **{name: cache.UPDATE | cache.MATH | cache.FIXEXPIRE | flag
       for name, flag in (("inc", cache.INC), ("dec", cache.DEC),
                          ("mul", cache.MUL), ("div", cache.DIV))},
}
_METRIC_OPERATIONS = {name: f"metric_{name}"
                      for name in ("inc", "dec", "mul", "div", "set")}


def install(config, mime_types):
    """Hand the vassal's functions to the route actions; `mime_types`
    is the static files' {".ext": type}, None where none were read."""
    timeout = config["socket-timeout"] or None

    def rpc_call(node, name, args):
        if node is None:
            table = rpc.table()
            return table.call(name, args) if table is not None else None
        return rpc.call_node(node, name, args, timeout)

    def mime_type(key):
        if mime_types is None:
            return None
        name = key.decode("latin-1")
        dot = name.rfind(".")
        return mime_types.get(name[dot:]) if dot >= 0 else None

    backends.install(cache_get=cache_get, cache_exists=cache_exists,
                     cache_store=cache_store, metric_get=metric_get,
                     metric_update=metric_update, rpc_call=rpc_call,
                     mime_type=mime_type)


def cache_get(name, key):
    found = cache.by_name(name)
    if found is None:
        return None
    with found:
        return found.get_item(key)


def cache_exists(name, key):
    found = cache.by_name(name)
    if found is None:
        return False
    with found:
        return bool(found.find(key))


def cache_store(name, key, value, expires, mode):
    found = cache.by_name(name)
    if found is None:
        return False
    with found:
        return found.set(key, value, expires & cache.MASK64, _MODES[mode])


def metric_get(name):
    found = metrics.instance()
    return found.get(name) if found is not None else 0


def metric_update(name, operation, number):
    found = metrics.instance()
    if found is None or (operation == "div" and number == 0):
        return False
    return found.update(name, metrics.OPERATIONS[
        _METRIC_OPERATIONS[operation]], number)


# -- cachestore ----------------------------------------------------------------
def capture(ex, stores):
    """Keep the body the app writes, and store it as `stores` say once
    the response is over: the exchange's write() and finish() are
    replaced for this request alone, so that others pay nothing."""
    body = []
    write, finish = ex.write, ex.finish

    def keeping_write(data):
        write(data)
        if data:
            body.append(bytes(data))

    def storing_finish():
        finish()
        if ex.write_errors or ex.write_failed or ex.body_dropped:
            return
        whole = b"".join(body)
        for store in stores:
            if store.wanted(ex.status):
                _store(store, whole)

    ex.write, ex.finish = keeping_write, storing_finish


def _store(store, body):
    """One cachestore's items: uWSGI stores only a body with bytes in
    it (or the value given instead), over what the keys held."""
    value = store.value if store.value is not None else body
    if not value:
        return
    cache_store(store.name, store.key, value, store.expires, "update")
    if store.gzip_key is not None:
        layer = Gzip()
        cache_store(store.name, store.gzip_key,
                    layer.chunk(value) + layer.final(), store.expires,
                    "update")
