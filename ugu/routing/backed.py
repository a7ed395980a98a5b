"""Route actions and conditions over the instance's caches, metrics and
RPC functions (uWSGI 2.0's router_cache, router_metrics and rpc plugins),
reached through `backends`, which the vassal fills.

The cache actions take uWSGI's `key=value,...` args (a `\\` escapes the
next character), whose keys and values are templates; a key uWSGI does
not read is refused here, where uWSGI ignores it.  Unless named
(`name=`), the cache is the instance's first.

- `cache:key=K` answers the request with the item at K, as uWSGI sends
  it (200, `content_type` or text/html, or the key's mime type with
  `mime=1` where the instance read mime types, `content_encoding`, an
  Expires of the item's expiry, a Content-Length unless `no_cl`), and
  ends routing; without the item, routing goes on.  `cache-continue`
  goes on after the answer too.
- `cachestore:key=K` stores the response's body at K once it is sent,
  when its status is 200 (or `status`/`code`), with `gzip=K2` a gzipped
  copy at K2, `value=V` V instead of the body, for `expires` seconds.
- `cacheset:key=K,value=V` stores V (not over an item that is there);
  `cacheinc`, `cachedec`, `cachemul`, `cachediv` change the number at K
  by `value` (1 or 2 by default), keeping its expiry; `cachevar:key=K,
  var=VAR` adds the item as a request var (`num=1`: its number, in
  digits).  A failed store or var ends routing, as `break` does.
- `metricinc:NAME[,VALUE]` and `metricdec`, `metricmul`, `metricdiv`,
  `metricset` change an apps' metric (by 1 by default).
- `rpc:FUNC ARGS...` (`call`) answers with what the function returns;
  `rpcnext` (`rpcblob`) adds it to a 200 answer and goes on with the
  rules; `rpcraw` sends it as the whole response, head included;
  `rpcret` routes by it (next, continue, break [STATUS], goto LABEL);
  `rpcvar:VAR FUNC ARGS...` adds it as a var.  `FUNC@NODE` calls it on
  another instance.  A function that is not there (or answers nothing)
  ends the request unanswered, as in uWSGI.
- The `incache:key=K[,name=N]` condition holds when K is in the cache.
"""

import re

from ugu.options.errors import ConfigError
from ugu.options.kvlist import split_escaped
from ugu.routing import backends
from ugu.routing.actions import (ALL, ERROR, REQUEST, RESPONSE, STOP, Goto,
                                 _status, action)
from ugu.routing.conditions import condition, leading_int
from ugu.routing.template import Template
from ugu.vassal.expires import http_date

# uWSGI's limit on an rpc action's arguments.
RPC_MAX_ARGS = 255
_ON_REQUEST = (REQUEST,)
_ON_VARS = (REQUEST, RESPONSE, ERROR)
_STATUS_LINE = re.compile(r"([0-9]{3})(?: (.*))?")


def kvlist(action_name, args, known, required=()):
    """{key: text} of uWSGI's `key=value,...` args: the last of a key
    wins; an unknown key or an item without `=` is refused."""
    found = {}
    for item in split_escaped(args, ","):
        key, equal, value = item.partition("=")
        if not equal:
            raise ConfigError(f'invalid {action_name} route syntax: '
                              f'"{item}" is not key=value')
        if key not in known:
            raise ConfigError(f'{action_name} route: unknown key "{key}" '
                              f'(uWSGI reads {", ".join(sorted(known))} '
                              "and ignores any other)")
        found[known[key]] = value
    for key in required:
        if key not in found:
            raise ConfigError(f"invalid {action_name} route syntax: you need "
                              f"to specify {required_text(required)}")
    return found


def required_text(required):
    return " and ".join(f"a {key}" for key in required)


def _raw(r, template):
    """A template's text for this request, as the bytes uWSGI uses."""
    return r.expand(template).encode("latin-1")


def _cache_name(given):
    """The cache a `name=` names: None for the first.  A remote cache
    (NAME@SERVER) is refused: ugu's caches are local."""
    if given is not None and "@" in given:
        raise ConfigError(f'cache "{given}" names a remote cache '
                          "(NAME@SERVER), and ugu's caches are local: name "
                          "a cache of this instance's cache2 lines")
    return given or None


def _seconds(text):
    """What C's strtoul() reads of an expires value."""
    return max(leading_int(text), 0) if text is not None else 0


# -- cache -------------------------------------------------------------------
_CACHE_KEYS = {"key": "key", "content_type": "content_type",
               "content_encoding": "content_encoding", "mime": "mime",
               "name": "name", "no_offload": "no_offload",
               "no_content_length": "no_cl", "no_cl": "no_cl",
               "nocl": "no_cl"}


def _cache(go_on):
    def factory(args):
        conf = kvlist("cache", args, _CACHE_KEYS, ("key",))
        key = Template(conf["key"])
        name = _cache_name(conf.get("name"))
        content_type = conf.get("content_type") or "text/html"
        encoding = conf.get("content_encoding")
        mime, with_length = "mime" in conf, "no_cl" not in conf

        def run(r):
            raw = _raw(r, key)
            found = backends.cache_get(name, raw)
            if found is None:
                return None
            value, expires = found
            typed = backends.mime_type(raw) if mime else None
            headers = [("Content-Type", typed or content_type)]
            if encoding:
                headers.append(("Content-Encoding", encoding))
            if expires:
                headers.append(("Expires", http_date(expires)))
            if with_length:
                headers.append(("Content-Length", str(len(value))))
            r.respond("200 OK", headers, value)
            return None if go_on else STOP
        return run
    return factory


action("cache", phases=_ON_REQUEST)(_cache(go_on=False))
action("cache-continue", phases=_ON_REQUEST)(_cache(go_on=True))


class CacheStore:
    """A `cachestore` the request met: what to store of its response
    once it is sent (the vassal does it: ugu.vassal.routestores)."""

    __slots__ = ("name", "key", "gzip_key", "value", "expires", "status")

    def __init__(self, name, key, gzip_key, value, expires, status):
        self.name, self.key, self.gzip_key = name, key, gzip_key
        self.value, self.expires, self.status = value, expires, status

    def wanted(self, status):
        """Whether a response of this status is stored."""
        return status == 200 or (self.status and status == self.status)


_STORE_KEYS = {"key": "key", "gzip": "gzip", "name": "name",
               "value": "value", "status": "status", "code": "status",
               "expires": "expires"}


@action("cachestore", "cache-store", phases=_ON_REQUEST)
def cachestore(args):
    conf = kvlist("cachestore", args, _STORE_KEYS, ("key",))
    key = Template(conf["key"])
    name = Template(conf["name"]) if conf.get("name") else None
    if name is not None and name.static is not None:
        _cache_name(name.static)    # refuses a remote cache
    gzip_key = Template(conf["gzip"]) if "gzip" in conf else None
    value = Template(conf["value"]) if "value" in conf else None
    expires = _seconds(conf.get("expires"))
    status = leading_int(conf["status"]) if "status" in conf else 0

    def run(r):
        cache = r.expand(name) if name is not None else None
        if cache is not None and "@" in cache:
            # A remote cache a var named: ugu's are local.
            r.log(f'cachestore: "{cache}" names a remote cache, and '
                  "ugu's caches are local: nothing stored")
            return None
        if r.stores is None:
            r.stores = []
        r.stores.append(CacheStore(
            cache or None, _raw(r, key),
            _raw(r, gzip_key) if gzip_key is not None else None,
            _raw(r, value) if value is not None else None, expires, status))
    return run


_SET_KEYS = {"key": "key", "value": "value", "name": "name",
             "expires": "expires"}


@action("cacheset", phases=ALL)
def cacheset(args):
    conf = kvlist("cacheset", args, _SET_KEYS, ("key", "value"))
    return _storing(conf, "set", None)


def _math(mode, default):
    def factory(args):
        conf = kvlist(f"cache{mode}", args, _SET_KEYS, ("key",))
        return _storing(conf, mode, default)
    return factory


for _mode, _default in (("inc", 1), ("dec", 1), ("mul", 2), ("div", 2)):
    action(f"cache{_mode}", phases=ALL)(_math(_mode, _default))


def _storing(conf, mode, default):
    """An action storing at `key` the value (under math, the number)
    the args give, as uWSGI's cacheset and cacheinc... do."""
    key = Template(conf["key"])
    name = _cache_name(conf.get("name"))
    value = Template(conf["value"]) if "value" in conf else None
    expires = _seconds(conf.get("expires"))

    def run(r):
        if mode == "set":
            stored = _raw(r, value)
        else:
            number = default if value is None else \
                leading_int(r.expand(value))
            stored = _number_bytes(number)
        if not backends.cache_store(name, _raw(r, key), stored, expires,
                                    mode):
            r.abort()
            return STOP
    return run


def _number_bytes(number):
    """A number as the cache's 8 bytes (C's long: what does not fit
    wraps)."""
    return (number & ((1 << 64) - 1)).to_bytes(8, "little")


_VAR_KEYS = {"key": "key", "var": "var", "name": "name", "num": "num",
             "as_num": "num"}


@action("cachevar", phases=_ON_VARS)
def cachevar(args):
    conf = kvlist("cachevar", args, _VAR_KEYS, ("key", "var"))
    key = Template(conf["key"])
    name = _cache_name(conf.get("name"))
    var, as_num = conf["var"], "num" in conf

    def run(r):
        found = backends.cache_get(name, _raw(r, key))
        if found is None:
            return None
        value = found[0]
        if as_num:
            number = int.from_bytes(value, "little", signed=True) \
                if len(value) == 8 else 0
            value = str(number).encode()
        if not r.append_var(var, value.decode("latin-1")):
            r.abort()
            return STOP
    return run


@condition("incache")
def incache(name, args):
    conf = kvlist("incache", args, {"key": "key", "name": "name"}, ("key",))
    key = Template(conf["key"])
    cache = _cache_name(conf.get("name"))
    return lambda v: backends.cache_exists(
        cache, key.expand(v).encode("latin-1"))


# -- metrics -----------------------------------------------------------------
def _metric(operation):
    def factory(args):
        # uWSGI: NAME[,VALUE], the value 1 when left out.
        name, comma, value = args.partition(",")
        name, value = Template(name), Template(value if comma else "1")

        def run(r):
            number = leading_int(r.expand(value))
            if not backends.metric_update(r.expand(name), operation,
                                          number):
                r.abort()
                return STOP
        return run
    return factory


for _operation in ("inc", "dec", "mul", "div", "set"):
    action(f"metric{_operation}", phases=ALL)(_metric(_operation))


# -- rpc ---------------------------------------------------------------------
def _rpc_call(args):
    """(node, function, arg templates) of `FUNC[@NODE] ARG ARG...`."""
    words = [word for word in args.split(" ") if word]
    if not words:
        raise ConfigError("unable to register route: you need to specify "
                          "an rpc function")
    if len(words) - 1 > RPC_MAX_ARGS:
        raise ConfigError("unable to register route: maximum number of rpc "
                          "args reached")
    function, at, node = words[0].partition("@")
    return (node if at else None, function.encode("latin-1"),
            tuple(Template(word) for word in words[1:]))


def _calling(args):
    node, function, templates = _rpc_call(args)

    def call(r):
        return backends.rpc_call(node, function,
                                 [_raw(r, t) for t in templates])
    return call


@action("rpc", "call", phases=_ON_REQUEST)
def rpc(args):
    call = _calling(args)

    def run(r):
        result = call(r)
        if result is not None:
            r.respond("200 OK", [("Content-Length", str(len(result)))],
                      result)
        else:
            r.abort()   # no such function: the request ends unanswered
        return STOP
    return run


# The head uWSGI gives `rpcnext`'s answer, to which each more `rpcnext`
# adds its function's bytes.
_BLOB_STATUS, _BLOB_HEADERS = "200 OK", [("Connection", "close")]


@action("rpcnext", "rpcblob", phases=_ON_REQUEST)
def rpcnext(args):
    call = _calling(args)

    def run(r):
        result = call(r)
        if result is None:
            r.abort()
            return STOP
        answer = r.answer
        if answer is not None and answer[:2] == (_BLOB_STATUS,
                                                 _BLOB_HEADERS):
            result = answer[2] + result
        r.respond(_BLOB_STATUS, list(_BLOB_HEADERS), result)
    return run


@action("rpcraw", phases=_ON_REQUEST)
def rpcraw(args):
    call = _calling(args)

    def run(r):
        result = call(r)
        answer = _blob_response(result) if result is not None else None
        if answer is None:
            r.abort()   # no function, or not a response: nothing sent
        else:
            r.respond(*answer)
        return STOP
    return run


def _blob_response(blob):
    """(status, headers, body) of a function's whole HTTP response
    (`HTTP/1.1 200 OK`, `Name: value` lines, each ended by CRLF, an
    empty line, the body), as uWSGI reads it; None for one it refuses."""
    head, blank, body = blob.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if any("\n" in line for line in lines):
        return None
    first, _, status = lines[0].partition(" ")
    if not first or len(status) < 3:
        return None
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(": ")
        if not colon:
            return None
        headers.append((name, value))
    return status, headers, body


@action("rpcvar", phases=_ON_VARS)
def rpcvar(args):
    var, space, rest = args.partition(" ")
    if not space:
        raise ConfigError("invalid rpcvar route syntax (expected VAR FUNC "
                          "ARGS...)")
    call = _calling(rest)

    def run(r):
        result = call(r) or b""
        if not r.append_var(var, result.decode("latin-1")):
            r.abort()
            return STOP
    return run


@action("rpcret", phases=_ON_REQUEST)
def rpcret(args):
    call = _calling(args)

    def run(r):
        result = call(r)
        if result is None:
            r.abort()
            return STOP
        return _routed_by(r, result.decode("latin-1"))
    return run


def _routed_by(r, said):
    """What an `rpcret` function's answer does, as uWSGI reads it."""
    if said == "next":
        return None
    if said.startswith("break"):
        status = said[6:]
        r.abort(_break_status(status) if len(said) > 6 else None)
        return STOP
    if said.startswith("goto "):
        if len(said) == 5:
            r.abort()
            return STOP
        return Goto(said[5:])
    # continue, and anything else: the request goes on to the app.
    return STOP


def _break_status(text):
    """`break STATUS` sends that status line as it is written."""
    if _STATUS_LINE.fullmatch(text):
        return _status(text)
    return text
