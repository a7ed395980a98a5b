"""What ugu has, by the names uWSGI gives the parts that do the same
work: plugins, loggers, loop engines, routing actions, alarms, cheaper
algorithms, clocks and imperial monitors.

`if-plugin` asks it for a plugin; the listing options (`plugins-list`,
`logger-list`, ...) log its lists at start-up, after show-config, in
uWSGI's words, and the instance goes on starting as uWSGI's does.  Each
list keeps uWSGI 2.0's order for the names both have.

Imported only where one of those options is read.
"""

from ugu import log

# uWSGI's generic plugins whose work ugu does, in uWSGI 2.0's order.
GENERIC_PLUGINS = (
    "gevent", "carbon", "corerouter", "fastrouter", "http",
    "router_redirect", "zergpool", "router_rewrite", "logfile",
    "router_cache", "rawrouter", "router_static", "sslrouter",
    "cheaper_busyness", "transformation_gzip", "router_metrics",
)
# Its request plugins ugu serves, by modifier1: WSGI apps, and RPC calls.
REQUEST_PLUGINS = ((0, "python"), (173, "rpc"))

# The loggers (the `logger` option's kinds) and loop engines ugu has,
# in uWSGI's order: `simple` is a worker's own threads, as uWSGI names
# its default engine.
LOGGERS = ("file", "fd", "stdio")
LOOPS = ("gevent", "simple")
CLOCKS = ("unix",)
MONITORS = ("dir", "glob")

# uWSGI 2.0's order of the names below, where it differs from ugu's.
_ALARM_ORDER = ("signal", "cmd", "mule", "log")
_CHEAPER_ORDER = ("busyness", "spare", "backlog", "manual")
# Its routing actions, core first, then by plugin.
_ROUTER_ORDER = (
    "continue", "last", "break", "return", "break-with-status", "log",
    "donotlog", "donotoffload", "logvar", "goto", "addvar", "addheader",
    "delheader", "remheader", "clearheaders", "resetheaders",
    "disableheaders", "signal", "send", "send-crnl", "chdir", "setapp",
    "setuser", "sethome", "setfile", "setscriptname", "setmethod",
    "seturi", "setremoteaddr", "setpathinfo", "fixpathinfo", "setdocroot",
    "setscheme", "setprocname", "alarm", "setmodifier1", "setmodifier2",
    "+", "-", "*", "/", "flush", "fixcl", "forcecl", "harakiri", "call",
    "rpc", "rpcret", "rpcblob", "rpcnext", "rpcraw", "rpcvar", "uwsgi",
    "proxyuwsgi", "redirect", "redirect-302", "redirect-permanent",
    "redirect-301", "basicauth", "basicauth-next", "rewrite",
    "rewrite-last", "http", "httpdumb", "proxyhttp", "httpconnect",
    "proxyhttpconnect", "cache", "cache-continue", "cachevar", "cacheset",
    "cachestore", "cache-store", "cacheinc", "cachedec", "cachemul",
    "cachediv", "static", "static-next", "file", "file-next", "sendfile",
    "sendfile-next", "fastfile", "fastfile-next", "symcall",
    "symcall-next", "tofile", "to-file", "gzip", "chunked", "offload",
    "memcached", "memcached-continue", "memcachedstore", "memcached-store",
    "redis", "redis-continue", "redisstore", "redis-store", "hash",
    "expires", "metricinc", "metricdec", "metricmul", "metricdiv",
    "metricset", "template",
)


def _ordered(names, order):
    """`names` in uWSGI's `order`, any it lacks after them, sorted."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted(names, key=lambda n: (rank.get(n, len(order)), n))


def has_plugin(name):
    """Whether uWSGI's plugin `name` is one ugu has (`if-plugin`)."""
    return name in GENERIC_PLUGINS or \
        any(name == plugin for _, plugin in REQUEST_PLUGINS)


def routers():
    """Every routing action ugu runs, in one phase or more."""
    # The package imports the modules that register their actions.
    from ugu.routing import actions
    names = set()
    for table in actions.ACTIONS.values():
        names.update(table)
    return _ordered(names, _ROUTER_ORDER)


def alarms():
    from ugu.vassal.alarms import KINDS
    return _ordered(KINDS, _ALARM_ORDER)


def cheaper_algorithms():
    from ugu.vassal.cheaper import ALGORITHMS
    return _ordered(ALGORITHMS, _CHEAPER_ORDER)


def _plugins():
    yield "\n*** uWSGI loaded generic plugins ***"
    yield from GENERIC_PLUGINS
    yield "\n*** uWSGI loaded request plugins ***"
    for modifier1, name in REQUEST_PLUGINS:
        yield f"{modifier1}: {name}"
    yield "--- end of plugins list ---\n"


def _listed(what, names, end=None):
    yield f"\n*** uWSGI loaded {what} ***"
    yield from names
    yield f"--- end of {end or what} list ---\n"


# The listing options, in the order uWSGI logs them.
LISTS = (
    ("plugins-list", _plugins),
    ("logger-list", lambda: _listed("loggers", LOGGERS)),
    ("cheaper-algo-list", lambda: _listed("cheaper algorithms",
                                          cheaper_algorithms())),
    ("router-list", lambda: _listed("routers", routers())),
    ("loop-list", lambda: _listed("loop engines", LOOPS)),
    ("imperial-monitor-list", lambda: _listed("imperial monitors",
                                              MONITORS)),
    ("clock-list", lambda: _listed("clocks", CLOCKS)),
    ("alarm-list", lambda: _listed("alarms", alarms())),
)


def log_lists(config):
    """Log each list its option asks for, one message a line, as uWSGI
    logs them."""
    for option, lines in LISTS:
        if config[option]:
            for line in lines():
                log.log(line)


def option_names():
    """Every option ugu takes, aliases included, one a line, as
    dump-options prints them."""
    from ugu.options import registry
    return [name for opt in registry.OPTIONS
            for name in (opt.name, *opt.aliases)]
