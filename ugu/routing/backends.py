"""What some route actions reach beyond the request: the instance's
caches, its metrics, its RPC functions and its mime types.

They live in the vassal (ugu.vassal), which routing may not import, so
the vassal hands its functions over here (`install`) before the tables
are read, and an action calls them as it runs, through this module.
Until then each answers as uWSGI's does for a cache, metric or function
that is not there: nothing found, nothing stored.

Keys, values and names are bytes; a cache or RPC node name is a str or
None (the first cache; this process's functions).
"""


def cache_get(name, key):
    """(value, expires) of the item at `key` (expires: the Unix time it
    expires at, 0 for never), or None."""
    return None


def cache_exists(name, key):
    return False


def cache_store(name, key, value, expires, mode):
    """Store `value` at `key` for `expires` seconds (0: for ever).

    `mode`: "set" (not over an item that is there), "update" (over it
    too), or "inc", "dec", "mul", "div" (`value` an 8-byte number to
    apply to the item's, whose expiry stays).  False when not stored.
    """
    return False


def metric_get(name):
    return 0


def metric_update(name, operation, number):
    """Apply `operation` ("inc", "dec", "mul", "div", "set") to a metric
    of the apps'; False when there is no such metric to change."""
    return False


def rpc_call(node, name, args):
    """The bytes function `name` answers for `args` (on `node`, or in
    this process), or None."""
    return None


def mime_type(path):
    """The mime type of a name's extension, when the instance read mime
    types (as uWSGI does only for the options that need them), or
    None."""
    return None


NAMES = ("cache_get", "cache_exists", "cache_store", "metric_get",
         "metric_update", "rpc_call", "mime_type")


def install(**functions):
    """Replace the functions above with the vassal's."""
    for name, function in functions.items():
        if name not in NAMES:
            raise TypeError(f"no routing backend {name!r}")
        globals()[name] = function
