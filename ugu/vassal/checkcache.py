"""check-cache: a GET answered from a cache, the item at its REQUEST_URI,
before the routes, the static files and the app.

The item is a whole response, head and body, written to the client as it
is, and the connection closes after it (uWSGI's way: an app or a route
stores what a later request gets).  An empty or missing item lets the
request go on.  The request's line is uWSGI's for it: no app, the status
500 uWSGI's parser leaves, the item's size as the body.
"""

from ugu.options.errors import ConfigError
from ugu.vassal import cache

# Where uWSGI's line for a write that failed says it was.
WRITE_BODY = ("uwsgi_response_write_body_do()", 429)


def named(config, caches):
    """The cache check-cache names (empty, or bare: the first), checked
    at start-up as uWSGI checks it."""
    name = config["check-cache"]
    if name == "true" and not (caches and caches.by_name(name)):
        # `--check-cache` alone, uWSGI's optional value left out.
        name = ""
    found = caches.by_name(name) if caches else None
    if found is None:
        raise ConfigError(f'unable to find cache "{name}"',
                          option="check-cache")
    return name


def admission(config):
    """The check, for request.body_admission: False once the cache
    answered the request."""
    name = config["check-cache"]
    if name == "true" and cache.by_name(name) is None:
        name = ""

    def answered(ex):
        if ex.method != "GET" or not ex.uri:
            return True
        found = cache.by_name(name)
        with found:
            value = found.get(ex.uri.encode("latin-1"))
        if not value:
            return True
        _send(ex, value)
        return False
    return answered


def _send(ex, value):
    """The item as the socket's protocol writes a body (a FastCGI or
    SCGI socket in its records); on an HTTP socket as it is, and the
    connection ends there, its response unframed by HTTP."""
    from ugu.vassal import request
    from ugu.vassal.transport import RawTransport
    transport = ex.transport
    ex.status = 500
    raw = isinstance(transport, RawTransport)
    try:
        if raw:
            transport.write(value)
        else:
            transport.conn.sendall(value)
        ex.body_size = len(value)
    except OSError as e:
        request.ClientWriteError(WRITE_BODY, e).log(ex)
    if not raw:
        transport.conn = None
    request.account(ex)
