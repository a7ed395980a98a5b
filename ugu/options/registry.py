"""Every option ugu knows, declared once.

The command line, INI files, `strict` checking, `--help` and `--show-config`
all read this table, so they cannot disagree.  An option's `kind` decides how
its text becomes a value; `repeat` options keep every occurrence in order,
the others keep the last one, as uWSGI does.

uWSGI options that ugu does not implement are listed by name in
`uwsgi-names.txt` (taken from `uwsgi --help`): a config that uses one is
refused with that reason instead of being accepted and ignored.
"""

import re
from dataclasses import dataclass
from pathlib import Path

# Option kinds.
FLAG = "flag"      # boolean; a bare `--opt` on the command line
INT = "int"
STR = "str"
TOGGLE = "toggle"  # boolean words or a number, e.g. http-keepalive = true | 5
PLUGINS = "plugins"  # plugin names, each one ugu has built in
MODE = "mode"      # a file mode in octal digits, e.g. umask = 022
MAPPING = "mapping"  # MOUNT=PATH, split at the first '='
CHMOD = "chmod"    # exactly three octal digits, e.g. logfile-chmod = 644
ADDRESS = "address"  # a socket's address, never empty
CODE = "code"      # Python code; bare on the command line, none ('')

# Subsystems that own options (for --help grouping and module ownership).
CORE = "core"
CONFIG = "config"
EMPEROR = "emperor"
MASTER = "master"
PYTHON = "python"
STATIC = "static"
ROUTING = "routing"
HTTP = "http"
FASTROUTER = "fastrouter"
RAWROUTER = "rawrouter"
SSLROUTER = "sslrouter"
LOGGING = "logging"


@dataclass(frozen=True)
class Option:
    name: str
    kind: str
    help: str
    owner: str
    default: object = None
    repeat: bool = False
    short: str | None = None
    aliases: tuple[str, ...] = ()
    # Acts while the configuration is being read (uWSGI's "immediate").
    immediate: bool = False
    # Setting it turns on the master, as uWSGI silently does.
    needs_master: bool = False
    # On the command line the value is optional: `--opt` or `--opt=VALUE`.
    optional: bool = False
    # An optional value that may also come as the next word (`--opt 1`),
    # where uWSGI's getopt requires one: a word that is not an option.
    next_word: bool = False
    # A larger number is cut down to this, as uWSGI does.
    maximum: int | None = None
    # A smaller number counts as this, as uWSGI reads it.
    minimum: int | None = None
    # uWSGI keeps the number in 64 bits (its uwsgi_opt_set_64bit); the
    # others are a C int, which a larger value overflows into garbage.
    wide: bool = False
    # Each value is also a `logger` line of this kind (KIND:VALUE), as
    # uWSGI's log-syslog and log-socket are.
    logger_kind: str | None = None
    # A STR option that takes only these words; any other is refused
    # with `refused` (its text, formatted with the word given).
    words: tuple[str, ...] = ()
    refused: str = ""


# What an exec-PHASE option's help adds where its failure is fatal.
_FAILS = " (its failure ends the instance)"


def _opt(name, kind, help, owner, **kw):
    return Option(name, kind, help, owner, **kw)


# The request vars a routing table's PREFIX-SUFFIX options match their
# regexp on (PREFIX alone: PATH_INFO).
_ROUTE_VARS = (("host", "HTTP_HOST"), ("uri", "REQUEST_URI"),
               ("qs", "QUERY_STRING"), ("remote-addr", "REMOTE_ADDR"),
               ("user-agent", "HTTP_USER_AGENT"),
               ("remote-user", "REMOTE_USER"), ("referer", "HTTP_REFERER"))


def _route_options(prefix, table, status=False):
    """One routing table's options, as uWSGI names them: a rule on a
    regexp of a var, on a status code (the tables that have one), on a
    condition or its negation, always (-run), and labels for goto."""
    article = "an" if table[0] in "aeiou" else "a"

    def rule(name, on):
        return _opt(name, STR, f"add {article} {table} route{on}", ROUTING,
                    repeat=True)

    yield rule(prefix, " on a regexp of PATH_INFO")
    for suffix, var in _ROUTE_VARS:
        yield rule(f"{prefix}-{suffix}", f" on a regexp of {var}")
    if status:
        yield rule(f"{prefix}-status", " on a status code")
    yield rule(f"{prefix}-if", " on a condition")
    yield rule(f"{prefix}-if-not", " on a negated condition")
    yield _opt(f"{prefix}-run", STR, f"add an unconditional {table} route",
               ROUTING, repeat=True)
    yield _opt(f"{prefix}-label", STR, f"add {article} {table} routing "
               "label (for goto)", ROUTING, repeat=True)


OPTIONS = (
    # configuration language
    _opt("ini", STR, "load config from an INI file (FILE[:SECTION])", CONFIG,
         repeat=True, immediate=True),
    _opt("strict", FLAG, "refuse any key that is not a known option", CONFIG,
         default=False, immediate=True),
    _opt("set", STR, "set an option or placeholder (KEY=VALUE)", CONFIG,
         repeat=True, short="S", immediate=True),
    _opt("set-placeholder", STR, "set a placeholder (KEY=VALUE)", CONFIG,
         repeat=True, aliases=("set-ph",), immediate=True),
    _opt("resolve", STR, "set a placeholder to a host name's IPv4 "
         "address (PLACEHOLDER=NAME), looked up as the line is read",
         CONFIG, repeat=True, immediate=True),
    _opt("include", STR, "read a config file (by its extension) at this "
         "point", CONFIG, repeat=True, immediate=True),
    _opt("inject-before", STR, "put this text file's text before each "
         "config file read after this line, as it is, before its magic "
         "variables are replaced", CONFIG, repeat=True, immediate=True),
    _opt("inject-after", STR, "put this text file's text after each "
         "config file read after this line", CONFIG, repeat=True,
         immediate=True),
    _opt("declare-option", STR, "declare an option (NAME=KEY=VALUE;...; "
         "$1, $2... in the template are its value's words), applied as "
         "read", CONFIG, repeat=True, immediate=True),
    _opt("declare-option2", STR, "declare an option as declare-option "
         "does, once the files are read, where the line stands", CONFIG,
         repeat=True),
    _opt("inherit", STR, "use a config file as a template: its options "
         "are added at the end, overriding scalars", CONFIG, repeat=True),
    _opt("yaml", STR, "load config from a YAML file (FILE[:SECTION])",
         CONFIG, repeat=True, immediate=True, short="y", aliases=("yml",)),
    _opt("xmlconfig", STR, "load config from an XML file (FILE[:ID])",
         CONFIG, repeat=True, immediate=True, short="x", aliases=("xml",)),
    _opt("json", STR, "load config from a JSON file (FILE[:OBJECT])",
         CONFIG, repeat=True, immediate=True, short="j", aliases=("js",)),
    *(_opt(name, STR, f"(opt logic) {text}", CONFIG, repeat=True,
           immediate=True, aliases=aliases)
      for name, text, aliases in (
          ("for", "repeat the keys up to endfor for each word", ()),
          ("for-glob", "repeat the keys for each path matching a glob", ()),
          ("for-times", "repeat the keys N times, %(_) counting from 1",
           ()),
          ("for-readline", "repeat the keys for each line of a file", ()),
          ("if-env", "keep the keys if the variable is set (VAR[=VALUE])",
           ("ifenv",)),
          ("if-not-env", "keep the keys if the variable is not set", ()),
          ("if-opt", "keep the keys if the option is set (KEY[=VALUE])",
           ()),
          ("if-not-opt", "keep the keys if the option is not set", ()),
          ("if-exists", "keep the keys if the path exists", ("ifexists",)),
          ("if-not-exists", "keep the keys if the path does not exist", ()),
          ("if-file", "keep the keys if the path is a file", ()),
          ("if-not-file", "keep the keys if the path is not a file", ()),
          ("if-dir", "keep the keys if the path is a directory",
           ("if-directory", "ifdir")),
          ("if-not-dir", "keep the keys if the path is not a directory",
           ()),
          ("if-hostname", "keep the keys on this host", ()),
          ("if-not-hostname", "keep the keys on any other host", ()),
          ("if-hostname-match", "keep the keys if a regexp matches the "
           "hostname", ()),
          ("if-not-hostname-match", "keep the keys if a regexp does not "
           "match the hostname", ()),
          ("if-plugin", "keep the keys if ugu has the plugin (see "
           "plugins-list)", ("ifplugin",)),
          ("if-not-plugin", "keep the keys if ugu lacks the plugin", ()),
      )),
    _opt("if-reload", FLAG, "(opt logic) keep the keys after a reload",
         CONFIG, repeat=True, immediate=True),
    _opt("if-not-reload", FLAG, "(opt logic) keep the keys at first start",
         CONFIG, repeat=True, immediate=True),
    _opt("endfor", STR, "(opt logic) end a for or if block", CONFIG,
         repeat=True, immediate=True, optional=True, aliases=("end-for",)),
    _opt("endif", STR, "(opt logic) end an if or for block", CONFIG,
         repeat=True, immediate=True, optional=True, aliases=("end-if",)),
    *(_opt(name, FLAG, f"log the {what} ugu has, by uWSGI's names, at "
           "start-up", CONFIG, default=False, aliases=aliases)
      for name, what, aliases in (
          ("plugins-list", "plugins", ("plugin-list",)),
          ("logger-list", "loggers", ("loggers-list",)),
          ("cheaper-algo-list", "cheaper algorithms",
           ("cheaper-algos-list", "cheaper-list")),
          ("router-list", "routing actions", ("routers-list",)),
          ("loop-list", "loop engines", ("loops-list",)),
          ("imperial-monitor-list", "imperial monitors",
           ("imperial-monitors-list",)),
          ("clock-list", "clocks", ("clocks-list",)),
          ("alarm-list", "alarm kinds", ("alarms-list",)),
      )),
    _opt("dump-options", FLAG, "print the name of every option (aliases "
         "too) and exit", CONFIG, default=False),
    _opt("python-version", FLAG, "print the version of Python and exit, "
         "as the line is read", CONFIG, default=False, immediate=True),
    _opt("show-config", FLAG, "log the resolved configuration at start-up",
         CONFIG, default=False),
    _opt("help", FLAG, "list every option and exit", CONFIG, default=False,
         short="h", aliases=("usage",)),
    _opt("version", FLAG, "print the version and exit", CONFIG,
         default=False),
    _opt("connect-and-read", STR, "connect to a socket (HOST:PORT or a "
         "unix PATH), log what it sends until it closes, and exit: a stats "
         "server's document, or a py-tracebacker's stacks", CONFIG),
    _opt("ping", STR, "send a ping packet to the uwsgi socket at ADDR "
         "and exit: 0 up, 2 up with a warning message, 1 no answer",
         CONFIG),
    _opt("ping-timeout", INT, "seconds ping waits for an answer "
         "(default: 3)", CONFIG, default=0),
    _opt("nagios", FLAG, "ping the first socket as a Nagios check and "
         "exit with its status (OK, WARNING, CRITICAL, UNKNOWN)", CONFIG,
         default=False),
    _opt("stop", STR, "send SIGINT (stop) to the instance whose pidfile "
         "this is, and exit", CONFIG),
    _opt("reload", STR, "send SIGHUP (graceful reload) to the instance "
         "whose pidfile this is, and exit", CONFIG),
    _opt("print", STR, "print the text on stdout once the config is "
         "read", CONFIG, repeat=True),
    _opt("iprint", STR, "print the text on stdout as the line is read "
         "(before $(), %() and @() are replaced)", CONFIG, repeat=True,
         immediate=True),
    _opt("exit", STR, "exit at once with this status (bare: 1), as the "
         "line is read", CONFIG, immediate=True, optional=True),
    _opt("fallback-config", STR, "start ugu again with this config file "
         "when the instance exits with status 1", CONFIG, immediate=True),
    # process model
    _opt("master", FLAG, "enable the master process", MASTER, default=False,
         short="M"),
    _opt("processes", INT, "spawn the given number of workers", MASTER,
         default=1, short="p", aliases=("workers",)),
    _opt("no-threads-wait", FLAG, "at a worker's graceful end, wait "
         "for core 0's request only: the other threads' requests are "
         "cut", CORE, default=False),
    _opt("threads", INT, "run each worker with the given number of threads",
         MASTER, default=1, minimum=1),
    _opt("enable-threads", FLAG, "enable Python threads (always on, as in "
         "uWSGI 2.0.28+)", MASTER, default=True, short="T"),
    _opt("cheaper", INT, "keep only this many workers when idle, spawning "
         "more under load", MASTER, default=0, needs_master=True),
    _opt("cheaper-initial", INT, "workers to start with in cheaper mode "
         "(default: cheaper)", MASTER, default=0, needs_master=True),
    _opt("cheaper-step", INT, "workers to spawn at each overload", MASTER,
         default=1, needs_master=True),
    _opt("cheaper-overload", INT, "seconds of full load before spawning",
         MASTER, default=3, needs_master=True, wide=True),
    _opt("cheap", FLAG, "spawn no worker until the first connection "
         "waits on a worker socket", MASTER, default=False,
         needs_master=True),
    _opt("idle", INT, "back to cheap mode (the workers stopped) after this "
         "many seconds without a request", MASTER, default=0,
         needs_master=True),
    _opt("die-on-idle", FLAG, "with idle, end the instance instead of "
         "going cheap", MASTER, default=False),
    _opt("cheaper-algo", STR, "the cheaper algorithm: spare (the "
         "default), backlog, busyness or manual", MASTER, needs_master=True),
    # The busyness algorithm's; 0 takes the default, as uWSGI reads them.
    _opt("cheaper-busyness-max", INT, "busyness: average percent of "
         "time in requests above which workers are spawned", MASTER,
         default=50, wide=True),
    _opt("cheaper-busyness-min", INT, "busyness: average percent of "
         "time in requests below which a worker may be stopped", MASTER,
         default=25, wide=True),
    _opt("cheaper-busyness-multiplier", INT, "busyness: the workers stay "
         "idle this many times cheaper-overload seconds before one is "
         "stopped", MASTER, default=10, wide=True),
    _opt("cheaper-busyness-penalty", INT, "busyness: added to the "
         "multiplier when workers come back soon after a stop", MASTER,
         default=2, wide=True),
    _opt("cheaper-busyness-verbose", FLAG, "busyness: log every measure "
         "and decision", MASTER, default=False),
    _opt("cheaper-busyness-backlog-alert", INT, "busyness: spawn "
         "emergency workers at once when more connections than this "
         "wait in the listen queue", MASTER, default=33),
    _opt("cheaper-busyness-backlog-multiplier", INT, "busyness: the "
         "multiplier while emergency workers run", MASTER, default=3,
         wide=True),
    _opt("cheaper-busyness-backlog-step", INT, "busyness: emergency "
         "workers spawned at a time", MASTER, default=1),
    _opt("cheaper-busyness-backlog-nonzero", INT, "busyness: spawn "
         "emergency workers when connections have waited in the listen "
         "queue this many seconds", MASTER, default=60, wide=True),
    _opt("cheaper-rss-limit-soft", INT, "spawn no more workers while their "
         "resident memory together reaches this many bytes (needs "
         "memory-report)", MASTER, default=0, needs_master=True,
         wide=True),
    _opt("cheaper-rss-limit-hard", INT, "stop a worker each second while "
         "their resident memory together reaches this many bytes",
         MASTER, default=0, needs_master=True, wide=True),
    _opt("chdir", STR, "chdir to the directory before loading apps", CORE),
    _opt("chdir2", STR, "chdir each worker to the directory after the "
         "apps are loaded", CORE),
    # Waited for, as root only, before the hooks as root.
    _opt("wait-for-fs", STR, "wait for the file or directory to appear "
         "(as root, before the hooks as root)", CORE, repeat=True,
         aliases=("wait-for-file", "wait-for-dir")),
    _opt("wait-for-mountpoint", STR, "wait for a filesystem to be mounted "
         "on the directory (as root, before the hooks as root)", CORE,
         repeat=True),
    _opt("wait-for-fs-timeout", INT, "seconds to wait for each "
         "wait-for-fs, -file, -dir and -mountpoint (0: 60)", CORE,
         default=0),
    _opt("wait-for-interface", STR, "wait for the network interface to "
         "exist (as root, before the hooks as root)", CORE, repeat=True,
         aliases=("wait-interface", "wait-for-iface", "wait-iface")),
    _opt("wait-for-interface-timeout", INT, "seconds to wait for each "
         "wait-for-interface (0: 60)", CORE, default=0, aliases=(
             "wait-interface-timeout", "wait-for-iface-timeout",
             "wait-iface-timeout")),
    _opt("wait-for-socket", STR, "wait until the socket (HOST:PORT or a "
         "unix PATH) accepts a connection, before the app is loaded", CORE,
         repeat=True),
    _opt("wait-for-socket-timeout", INT, "seconds to wait for each "
         "wait-for-socket (0: 60)", CORE, default=0),
    _opt("need-app", FLAG, "exit if no app can be loaded", PYTHON,
         default=False, optional=True),
    _opt("listen", INT, "socket listen backlog", CORE, default=100,
         short="l"),
    _opt("chunked-input-limit", INT, "set the largest chunk (with its "
         "CRLF) of a chunked request body uwsgi.chunked_read takes, in "
         "bytes (default 1MB; 0: no limit)", CORE, default=1024 * 1024,
         wide=True),
    _opt("chunked-input-timeout", INT, "set how long uwsgi.chunked_read "
         "waits for more of a chunked body, in seconds (default: "
         "socket-timeout)", CORE, default=0),
    _opt("socket-timeout", INT, "seconds to wait on a stalled client "
         "connection", CORE, default=4, short="z"),
    _opt("websocket-ping-freq", INT, "seconds between the pings a "
         "websocket receive sends while it waits", CORE, default=30,
         aliases=("websockets-ping-freq",)),
    _opt("websocket-pong-tolerance", INT, "seconds a websocket waits for "
         "the pong to its ping before it ends", CORE, default=3,
         aliases=("websockets-pong-tolerance",)),
    _opt("websocket-max-size", INT, "largest websocket frame received, in "
         "KiB (a larger one ends the websocket)", CORE, default=1024,
         wide=True, aliases=("websockets-max-size",)),
    _opt("no-defer-accept", FLAG, "accept a TCP connection at once, not "
         "when its first bytes arrive (or after socket-timeout seconds)",
         CORE, default=False),
    _opt("exit-on-reload", FLAG, "end the instance (exit 0) where a "
         "reload would restart it", MASTER, default=False),
    _opt("die-on-term", FLAG, "exit on SIGTERM instead of reloading",
         MASTER, default=False),
    _opt("worker-reload-mercy", INT, "seconds a worker may take to finish "
         "its requests when stopping", MASTER, default=60),
    _opt("max-fd", INT, "set the limit of open files (soft and hard; "
         "raising it needs root)", CORE, default=0),
    _opt("honour-stdin", FLAG, "keep stdin as it was given (else it is "
         "/dev/null once the sockets are bound)", CORE, default=False),
    _opt("limit-as", INT, "limit the address space (virtual memory) of "
         "every process to this many megabytes", CORE, default=0, wide=True),
    _opt("umask", MODE, "set the umask (octal, as 022) before anything "
         "is created", CORE),
    _opt("thunder-lock", FLAG, "serialize accept(): ugu's workers always "
         "take turns (EPOLLEXCLUSIVE), so this states the behaviour", CORE,
         default=False),
    _opt("no-orphans", FLAG, "kill the workers when the master dies: "
         "ugu's workers always die with their master, so this states the "
         "behaviour", MASTER, default=False),
    _opt("ignore-sigpipe", FLAG, "do not log a worker's SIGPIPE (a write "
         "to a closed pipe or socket)", CORE, default=False),
    _opt("ignore-write-errors", FLAG, "do not log a failed write of a "
         "response to its client", CORE, default=False),
    _opt("disable-write-exception", FLAG, "do not raise OSError in the app "
         "when a response cannot be written to its client", PYTHON,
         default=False),
    _opt("response-headers-limit", INT, "set the largest response head "
         "in bytes (default 64k): a longer one is refused in the app's "
         "start_response", CORE, default=0, minimum=0),
    _opt("disable-sendfile", FLAG, "send files (static files, "
         "wsgi.file_wrapper, uwsgi.sendfile) with read() and write() "
         "instead of sendfile() (offload threads still use it)", CORE,
         default=False),
    _opt("write-errors-tolerance", INT, "let the app go on after a failed "
         "write of its response (any number above 0: uWSGI counts one "
         "failure a request), its later writes dropped", CORE, default=0,
         wide=True),
    _opt("write-errors-exception-only", FLAG, "say nothing of a failed "
         "write (ignore-write-errors and ignore-sigpipe), only raise "
         "OSError in the app", CORE, default=False),
    _opt("map-socket", STR, "only these workers accept on the socket "
         "(SOCKET:WORKER[,WORKER...], sockets numbered from 0)", CORE,
         repeat=True),
    _opt("max-vars", INT, "a request may have twice this many vars (a "
         "header is one): one more and it is refused", CORE, default=64,
         short="v"),
    _opt("buffer-size", INT, "largest uwsgi request block accepted (bytes)",
         CORE, default=4096, short="b", maximum=65535),
    _opt("auto-procname", FLAG, "name processes 'uWSGI master', "
         "'uWSGI worker N'", MASTER, default=False),
    _opt("procname-prefix", STR, "prefix process names with this text",
         MASTER),
    _opt("procname-prefix-spaced", STR, "prefix process names with this "
         "text and a space", MASTER),
    _opt("procname", STR, "name the workers (and the master) this",
         MASTER),
    _opt("procname-master", STR, "name the master process this", MASTER),
    _opt("procname-append", STR, "append this text to process names",
         MASTER),
    _opt("lazy-apps", FLAG, "load the app in each worker after fork instead "
         "of once in the master", MASTER, default=False),
    _opt("pyshell", CODE, "worker 1 runs an interactive Python shell on "
         "stdin (kept) once the apps are loaded, instead of serving, and "
         "again at each respawn; given code, runs it instead", PYTHON,
         optional=True),
    _opt("pyshell-oneshot", CODE, "as pyshell, once: worker 1 then "
         "serves as the others do", PYTHON, optional=True),
    _opt("mode", STR, "a name for the instance's mode, which the apps "
         "read as uwsgi.mode", PYTHON),
    _opt("lazy", FLAG, "lazy-apps, and a graceful reload (SIGHUP, "
         "touch-reload...) reloads the workers only, the master "
         "keeping its config (uWSGI deprecates it)", MASTER,
         default=False),
    _opt("single-interpreter", FLAG, "use one Python interpreter: ugu always "
         "runs one interpreter per process, so this states the behaviour",
         PYTHON, default=False, short="i"),
    _opt("wsgi-env-behaviour", STR, "the environ of each request: cheat "
         "(the default) reuses one dict per core, emptied when its request "
         "ends; holy makes a new one, which the app may keep", PYTHON,
         aliases=("wsgi-env-behavior",)),
    _opt("gevent", INT, "serve up to N requests at once per worker as "
         "greenlets (monkey-patched, app loaded in each worker)", MASTER,
         default=0),
    _opt("gevent-monkey-patch", FLAG, "call gevent.monkey.patch_all() in "
         "gevent mode: ugu's gevent workers always do, so this states the "
         "behaviour", PYTHON, default=False),
    _opt("gevent-early-monkey-patch", FLAG, "patch before the app loads: "
         "ugu's gevent workers always do, so this states the behaviour",
         PYTHON, default=False),
    _opt("py-call-osafterfork", FLAG, "tell Python of each fork (the "
         "child hooks of os.register_at_fork run, threading forgets the "
         "master's threads): ugu's workers are forked by os.fork(), which "
         "always does, so this states the behaviour", PYTHON,
         default=False),
    _opt("py-call-uwsgi-fork-hooks", FLAG, "run os.register_at_fork's "
         "hooks at each fork (before and after_in_parent in the forking "
         "process, after_in_child in the new one): ugu forks with "
         "os.fork(), which always does, so this states the behaviour",
         PYTHON, default=False),
    _opt("cpu-affinity", INT, "run each worker on this many CPUs: worker "
         "N from CPU (N - 1) * count on, wrapping round", MASTER,
         default=0),
    _opt("max-requests", INT, "recycle a worker after this many requests",
         MASTER, default=0, short="R", wide=True),
    _opt("max-requests-delta", INT, "add (worker id - 1) * delta to "
         "max-requests for each worker", MASTER, default=0, wide=True),
    _opt("forkbomb-delay", INT, "seconds the master waits before the "
         "next respawn when more workers than `processes` respawn each "
         "within a second of the one before (0: no wait)", MASTER,
         default=2, needs_master=True),
    _opt("min-worker-lifetime", INT, "seconds a worker must live before "
         "max-requests, reload-on-rss or reload-on-as recycle it", MASTER,
         default=10, wide=True),
    _opt("max-worker-lifetime", INT, "recycle a worker after this many "
         "seconds", MASTER, default=0, wide=True),
    _opt("max-worker-lifetime-delta", INT, "add this many seconds to "
         "max-worker-lifetime for each worker before it (worker N gets "
         "(N-1) times this)", MASTER, default=0),
    _opt("reload-on-rss", INT, "recycle a worker whose resident memory "
         "reaches this many megabytes after a request", MASTER, default=0,
         wide=True),
    _opt("reload-on-as", INT, "recycle a worker whose address space "
         "reaches this many megabytes after a request", MASTER, default=0,
         wide=True),
    _opt("evil-reload-on-rss", INT, "the master kills (SIGKILL) and "
         "respawns a worker whose resident memory reaches this many "
         "megabytes, checked each second", MASTER, default=0,
         needs_master=True, wide=True),
    _opt("evil-reload-on-as", INT, "the master kills (SIGKILL) and "
         "respawns a worker whose address space reaches this many "
         "megabytes, checked each second", MASTER, default=0,
         needs_master=True, wide=True),
    _opt("limit-post", INT, "refuse a request whose body is declared "
         "longer than this many bytes (413, and the connection closes)",
         CORE, default=0, wide=True),
    _opt("post-buffering", INT, "read a request's whole body before the "
         "app runs: in memory under this many bytes, else in a temporary "
         "file (wsgi.input can then seek)", CORE, default=0, wide=True),
    _opt("post-buffering-bufsize", INT, "bytes read at a time while a body "
         "is buffered (at least post-buffering)", CORE, default=8192,
         wide=True),
    _opt("reaper", FLAG, "after each request, reap the worker's children "
         "that ended (waitpid(-1, WNOHANG)), so that the app leaves no "
         "zombies", CORE, default=False, short="r"),
    _opt("harakiri", INT, "kill a worker stuck on one request for more "
         "than this many seconds", MASTER, default=0, short="t"),
    _opt("harakiri-graceful-timeout", INT, "a worker's first harakiri "
         "sends harakiri-graceful-signal and gives it this many more "
         "seconds before the kill (0: kill at once)", MASTER, default=0),
    _opt("harakiri-graceful-signal", INT, "the signal of a graceful "
         "harakiri (a number)", MASTER, default=15),
    _opt("reload-on-exception", FLAG, "end the worker (the master "
         "respawns it) when its app raises, right after the traceback",
         MASTER, default=False),
    *(_opt(f"reload-on-exception-{name}", STR, f"end the worker when its "
           f"app raises an exception whose message is this (uWSGI 2.0 "
           f"compares the message{why})", MASTER, repeat=True)
      for name, why in (("type", ", not the type"), ("value", ""),
                        ("repr", ", not 'Type: message'"))),
    _opt("harakiri-verbose", FLAG, "when harakiri kills a worker, also "
         "log the system call it is stuck in and where the kernel sleeps "
         "it", MASTER, default=False),
    _opt("touch-reload", STR, "gracefully reload when the file is touched",
         MASTER, repeat=True, needs_master=True),
    _opt("touch-workers-reload", STR, "reload only the workers when the "
         "file is touched", MASTER, repeat=True, needs_master=True),
    _opt("touch-spoolers-reload", STR, "reload the spoolers when the "
         "file is modified/touched: killed (SIGKILL, a task cut short runs "
         "again) and respawned, as by uWSGI", MASTER, repeat=True,
         needs_master=True),
    _opt("touch-mules-reload", STR, "reload the mules (SIGHUP, then a "
         "respawn) when the file is modified/touched", MASTER, repeat=True,
         needs_master=True),
    _opt("fs-reload", STR, "gracefully reload when the file or directory "
         "(one of its entries) changes, seen through inotify", MASTER,
         repeat=True, needs_master=True),
    _opt("fs-brutal-reload", STR, "brutally reload when the file or "
         "directory (one of its entries) changes, seen through inotify",
         MASTER, repeat=True, needs_master=True),
    _opt("touch-exec", STR, "run a command through /bin/sh when the file "
         "is touched (FILE COMMAND)", MASTER, repeat=True,
         needs_master=True),
    _opt("touch-chain-reload", STR, "chain-reload the workers (one at a "
         "time) when the file is touched", MASTER, repeat=True,
         needs_master=True),
    _opt("master-fifo", STR, "read one-letter commands from this fifo "
         "(r w c q s R W Q)", MASTER, needs_master=True),
    _opt("pidfile", STR, "write the master's pid to this file", MASTER),
    _opt("safe-pidfile", STR, "write the master's pid to this file once "
         "the first workers are spawned (vacuum leaves it where uid is "
         "set)", MASTER),
    _opt("safe-pidfile2", STR, "write the master's pid to this file once "
         "the first workers are spawned (vacuum removes it)", MASTER),
    _opt("pidfile2", STR, "write the master's pid to this file after "
         "privileges drop (vacuum removes it)", MASTER),
    # the cache
    _opt("cache2", STR, "create a shared cache (KEY=VALUE,...: name, "
         "items, blocksize, blocks, bitmap, keysize, hashsize, store, "
         "store_sync, store_delete, purge_lru, lazy_expire, no_expire, "
         "ignore_full, sweep_on_full, clear_on_full, math_initial)", MASTER,
         repeat=True),
    _opt("cache", INT, "create the shared cache \"default\" of this many "
         "items (the first is never used)", MASTER, default=0, wide=True),
    _opt("cache-blocksize", INT, "the size of an item of the cache "
         "\"default\" (0: 65536)", MASTER, default=0, wide=True),
    _opt("cache-store", STR, "keep the cache \"default\" in this file, "
         "across restarts", MASTER, needs_master=True),
    _opt("cache-store-sync", INT, "sync the caches' store files every "
         "this many seconds (0: when the instance ends)", MASTER, default=0),
    _opt("cache-no-expire", FLAG, "sweep no cache's expired items",
         MASTER, default=False),
    _opt("cache-expire-freq", INT, "sweep the caches' expired items every "
         "this many seconds (0: 3)", MASTER, default=0),
    _opt("cache-report-freed-items", FLAG, "log how many expired items "
         "each sweep frees", MASTER, default=False),
    _opt("add-cache-item", STR, "store an item in the caches at start-up "
         "([CACHE ]KEY=VALUE; without CACHE, in every cache)", MASTER,
         repeat=True),
    _opt("load-file-in-cache", STR, "store a file in the caches at "
         "start-up, its path as the key ([CACHE ]PATH)", MASTER,
         repeat=True),
    _opt("load-file-in-cache-gzip", STR, "store a file gzipped in the "
         "caches at start-up, its path as the key ([CACHE ]PATH)", MASTER,
         repeat=True),
    _opt("check-cache", STR, "answer a GET from the cache (empty or "
         "bare: the first) when it holds a response at its REQUEST_URI: "
         "the item, head and body, is sent as it is", CORE, optional=True),
    _opt("cache-use-last-modified", FLAG, "keep the time of the last "
         "change of the cache \"default\" (the stats' last_modified_at)",
         MASTER),
    # the sharedarea, the queue and RPC
    _opt("sharedarea", STR, "map a raw memory area every process shares "
         "(PAGES, or pages=N / size=BYTES / file=PATH,size=BYTES"
         "[,offset=BYTES]); the Nth line is area N-1", MASTER, repeat=True,
         short="A"),
    _opt("py-sharedarea", STR, "add a sharedarea of this many bytes "
         "that is a Python bytearray (sharedarea_object): made before "
         "the fork, each process has its own copy, as in uWSGI", PYTHON,
         repeat=True),
    _opt("queue", INT, "make the shared queue of this many slots", MASTER,
         default=0, wide=True),
    _opt("queue-blocksize", INT, "the size of a slot of the queue, its "
         "16-byte header included (0: 8192)", MASTER, default=0, wide=True),
    _opt("queue-store", STR, "keep the queue in this file, across "
         "restarts", MASTER, needs_master=True),
    _opt("queue-store-sync", INT, "sync the queue's store file every this "
         "many seconds (0: when the instance ends)", MASTER, default=0),
    _opt("lock-engine", STR, "the lock engine: ipcsem, uWSGI's only one "
         "to name (SysV semaphores, freed by the kernel when their holder "
         "dies, as ugu's locks are freed)", PYTHON,
         words=("ipcsem",),
         refused='unable to find lock engine "{}": uWSGI\'s only engine '
                 'to name is ipcsem (its default, a robust mutex, needs '
                 'no name): remove the option or write ipcsem'),
    _opt("locks", INT, "how many user locks beside lock 0 the apps "
         "share (uwsgi.lock(N), unlock(N), is_locked(N) for N from 0 to "
         "this)", PYTHON, default=0),
    _opt("rpc-max", INT, "the most RPC functions a process registers",
         MASTER, default=64, wide=True),
    # mules
    _opt("mule", STR, "add a mule: a process beside the workers running "
         "a Python script (FILE.py, as __main__) or a callable "
         "(module:callable); empty, a bare mule that takes messages",
         MASTER, repeat=True, optional=True, needs_master=True),
    _opt("mules", INT, "add this many bare mules", MASTER, repeat=True,
         needs_master=True),
    _opt("farm", STR, "add a mule farm (NAME:MULE_ID[,MULE_ID...]): "
         "uwsgi.mule_msg(msg, b\"NAME\") reaches one of its mules", MASTER,
         repeat=True, needs_master=True),
    _opt("mule-msg-size", INT, "the socket buffers of the mules' message "
         "queues, in bytes (0: the kernel's default)", MASTER, default=0,
         optional=True, needs_master=True),
    _opt("mule-harakiri", INT, "kill a mule whose uWSGI signal handler "
         "runs longer than this many seconds (it is respawned)", MASTER,
         default=0),
    _opt("mule-reload-mercy", INT, "seconds a mule may take to stop at a "
         "reload or shutdown before it is killed", MASTER, default=60),
    # the spooler
    _opt("spooler", STR, "run a spooler on this folder (its tasks are "
         "files there; repeat for several)", MASTER, repeat=True,
         short="Q", needs_master=True),
    _opt("spooler-external", STR, "spool tasks to this folder, whose "
         "spooler another instance runs (none is forked here)", MASTER,
         repeat=True, needs_master=True),
    _opt("spooler-processes", INT, "spooler processes for each spooler "
         "folder", MASTER, default=0),
    _opt("spooler-frequency", INT, "seconds between the scans of a "
         "spooler's folder", MASTER, default=30,
         aliases=("spooler-freq",)),
    _opt("spooler-max-tasks", INT, "tasks a spooler process runs before "
         "it is respawned (0: no limit)", MASTER, default=0),
    _opt("spooler-chdir", STR, "chdir() to this folder before each "
         "spooler task", MASTER),
    _opt("spooler-import", STR, "import a Python module (or a FILE.py) "
         "in the spooler processes", PYTHON, repeat=True,
         aliases=("spooler-pyimport", "spooler-py-import",
                  "spooler-python-import")),
    _opt("spooler-quiet", FLAG, "do not log each spooler task", MASTER,
         default=False),
    _opt("spooler-ordered", FLAG, "run the spooler tasks in the order of "
         "their names, priority subfolders first", MASTER, default=False),
    _opt("spooler-harakiri", INT, "kill a spooler process whose task "
         "runs longer than this many seconds (0: never)", MASTER,
         default=0),
    # uWSGI signals (ugu/vassal/signals.py)
    _opt("timer", STR, "raise a uWSGI signal every N seconds (SIGNAL "
         "SECONDS)", MASTER, repeat=True, needs_master=True,
         aliases=("signal-timer",)),
    _opt("rbtimer", STR, "raise a uWSGI signal every N seconds, from the "
         "master's red-black timers (SIGNAL SECONDS)", MASTER, repeat=True,
         needs_master=True, aliases=("signal-rbtimer",)),
    _opt("signal-bufsize", INT, "the socket buffers of the uWSGI signal "
         "queues, in bytes (0: the kernel's default)", MASTER, default=0,
         aliases=("signals-bufsize",)),
    _opt("touch-signal", STR, "raise a uWSGI signal when the file is "
         "touched (FILE SIGNAL)", MASTER, repeat=True, needs_master=True),
    _opt("fs-signal", STR, "raise a uWSGI signal when the file or "
         "directory (one of its entries) changes, seen through inotify "
         "(PATH SIGNAL)", MASTER, repeat=True, needs_master=True),
    # external daemons
    _opt("attach-daemon", STR, "run a command beside the workers, through "
         "/bin/sh, respawned when it exits and stopped with the instance "
         "(it must not go to the background)", MASTER, repeat=True,
         needs_master=True),
    _opt("attach-control-daemon", STR, "as attach-daemon, but the "
         "instance shuts down (gracefully) when the command exits", MASTER,
         repeat=True, needs_master=True),
    _opt("attach-daemon2", STR, "attach-daemon with keys: cmd=COMMAND and "
         "any of pidfile, freq, daemonize, control, touch, stopsignal, "
         "reloadsignal, stdin, uid, gid, chdir, max_throttle, notifypid "
         "(commas in a value escaped as \\,)", MASTER, repeat=True,
         needs_master=True),
    _opt("smart-attach-daemon", STR, "run a command that goes to the "
         "background and writes PIDFILE (PIDFILE[,CHECKS] COMMAND): "
         "spawned again when that pid is gone, left running at reload and "
         "exit", MASTER, repeat=True, needs_master=True),
    _opt("smart-attach-daemon2", STR, "as smart-attach-daemon, for a "
         "command that stays in the foreground: the master detaches it "
         "and writes PIDFILE", MASTER, repeat=True, needs_master=True),
    _opt("daemons-honour-stdin", FLAG, "leave the daemons the master's "
         "stdin (else /dev/null)", MASTER, default=False,
         needs_master=True),
    # the master's cron
    _opt("cron", STR, "run a command through /bin/sh when the local time "
         "matches: MINUTE HOUR DAY MONTH WEEKDAY COMMAND (-1 any, -N every "
         "N)", MASTER, repeat=True, needs_master=True),
    _opt("unique-cron", STR, "as cron, but not started again while it "
         "runs", MASTER, repeat=True, needs_master=True),
    _opt("cron2", STR, "cron with keys before the command: "
         "[minute=,hour=,day=,month=,week=,unique=1,harakiri=SECONDS ]"
         "COMMAND (a key left out: any)", MASTER, repeat=True,
         needs_master=True),
    _opt("cron-harakiri", INT, "kill a cron command (its process group) "
         "still running after this many seconds (0: never)", MASTER,
         default=0),
    # hooks (uWSGI's core/hooks.c): a shell command, or an ACTION:ARGS,
    # at a phase of the instance's life
    *(_opt(f"exec-{phase}", STR, f"run a shell command {when}{fails}",
           MASTER, repeat=True)
      for phase, when, fails in (
          ("asap", "as soon as possible", _FAILS),
          ("pre-jail", "before jailing (at the first start)", _FAILS),
          ("in-jail", "in jail after initialization", _FAILS),
          ("post-jail", "after unshare (at the first start)", _FAILS),
          ("as-root", "before privileges drop (when started as root)",
           _FAILS),
          ("as-user", "after privileges drop (when started as root)",
           _FAILS),
          ("as-user-atexit", "before the master exits or reloads", ""),
          ("pre-app", "before the apps load", _FAILS),
          ("post-app", "after the apps load", _FAILS),
      )),
    *(_opt(f"hook-{phase}", STR, f"run an ACTION:ARGS hook {when}",
           MASTER, repeat=True)
      for phase, when in (
          ("asap", "as soon as possible"),
          ("pre-jail", "before jailing (at the first start)"),
          ("in-jail", "in jail after initialization"),
          ("post-jail", "after unshare (at the first start)"),
          ("as-root", "before privileges drop (when started as root)"),
          ("as-user", "after privileges drop (when started as root)"),
          ("as-user-atexit", "before the master exits or reloads"),
          ("pre-app", "before the apps load"),
          ("post-app", "after the apps load"),
          ("post-fork", "in each worker after its fork"),
          ("accepting", "when each worker starts accepting"),
          ("accepting-once", "when each worker starts accepting, on its "
           "first spawn only"),
          ("accepting1", "when worker 1 starts accepting"),
          ("accepting1-once", "when worker 1 starts accepting, on its "
           "first spawn only"),
          ("master-start", "when the master's loop starts"),
          ("as-mule", "in each mule after its fork"),
          ("as-gateway", "in each router (gateway) process after its "
           "fork"),
          ("touch", "when a file is touched (FILE ACTION:ARGS)"),
          ("emperor-stop", "when the Emperor asks the vassal to stop"),
          ("emperor-reload", "when the Emperor asks the vassal to reload"),
          ("emperor-lost", "when the link with the Emperor is lost"),
      )),
    _opt("vacuum", FLAG, "remove unix sockets and the pidfile at exit",
         MASTER, default=False),
    _opt("chmod-socket", STR, "chmod unix sockets (default 666)", CORE,
         short="C", aliases=("chmod",), optional=True),
    _opt("uid", STR, "setuid to this user or uid before binding", MASTER),
    _opt("gid", STR, "setgid to this group or gid before binding", MASTER),
    _opt("drop-after-init", FLAG, "drop privileges (uid, gid, the jail "
         "and the as-root hooks) once the sockets are bound, not before",
         MASTER, default=False),
    _opt("drop-after-apps", FLAG, "drop privileges once the master has "
         "loaded the apps (as root), not before binding", MASTER,
         default=False),
    _opt("add-gid", STR, "with gid, the additional groups (names or ids) "
         "instead of the user's", MASTER, repeat=True),
    _opt("no-initgroups", FLAG, "with uid and gid, no additional groups "
         "(else the user's groups, by initgroups())", MASTER,
         default=False),
    _opt("immediate-uid", STR, "setuid to this user or uid as the line "
         "is read", MASTER, immediate=True),
    _opt("immediate-gid", STR, "setgid to this group or gid (and drop "
         "the additional groups) as the line is read", MASTER,
         immediate=True),
    _opt("chroot", STR, "chroot() to the directory as root, at the first "
         "start, before privileges drop", MASTER),
    _opt("unshare", STR, "as root, at the first start, move the instance "
         "into new Linux namespaces (a comma-separated list of: files, "
         "ipc, net, pid, ns/fs/mount/mnt, sysvsem, uts, user), before "
         "the post-jail hooks and chroot", MASTER, repeat=True),
    _opt("unshare2", STR, "as unshare, after chroot and pivot-root",
         MASTER, repeat=True),
    _opt("jailed", FLAG, "run the post-jail hooks as after unshare (for "
         "an instance started jailed already)", MASTER, default=False),
    _opt("pivot-root", STR, "as root, at the first start, pivot_root() "
         "to NEW_ROOT, the old root put at PUT_OLD (NEW_ROOT PUT_OLD, "
         "PUT_OLD inside NEW_ROOT), after chroot", MASTER,
         aliases=("pivot_root",)),
    _opt("prio", STR, "the scheduler priority (nice, -20 to 19) of every "
         "process", MASTER),
    _opt("limit-nproc", INT, "limit the processes of the user (fewer "
         "workers where they do not fit)", MASTER, default=0),
    _opt("never-swap", FLAG, "lock every memory page in RAM (mlockall)",
         MASTER, default=False),
    _opt("flock", STR, "lock the file (fcntl) as the line is read; exit if "
         "another process holds it", MASTER, immediate=True),
    _opt("flock-wait", STR, "lock the file (fcntl) as the line is read; "
         "wait while another process holds it", MASTER, immediate=True),
    _opt("flock2", STR, "lock the file once the log is set up; exit if "
         "another process holds it", MASTER),
    _opt("flock-wait2", STR, "lock the file once the log is set up; wait "
         "while another process holds it", MASTER),
    _opt("force-cwd", STR, "the folder said as the current working "
         "directory, and run from where a reload starts again", MASTER),
    _opt("binsh", STR, "a shell for the exec hooks, crons and daemons "
         "instead of /bin/sh (the first executable one; else /bin/sh)",
         MASTER, repeat=True),
    _opt("envdir", STR, "set the environment from a daemontools envdir "
         "(one file a variable) after the asap hooks", MASTER,
         repeat=True),
    _opt("early-envdir", STR, "set the environment from a daemontools "
         "envdir as the line is read", MASTER, repeat=True,
         immediate=True),
    _opt("file-write", STR, "write VALUE and a newline to FILE "
         "(FILE=VALUE) before privileges drop", MASTER, repeat=True),
    # sockets
    _opt("socket", ADDRESS, "bind a uwsgi-protocol socket (ADDR or PATH)",
         CORE, repeat=True, short="s", aliases=("uwsgi-socket",)),
    _opt("skip-zero", FLAG, "do not take a listening socket found as "
         "stdin (fd 0) as one of the instance's", CORE, default=False),
    _opt("abstract-socket", FLAG, "bind every unix socket in Linux's "
         "abstract namespace, its path the name (the sockets, the stats "
         "server, the tracebacker's)", CORE, default=False, short="a"),
    _opt("http-socket", ADDRESS, "bind an HTTP socket served by the "
         "workers", CORE, repeat=True),
    _opt("http-socket-modifier1", INT, "modifier1 of the http-socket's "
         "requests: 0 or 30 for the Python plugin; any other, which no "
         "plugin of ugu's serves, leaves them unanswered but by the "
         "request routes", CORE, default=0, wide=True),
    _opt("http-socket-modifier2", INT, "modifier2 of the http-socket's "
         "requests (log-format's %(modifier2))", CORE, default=0,
         wide=True),
    _opt("https-socket", STR, "bind an HTTPS socket served by the "
         "workers: HTTP over TLS (ADDR,CERT,KEY[,CIPHERS[,CA]]; !CA "
         "requires a client certificate)", CORE, repeat=True),
    _opt("https-socket-modifier1", INT, "modifier1 of the https-socket's "
         "requests, as http-socket-modifier1", CORE, default=0, wide=True),
    _opt("https-socket-modifier2", INT, "modifier2 of the https-socket's "
         "requests (log-format's %(modifier2))", CORE, default=0,
         wide=True),
    _opt("ssl-socket", STR, "bind a socket served by the workers that "
         "speaks the uwsgi protocol over TLS (ADDR,CERT,KEY[,CIPHERS"
         "[,CA]])", CORE, repeat=True, aliases=("suwsgi-socket",)),
    # TLS contexts (ugu.sslcontext): every https, https-socket, ssl-socket
    # and sslrouter address's
    _opt("sni", STR, "serve a client that asks for NAME (SNI) this "
         "certificate (NAME CERT,KEY[,CIPHERS[,CA]])", CORE, repeat=True),
    _opt("sni-regexp", STR, "serve a client whose SNI name matches REGEXP "
         "this certificate (REGEXP CERT,KEY[,CIPHERS[,CA]])", CORE,
         repeat=True),
    _opt("sni-dir", STR, "serve a client that asks for NAME the "
         "certificate DIR/NAME.crt with DIR/NAME.key (and DIR/NAME.ca to "
         "verify clients), loaded at its first use", CORE),
    _opt("sni-dir-ciphers", STR, "the ciphers of sni-dir's contexts",
         CORE),
    _opt("ssl-option", STR, "add OpenSSL's option bits N (a decimal "
         "number) to every TLS context", CORE, repeat=True),
    _opt("ssl-verbose", FLAG, "log a client certificate that fails "
         "verification", CORE, default=False),
    _opt("ssl-enable-tlsv1", FLAG, "allow TLS 1.0 and 1.1 (insecure; "
         "OpenSSL's security level may still refuse them)", CORE,
         default=False),
    _opt("ssl-enable-sslv3", FLAG, "allow SSLv3: refused where OpenSSL "
         "has none, as here", CORE, default=False,
         aliases=("ssl-enable3",)),
    _opt("ssl-tmp-dir", STR, "write a certificate, key or CA given as PEM "
         "text to this folder (NAME.crt, .key, .ca) and load it from "
         "there", CORE),
    _opt("enable-proxy-protocol", FLAG, "read a PROXY (v1) line before "
         "a connection's first request, on the http-sockets and the HTTP "
         "router: the client it names is REMOTE_ADDR and REMOTE_PORT",
         CORE, default=False),
    _opt("http11-socket", ADDRESS, "bind an HTTP socket served by the "
         "workers whose connections stay open between requests (for up "
         "to socket-timeout)", CORE, repeat=True),
    _opt("fastcgi-socket", ADDRESS, "bind a FastCGI socket served by "
         "the workers (a web server's fastcgi_pass)", CORE, repeat=True),
    _opt("fastcgi-nph-socket", ADDRESS, "bind a FastCGI socket whose "
         "responses start with HTTP's status line (nph)", CORE,
         repeat=True),
    _opt("fastcgi-modifier1", INT, "modifier1 of the FastCGI sockets' "
         "requests: 0 or 30 for the Python plugin; any other leaves them "
         "unanswered but by the request routes", CORE, default=0,
         wide=True),
    _opt("fastcgi-modifier2", INT, "modifier2 of the FastCGI sockets' "
         "requests (log-format's %(modifier2))", CORE, default=0,
         wide=True),
    _opt("scgi-socket", ADDRESS, "bind an SCGI socket served by the "
         "workers (a web server's scgi_pass)", CORE, repeat=True),
    _opt("scgi-nph-socket", ADDRESS, "bind an SCGI socket whose "
         "responses start with HTTP's status line (nph)", CORE,
         repeat=True),
    _opt("scgi-modifier1", INT, "modifier1 of the SCGI sockets' "
         "requests: 0 or 30 for the Python plugin; any other leaves them "
         "unanswered but by the request routes", CORE, default=0,
         wide=True),
    _opt("scgi-modifier2", INT, "modifier2 of the SCGI sockets' "
         "requests (log-format's %(modifier2))", CORE, default=0,
         wide=True),
    # zerg mode: sockets passed between instances over a unix socket
    _opt("zerg-server", STR, "pass the workers' sockets to each zerg "
         "that connects to this unix socket (PATH or @NAME)", MASTER,
         needs_master=True),
    _opt("zerg", STR, "take the sockets of the zerg server at PATH and "
         "serve them, besides any bound here (at the first start; a "
         "reload keeps them)", CORE, repeat=True),
    _opt("zergpool", STR, "PATH:ADDR[,ADDR...]: bind the addresses and "
         "hand them to each zerg that connects to the unix socket PATH, "
         "from a process of their own", MASTER, repeat=True,
         needs_master=True, aliases=("zerg-pool",)),
    _opt("zerg-fallback", FLAG, "where a zerg server does not answer, "
         "start with the sockets bound here instead of exiting", CORE,
         default=False),
    _opt("protocol", STR, "what the `socket` addresses speak: uwsgi (the "
         "default), http (as http-socket), http11 (as http11-socket), "
         "fastcgi, fastcgi-nph, scgi or scgi-nph",
         CORE, aliases=("socket-protocol",)),
    _opt("shared-socket", STR, "bind ADDR (or a unix PATH) before the "
         "jail and the drop of privileges, for socket, http-socket, http "
         "and the other sockets to name as =N (N counting these lines "
         "from 0)", CORE, repeat=True),
    _opt("undeferred-shared-socket", STR, "as shared-socket (ugu defers "
         "no shared socket's accept)", CORE, repeat=True),
    _opt("chown-socket", STR, "chown unix sockets to USER[:GROUP] (names "
         "or ids) as they are bound; root is dropped (uid, gid) only "
         "after", CORE),
    _opt("so-keepalive", FLAG, "enable TCP keepalives on the TCP sockets "
         "(and so on the connections they accept)", CORE, default=False),
    _opt("tcp-nodelay", FLAG, "set TCP_NODELAY on each connection the "
         "workers accept (on a unix socket's, uWSGI's line says it "
         "cannot)", CORE, default=False),
    _opt("tcp-fast-open", INT, "enable TCP Fast Open on the TCP sockets, "
         "with a queue of this many pending requests", CORE, default=0,
         aliases=("tcp-fastopen",)),
    _opt("tcp-fast-open-client", FLAG, "the routers (http, fastrouter, "
         "rawrouter, sslrouter) open their TCP connections to IPv4 nodes "
         "with sendto(MSG_FASTOPEN) in place of connect(), asking for a "
         "TCP Fast Open cookie", CORE, default=False,
         aliases=("tcp-fastopen-client",)),
    _opt("reuse-port", FLAG, "set SO_REUSEPORT on the TCP sockets (other "
         "processes may bind the same address)", CORE, default=False),
    _opt("freebind", FLAG, "set IP_FREEBIND on the TCP sockets (bind an "
         "address the machine does not have yet)", CORE, default=False),
    _opt("close-on-exec", FLAG, "close the client connection in a "
         "program the app executes: ugu's connections always have "
         "FD_CLOEXEC, so this states the behaviour", CORE, default=False),
    _opt("close-on-exec2", FLAG, "close the listening sockets in a program "
         "the app executes: they always have FD_CLOEXEC (until a reload, "
         "as in uWSGI), so this states the behaviour", CORE,
         default=False),
    # A number in a file; bare on the command line, 1, as uWSGI reads it.
    _opt("so-send-timeout", TOGGLE, "set SO_SNDTIMEO (seconds) on the TCP "
         "sockets (and so on the connections they accept)", CORE,
         default=0, optional=True, aliases=(
             "socket-send-timeout", "so-write-timeout",
             "socket-write-timeout")),
    _opt("socket-sndbuf", INT, "set SO_SNDBUF (bytes; Linux doubles it) "
         "on every socket bound, and so on the connections they accept",
         CORE, default=0, wide=True),
    _opt("socket-rcvbuf", INT, "set SO_RCVBUF (bytes; Linux doubles it) "
         "on every socket bound, and so on the connections they accept",
         CORE, default=0, wide=True),
    # plugins: tutorials for packaged uWSGI load the Python one by name
    _opt("plugins", PLUGINS, "load plugins (ugu has python, http, "
         "fastrouter, rawrouter, sslrouter, gevent and logfile built "
         "in, and refuses any other)", CORE, repeat=True,
         aliases=("plugin",)),
    _opt("need-plugins", PLUGINS, "load plugins, exiting when one is "
         "missing (as plugins: ugu has python, http, fastrouter, "
         "rawrouter, sslrouter, gevent and logfile built in, and "
         "refuses any other)", CORE, repeat=True,
         aliases=("need-plugin",)),
    _opt("plugins-dir", STR, "add a folder to the plugins' search path "
         "(ugu's plugins are built in: it looks in none)", CORE,
         repeat=True, aliases=("plugin-dir",)),
    # python
    _opt("module", STR, "load a WSGI module (pkg.mod[:callable])", PYTHON,
         short="w", aliases=("wsgi",)),
    _opt("wsgi-file", STR, "load a WSGI app from a Python file", PYTHON,
         aliases=("file",)),
    _opt("callable", STR, "name of the WSGI callable", PYTHON,
         default="application"),
    _opt("eval", STR, "load a WSGI app from this Python code (its "
         "callable, `application` by default)", PYTHON),
    _opt("paste", STR, "load a WSGI app from a PasteDeploy URI "
         "(config:/path/file.ini, egg:...)", PYTHON),
    _opt("paste-logger", FLAG, "configure Python's logging from the "
         "paste config file (logging.config.fileConfig) before its app "
         "loads", PYTHON, default=False),
    _opt("ini-paste", STR, "read the [uwsgi] section of a PasteDeploy "
         "INI file and load its app", PYTHON, immediate=True),
    _opt("ini-paste-logged", STR, "as ini-paste, configuring Python's "
         "logging from the file too", PYTHON, immediate=True),
    _opt("pecan", STR, "load a Pecan app from its config file "
         "(pecan.deploy.deploy)", PYTHON),
    _opt("pyargv", STR, "the app's sys.argv after its first item "
         "(words split at spaces and tabs)", PYTHON),
    _opt("optimize", INT, "Python's optimisation level (as python -O: "
         "1 skips asserts, 2 drops docstrings too)", PYTHON, short="O"),
    _opt("py-executable", STR, "the value of the app's sys.executable",
         PYTHON, aliases=("py-sys-executable",)),
    _opt("pymodule-alias", STR, "make a module importable under another "
         "name (ALIAS=MODULE or ALIAS=/path/file.py), before the apps "
         "load", PYTHON, repeat=True),
    _opt("post-pymodule-alias", STR, "as pymodule-alias, after the "
         "`import` modules", PYTHON, repeat=True),
    _opt("pyrun", STR, "run a Python script (as __main__) instead of "
         "serving, then exit", PYTHON, aliases=("python", "py")),
    _opt("python-worker-override", STR, "each worker runs this Python "
         "script (as __main__) instead of serving requests, and exits "
         "when it ends", PYTHON),
    _opt("wsgi-strict", FLAG, "send a bytes object an app returns as the "
         "iterable it is (an item per byte, none of which is bytes), not "
         "whole", PYTHON, default=False),
    _opt("wsgi-accept-buffer", FLAG, "accept any object of the buffer "
         "protocol (array.array, mmap...) as a response item", PYTHON,
         default=False, aliases=("wsgi-accept-buffers",)),
    _opt("start_response-nodelay", FLAG, "send the head as soon as the "
         "app calls start_response, not with the first body bytes (not "
         "as PEP 3333 has it)", PYTHON, default=False),
    _opt("thread-stacksize", INT, "the stack size of the cores' threads, "
         "in KiB", MASTER, default=0, aliases=(
             "threads-stacksize", "thread-stack-size",
             "threads-stack-size")),
    _opt("pythonpath", STR, "add a directory (or glob) to sys.path", PYTHON,
         repeat=True, aliases=("python-path", "pp")),
    _opt("env", STR, "set an environment variable (KEY=VALUE)", CORE,
         repeat=True),
    _opt("unenv", STR, "unset an environment variable (in its place "
         "among the env options)", CORE, repeat=True),
    _opt("home", STR, "use this virtualenv (or Python home): its "
         "site-packages go first on sys.path", PYTHON, short="H",
         aliases=("virtualenv", "venv", "pyhome")),
    _opt("mount", STR, "load an app under a mountpoint (/MP=FILE or "
         "/MP=module:callable)", PYTHON, repeat=True),
    _opt("import", STR, "import a Python module (or run a .py file) "
         "where the apps load, before them", PYTHON, repeat=True,
         aliases=("pyimport", "py-import", "python-import")),
    _opt("shared-import", STR, "import a Python module (or run a .py "
         "file) in the master, before the workers fork", PYTHON,
         repeat=True, aliases=("shared-pyimport", "shared-py-import",
                               "shared-python-import")),
    _opt("py-autoreload", INT, "every N seconds, reload the instance if "
         "the file of a loaded module changed (for development)", PYTHON,
         default=0, needs_master=True, aliases=(
             "py-auto-reload", "python-autoreload", "python-auto-reload")),
    _opt("py-tracebacker", STR, "each worker tells the Python stacks of "
         "its threads on the unix socket named by this and its id (read "
         "them with connect-and-read)", PYTHON, needs_master=True),
    _opt("py-auto-reload-ignore", STR, "leave this module out of "
         "py-autoreload's look", PYTHON, repeat=True, needs_master=True),
    _opt("reload-os-env", FLAG, "before each app loads, copy the C "
         "library's environment into os.environ (a variable set with "
         "setenv() past Python is then seen)", PYTHON, default=False),
    _opt("skip-atexit", FLAG, "a worker ended by SIGINT or SIGTERM skips "
         "the app's atexit functions", PYTHON, default=False),
    _opt("skip-atexit-teardown", FLAG, "workers never run the app's "
         "atexit functions", PYTHON, default=False),
    _opt("catch-exceptions", FLAG, "answer an app's exception with a page "
         "describing it and the request's vars (for testing only)", PYTHON,
         default=False),
    _opt("wsgi-disable-file-wrapper", FLAG, "give the app no "
         "wsgi.file_wrapper", PYTHON, default=False),
    _opt("manage-script-name", FLAG, "take SCRIPT_NAME from the longest "
         "matching mountpoint and strip it from PATH_INFO", PYTHON,
         default=False),
    _opt("ignore-script-name", FLAG, "choose the app by UWSGI_APPID "
         "alone, not SCRIPT_NAME: a request without one goes to the app "
         "mounted at \"\", else the default app", PYTHON, default=False),
    _opt("no-default-app", FLAG, "answer a request no app is mounted for "
         "with an error, not with the default app", PYTHON, default=False),
    _opt("max-apps", INT, "the most apps a worker loads, configured and "
         "dynamic (UWSGI_SCRIPT, UWSGI_MODULE, UWSGI_FILE) together",
         PYTHON, default=64),
    _opt("vhost", FLAG, "virtual hosting: apps are mounted and chosen by "
         "HOST|SCRIPT_NAME (Host header, else SERVER_NAME)", PYTHON,
         default=False),
    _opt("vhost-host", FLAG, "the same as vhost (the Host header is "
         "preferred to SERVER_NAME either way)", PYTHON, default=False),
    # static files and offloading
    _opt("check-static", STR, "serve existing files from this directory",
         STATIC, repeat=True, aliases=("static-check",)),
    _opt("static-map", MAPPING, "serve the files under a directory (or one "
         "file) for the paths starting with a mountpoint, the mountpoint "
         "stripped (MOUNT=PATH)", STATIC, repeat=True),
    _opt("static-map2", MAPPING, "like static-map, the whole path "
         "appended to PATH", STATIC, repeat=True),
    _opt("static-cache-paths", INT, "keep the real path each static "
         "file's name resolves to in a cache for this many seconds (0: "
         "none), and serve that path while it is there", STATIC,
         default=0, needs_master=True),
    _opt("static-cache-paths-name", STR, "the cache static-cache-paths "
         "keeps the paths in (default: the first)", STATIC,
         needs_master=True),
    _opt("check-static-docroot", FLAG, "serve existing files from the "
         "directory each request names in its DOCUMENT_ROOT var (after "
         "check-static and the static maps)", STATIC, default=False),
    _opt("static-index", STR, "for a directory, serve the first of these "
         "files it holds", STATIC, repeat=True),
    _opt("static-safe", STR, "also serve static files whose real path is "
         "under this one", STATIC, repeat=True),
    _opt("static-skip-ext", STR, "never serve a static file whose path "
         "ends so (the app has the request)", STATIC, repeat=True),
    *(_opt(f"static-expires{name}", STR, f"add an Expires header to a "
           f"static file: {start} plus SECONDS, where {what}", STATIC,
           repeat=True)
      for name, start, what in (
          ("", "now", "the regexp finds the file's name (REGEXP SECONDS)"),
          ("-mtime", "its mtime", "the regexp finds the file's name"),
          ("-path-info", "now", "the regexp finds PATH_INFO"),
          ("-path-info-mtime", "its mtime", "the regexp finds PATH_INFO"),
          ("-uri", "now", "the regexp finds REQUEST_URI"),
          ("-uri-mtime", "its mtime", "the regexp finds REQUEST_URI"),
          ("-type", "now", "the file's type is TYPE (TYPE=SECONDS)"),
          ("-type-mtime", "its mtime", "the file's type is TYPE"),
      )),
    _opt("honour-range", FLAG, "answer a static file's Range header with "
         "the part asked for (206), or 416", STATIC, default=False),
    _opt("static-gzip-all", FLAG, "serve FILE.gz to clients accepting gzip",
         STATIC, default=False),
    _opt("static-gzip", STR, "serve FILE.gz (FILE.br) to clients accepting "
         "gzip (br), for the files whose real path this regexp finds",
         STATIC, repeat=True),
    _opt("static-gzip-dir", STR, "serve FILE.gz (FILE.br) to clients "
         "accepting gzip (br), for the files whose real path starts with "
         "this", STATIC, repeat=True, aliases=("static-gzip-prefix",)),
    _opt("static-gzip-ext", STR, "serve FILE.gz (FILE.br) to clients "
         "accepting gzip (br), for the files whose name ends with this",
         STATIC, repeat=True, aliases=("static-gzip-suffix",)),
    _opt("error-page-500", STR, "answer the server's own 500s (no app "
         "loaded, an app that failed) with the first of these HTML files "
         "that can be read", STATIC, repeat=True),
    _opt("error-page-404", STR, "answer the server's own 404s (a static: "
         "route without its file) with the first of these HTML files that "
         "can be read", STATIC, repeat=True),
    _opt("error-page-403", STR, "accepted for uWSGI configs: uWSGI's "
         "403s and 405s, which this page answers, come from plugins ugu "
         "has none of (cgi, php, webdav...), and ugu answers none itself",
         STATIC, repeat=True),
    _opt("file-serve-mode", STR, "answer a static file with a header "
         "naming it, for the web server in front to send: x-sendfile "
         "(Apache's X-Sendfile), x-accel-redirect or nginx (nginx's "
         "X-Accel-Redirect)", STATIC, aliases=("fileserve-mode",)),
    _opt("offload-threads", INT, "offload threads per worker", STATIC,
         default=0, aliases=("offload-thread",)),
    _opt("mimefile", STR, "mime types file", STATIC, repeat=True,
         aliases=("mime-file",)),
    # internal routing, in the order a request meets its tables: request
    # routes run before the app (or a static file), error routes on every
    # response head with its status, then response routes, final routes
    # once the response is sent, before its log line
    *_route_options("route", "request"),
    _opt("pcre-jit", FLAG, "compile regexps with PCRE's JIT where it has "
         "one: ugu's (Python's re) have none, so, as in a uWSGI whose "
         "PCRE lacks it, this changes nothing but a start-up line ('pcre "
         "jit disabled')", ROUTING, default=False),
    *_route_options("error-route", "error", status=True),
    *_route_options("response-route", "response", status=True),
    *_route_options("final-route", "final", status=True),
    _opt("collect-header", STR, "copy a response header into a request var "
         "(HEADER VAR)", ROUTING, repeat=True,
         aliases=("response-header-collect",)),
    _opt("add-header", STR, "add this header (Name: value) to every "
         "response, after the response routes", ROUTING, repeat=True),
    _opt("del-header", STR, "remove the header of this name from every "
         "response (but those add-header and routes add)", ROUTING,
         repeat=True, aliases=("rem-header",)),
    _opt("pull-header", STR, "move a response header into a request var "
         "(HEADER VAR)", ROUTING, repeat=True),
    # http router
    _opt("http", STR, "run an HTTP router on the address", HTTP,
         repeat=True, aliases=("httprouter",)),
    _opt("https", STR, "run an HTTPS router on the address, with a "
         "certificate and key (ADDR,CERT,KEY[,CIPHERS[,CA]]; !CA requires "
         "a client certificate)", HTTP, repeat=True),
    _opt("http-to-https", STR, "run an HTTP router address that "
         "redirects every request to https on the same host "
         "(ADDR[,PORT]: PORT named in the redirects)", HTTP, repeat=True),
    _opt("https-session-context", STR, "the name of the https "
         "listeners' TLS contexts in their lines (uWSGI's session id "
         "context: with the session cache off, only a name)", HTTP),
    _opt("https-export-cert", FLAG, "pass a client certificate to the app "
         "as PEM too (HTTPS_CC)", HTTP, default=False),
    _opt("http-to", STR, "forward router requests to this uwsgi node", HTTP,
         repeat=True),
    _opt("http-zerg", STR, "the HTTP router also serves the sockets of "
         "the zerg server at PATH (at the first start; a reload keeps "
         "them)", HTTP, repeat=True),
    _opt("http-processes", INT, "prefork this many HTTP router "
         "processes, sharing its sockets", HTTP, default=1,
         aliases=("http-workers",)),
    _opt("http-stats", STR, "run the HTTP router's stats server on the "
         "address (served by its first process)", HTTP,
         aliases=("http-stats-server", "http-ss")),
    _opt("http-use-pattern", STR, "the node of a request: this address "
         "with %s replaced by its Host", HTTP),
    _opt("http-use-base", STR, "the node of a request: this prefix "
         "followed by its Host", HTTP),
    _opt("http-use-socket", INT, "forward router requests to the "
         "instance's socket N (default 0: the first)", HTTP,
         optional=True),
    _opt("http-quiet", FLAG, "do not log the connects to nodes that fail",
         HTTP, default=False, optional=True, next_word=True),
    _opt("http-gracetime", INT, "seconds an http-to node that failed "
         "waits before it is tried again (0: the router's back-off, 1 s "
         "doubling to 30)", HTTP, default=0),
    _opt("http-server-name-as-http-host", FLAG, "SERVER_NAME is the "
         "request's Host rather than the machine's name", HTTP,
         default=False, optional=True, next_word=True),
    _opt("http-uid", STR, "the HTTP router's processes setuid to this "
         "user or uid", HTTP),
    _opt("http-gid", STR, "the HTTP router's processes setgid to this "
         "group or gid", HTTP),
    _opt("http-resubscribe", STR, "pass each announce the router's "
         "subscription server hears on to this subscription server, for "
         "the router's own address", HTTP, repeat=True),
    _opt("http-fallback", STR, "a node tried, in turn with the others, "
         "when a request's node refuses it or it has none", HTTP,
         repeat=True),
    _opt("http-keepalive", TOGGLE, "keep client connections open "
         "(true, or idle seconds)", HTTP, default=0, optional=True),
    _opt("http-websockets", FLAG, "relay a websocket's request to a node "
         "and then its raw bytes both ways", HTTP, default=False),
    _opt("http-raw-body", FLAG, "relay every request's body to its "
         "node as the client sends it, for as long as it sends (Icecast "
         "sources, websockets), and close the connection after", HTTP,
         default=False),
    _opt("http-auto-gzip", FLAG, "gzip responses marked 'uWSGI-Encoding: "
         "gzip'", HTTP, default=False),
    _opt("http-timeout", INT, "seconds to wait for a backend", HTTP,
         default=60),
    _opt("http-harakiri", INT, "the master kills (and respawns) a router "
         "process whose loop is stuck for more than this many seconds",
         HTTP, default=0),
    # None: the http-timeout value.
    _opt("http-connect-timeout", INT, "seconds to wait for a backend "
         "connection (default: http-timeout)", HTTP),
    _opt("http-headers-timeout", INT, "seconds to wait for a client's "
         "request headers (default: http-timeout)", HTTP),
    _opt("http-modifier1", INT, "modifier1 of requests sent to backends",
         HTTP, default=0),
    _opt("http-modifier2", INT, "modifier2 of requests sent to backends",
         HTTP, default=0),
    _opt("http-var", STR, "add a var to every routed request (KEY=VALUE)",
         HTTP, repeat=True),
    _opt("http-buffer-size", INT, "bytes the router reads from a client "
         "or backend at a time (its internal buffer size)", HTTP,
         default=65536, wide=True),
    _opt("http-enable-proxy-protocol", FLAG, "the router reads a PROXY "
         "(v1) line before a connection's first request: the client it "
         "names is REMOTE_ADDR and REMOTE_PORT", HTTP, default=False,
         optional=True),
    _opt("http-chunked-input", FLAG, "a chunked request's body goes to "
         "the node raw, as the client sends it, for uwsgi.chunked_read "
         "(the connection closes after); without it the router "
         "de-chunks it", HTTP, default=False),
    _opt("http-manage-expect", TOGGLE, "accepted for uWSGI configs: the "
         "router always answers 'Expect: 100-continue'; a number N > 1 "
         "also refuses such a request with a body over N bytes (413)",
         HTTP, default=0, optional=True, wide=True),
    _opt("http-auto-chunked", FLAG, "accepted for uWSGI configs: the "
         "router always chunk-encodes a response without a length for an "
         "HTTP/1.1 client, so keepalive survives it", HTTP, default=False),
    _opt("http-subscription-server", STR, "run a subscription server "
         "on the address (UDP HOST:PORT, or a unix datagram PATH): the "
         "router sends each request to the nodes subscribed for its Host",
         HTTP, repeat=True),
    _opt("http-cheap", FLAG, "accept no connection while no node is "
         "subscribed (with an http-subscription-server)", HTTP,
         default=False),
    _opt("http-events", INT, "accepted for uWSGI configs: the most "
         "events uWSGI's HTTP router takes per wait; gevent's loop takes "
         "every ready one", HTTP, default=64),
    _opt("http-stud-prefix", STR, "the router's clients from this IPv4 "
         "address (a TLS terminator such as stud --write-ip) send the "
         "client's family and address in 5 bytes before their first "
         "request: their requests get it as REMOTE_ADDR, and HTTPS on",
         HTTP, repeat=True),
    _opt("http-manage-source", FLAG, "a SOURCE request (Icecast's) opens "
         "a raw session, as with http-raw-body: its body relayed as the "
         "client sends it, the connection closed after the answer", HTTP,
         default=False),
    _opt("http-subscription-fallback-key", STR, "the subscription key "
         "whose nodes serve a request whose Host has none", HTTP),
    _opt("subscription-tolerance", INT, "seconds a subscribed node is "
         "kept without a new announce", HTTP, default=17),
    _opt("subscription-algo", STR, "how a router chooses the node of a "
         "subscribed pool: wrr (weighted round robin, the default), lrc "
         "(least connections open) or wlrc (lrc by weight)", HTTP),
    _opt("subscriptions-credentials-check", STR, "a folder where a key's "
         "file (the folder's path and the key end to end) must belong to "
         "the uid and gid of the instance subscribing to it",
         HTTP, repeat=True),
    _opt("subscriptions-use-credentials", FLAG, "a router's unix "
         "subscription server takes only announces with their sender's "
         "credentials (SCM_CREDENTIALS), and the instance sends its own "
         "with its announces to a unix server", CORE, default=False),
    _opt("subscriptions-sign-check", STR, "take only the announces signed "
         "by the private key of the subscribed key's public one "
         "(DIGEST:DIR, DIR holding KEY.pem; needs the cryptography "
         "package)", HTTP),
    _opt("subscriptions-sign-check-tolerance", INT, "seconds a signed "
         "announce may be old to open a pool or add a node", HTTP,
         default=86400),
    _opt("subscriptions-sign-skip-uid", STR, "a uid (known from unix "
         "socket credentials) whose announces need no signature", HTTP,
         repeat=True),
    _opt("subscription-dotsplit", FLAG, "a key without a pool falls back "
         "to what follows each of its dots (.example.com, .com)", HTTP,
         default=False),
    # fastrouter (uwsgi in, to a node chosen by the request's key)
    _opt("fastrouter", STR, "run the fastrouter on the address: it reads "
         "a uwsgi request and passes it to a node chosen by its key "
         "(SERVER_NAME, HTTP_HOST or UWSGI_FASTROUTER_KEY)", FASTROUTER,
         repeat=True),
    _opt("fastrouter-to", STR, "forward fastrouter requests to this uwsgi "
         "node (repeat it: the nodes take the requests in turn)",
         FASTROUTER, repeat=True),
    _opt("fastrouter-use-pattern", STR, "the node of a request: this "
         "address with %s replaced by the request's key", FASTROUTER),
    _opt("fastrouter-use-base", STR, "the node of a request: this "
         "prefix (a directory of unix sockets) followed by the request's "
         "key", FASTROUTER),
    _opt("fastrouter-subscription-server", STR, "run the fastrouter's "
         "subscription server on the address (UDP HOST:PORT, or a unix "
         "datagram PATH): each request goes to the nodes subscribed for "
         "its key", FASTROUTER, repeat=True),
    _opt("fastrouter-subscription-fallback-key", STR, "the subscription "
         "key whose nodes serve a request whose key has none",
         FASTROUTER),
    _opt("fastrouter-fallback", STR, "a node tried when the request's "
         "own cannot be reached (repeat it: tried in order)", FASTROUTER,
         repeat=True),
    _opt("fastrouter-fallback-on-no-key", FLAG, "a request whose key "
         "maps to no node goes to the fastrouter-fallback nodes",
         FASTROUTER, default=False),
    _opt("fastrouter-harakiri", INT, "the master kills (and respawns) a "
         "fastrouter process whose loop is stuck for more than this many "
         "seconds", FASTROUTER, default=0),
    _opt("fastrouter-timeout", INT, "seconds of silence from both the "
         "client and the node before the fastrouter ends a request (also "
         "the connect timeout; 0: 60)", FASTROUTER, default=0),
    _opt("fastrouter-gracetime", INT, "seconds a fastrouter-to node that "
         "failed waits before it is tried again (0: 30)", FASTROUTER,
         default=0),
    _opt("fastrouter-processes", INT, "prefork this many fastrouter "
         "processes", FASTROUTER, default=1,
         aliases=("fastrouter-workers",)),
    _opt("fastrouter-use-socket", INT, "pass fastrouter connections to "
         "the instance's socket N (default 0: the first)", FASTROUTER,
         optional=True),
    _opt("fastrouter-uid", STR, "the fastrouter's processes setuid to "
         "this user or uid", FASTROUTER),
    _opt("fastrouter-gid", STR, "the fastrouter's processes setgid to "
         "this group or gid", FASTROUTER),
    _opt("fastrouter-resubscribe", STR, "pass each announce the "
         "fastrouter's subscription server hears on to this subscription "
         "server, for the fastrouter's own address", FASTROUTER,
         repeat=True),
    _opt("fastrouter-resubscribe-bind", STR, "the UDP address the "
         "fastrouter-resubscribe announces are sent from", FASTROUTER),
    _opt("fastrouter-quiet", FLAG, "do not log the connects to nodes "
         "that fail", FASTROUTER, default=False),
    _opt("fastrouter-buffer-size", INT, "bytes the fastrouter reads at a "
         "time from a client or node (0: the page size)", FASTROUTER,
         default=0, wide=True),
    _opt("fastrouter-post-buffering", INT, "read a request body of up to "
         "this many bytes into memory (a larger one to a temporary file) "
         "before connecting to the node", FASTROUTER, default=0,
         wide=True),
    _opt("fastrouter-stats", STR, "run the fastrouter stats server on the "
         "address", FASTROUTER,
         aliases=("fastrouter-stats-server", "fastrouter-ss")),
    _opt("fastrouter-events", INT, "accepted for uWSGI configs: the most "
         "events uWSGI's fastrouter takes per wait; gevent's loop takes "
         "every ready one", FASTROUTER, default=64),
    _opt("fastrouter-cheap", FLAG, "accept no connection while no node is "
         "subscribed (with a fastrouter-subscription-server)", FASTROUTER,
         default=False),
    # rawrouter (a TCP proxy: bytes in, bytes out to a node)
    _opt("rawrouter", STR, "run the rawrouter on the address: a TCP "
         "proxy passing each connection to a node, its key being the "
         "address as written", RAWROUTER, repeat=True),
    _opt("rawrouter-to", STR, "pass rawrouter connections to this node "
         "(repeat it: the nodes take the connections in turn)",
         RAWROUTER, repeat=True),
    _opt("rawrouter-use-pattern", STR, "the node of a connection: this "
         "address with %s replaced by the rawrouter's address",
         RAWROUTER),
    _opt("rawrouter-use-base", STR, "the node of a connection: this "
         "prefix followed by the rawrouter's address", RAWROUTER),
    _opt("rawrouter-subscription-server", STR, "run the rawrouter's "
         "subscription server on the address (UDP HOST:PORT, or a unix "
         "datagram PATH): each connection goes to the nodes subscribed "
         "for the rawrouter's address", RAWROUTER, repeat=True),
    _opt("rawrouter-fallback", STR, "a node tried when the connection's "
         "own cannot be reached (repeat it: tried in order, each a "
         "retry)", RAWROUTER, repeat=True),
    _opt("rawrouter-max-retries", INT, "nodes tried after the first "
         "fails, fallback nodes included (0: 3)", RAWROUTER, default=0),
    _opt("rawrouter-harakiri", INT, "the master kills (and respawns) a "
         "rawrouter process whose loop is stuck for more than this many "
         "seconds", RAWROUTER, default=0),
    _opt("rawrouter-timeout", INT, "seconds of silence from both the "
         "client and the node before the rawrouter ends a connection "
         "(also the connect timeout; 0: 60)", RAWROUTER, default=0),
    _opt("rawrouter-gracetime", INT, "seconds a rawrouter-to node that "
         "failed waits before it is tried again (0: 30)", RAWROUTER,
         default=0),
    _opt("rawrouter-processes", INT, "prefork this many rawrouter "
         "processes", RAWROUTER, default=1,
         aliases=("rawrouter-workers",)),
    _opt("rawrouter-use-socket", INT, "pass rawrouter connections to "
         "the instance's socket N (default 0: the first)", RAWROUTER,
         optional=True),
    _opt("rawrouter-quiet", FLAG, "do not log the connects to nodes "
         "that fail", RAWROUTER, default=False),
    _opt("rawrouter-buffer-size", INT, "bytes the rawrouter reads at a "
         "time from a client or node (0: the page size)", RAWROUTER,
         default=0, wide=True),
    _opt("rawrouter-stats", STR, "run the rawrouter stats server on the "
         "address", RAWROUTER,
         aliases=("rawrouter-stats-server", "rawrouter-ss")),
    _opt("rawrouter-events", INT, "accepted for uWSGI configs: the most "
         "events uWSGI's rawrouter takes per wait; gevent's loop takes "
         "every ready one", RAWROUTER, default=64),
    _opt("rawrouter-cheap", FLAG, "accept no connection while no node is "
         "subscribed (with a rawrouter-subscription-server)", RAWROUTER,
         default=False),
    _opt("rawrouter-xclient", FLAG, "pass an IPv4 client's address to "
         "the node with the XCLIENT protocol (SMTP, Postfix): the node's "
         "first line is replaced by `XCLIENT ADDR=IP`", RAWROUTER,
         default=False),
    # sslrouter (TLS in, its bytes out to a node)
    _opt("sslrouter", STR, "run the sslrouter on ADDR,CERT,KEY[,CIPHERS"
         "[,CA]]: it ends the clients' TLS and passes their bytes to a "
         "node, its key being the address (or with sslrouter-sni the name "
         "the client asks for)", SSLROUTER, repeat=True),
    _opt("sslrouter2", STR, "run the sslrouter on addr=ADDR,cert=CERT,"
         "key=KEY[,ciphers=LIST][,clientca=CA]", SSLROUTER, repeat=True),
    _opt("sslrouter-sni", FLAG, "the key of a connection is the name "
         "its client asks for (SNI), when it gives one", SSLROUTER,
         default=False),
    _opt("sslrouter-session-context", STR, "the name of the sslrouter's "
         "TLS contexts in its lines (uWSGI's session id context: with "
         "the session cache off, only a name)", SSLROUTER),
    _opt("sslrouter-to", STR, "pass sslrouter connections to this node "
         "(repeat it: the nodes take the connections in turn)",
         SSLROUTER, repeat=True),
    _opt("sslrouter-use-pattern", STR, "the node of a connection: this "
         "address with %s replaced by the connection's key", SSLROUTER),
    _opt("sslrouter-use-base", STR, "the node of a connection: this "
         "prefix followed by the connection's key", SSLROUTER),
    _opt("sslrouter-subscription-server", STR, "run the sslrouter's "
         "subscription server on the address (UDP HOST:PORT, or a unix "
         "datagram PATH): each connection goes to the nodes subscribed "
         "for its key", SSLROUTER, repeat=True),
    _opt("sslrouter-fallback", STR, "a node tried when the connection's "
         "own cannot be reached (repeat it: tried in order, each a "
         "retry)", SSLROUTER, repeat=True),
    _opt("sslrouter-max-retries", INT, "nodes tried after the first "
         "fails, fallback nodes included (0: 3)", SSLROUTER, default=0),
    _opt("sslrouter-harakiri", INT, "the master kills (and respawns) a "
         "sslrouter process whose loop is stuck for more than this many "
         "seconds", SSLROUTER, default=0),
    _opt("sslrouter-timeout", INT, "seconds of silence from both the "
         "client and the node before the sslrouter ends a connection "
         "(also the connect and handshake timeout; 0: 60)", SSLROUTER,
         default=0),
    _opt("sslrouter-gracetime", INT, "seconds a sslrouter-to node that "
         "failed waits before it is tried again (0: 30)", SSLROUTER,
         default=0),
    _opt("sslrouter-processes", INT, "prefork this many sslrouter "
         "processes", SSLROUTER, default=1,
         aliases=("sslrouter-workers",)),
    _opt("sslrouter-use-socket", INT, "pass sslrouter connections to "
         "the instance's socket N (default 0: the first)", SSLROUTER,
         optional=True),
    _opt("sslrouter-quiet", FLAG, "do not log the connects to nodes "
         "that fail", SSLROUTER, default=False),
    _opt("sslrouter-buffer-size", INT, "bytes the sslrouter reads at a "
         "time from a client or node (0: the page size)", SSLROUTER,
         default=0, wide=True),
    _opt("sslrouter-stats", STR, "run the sslrouter stats server on the "
         "address", SSLROUTER,
         aliases=("sslrouter-stats-server", "sslrouter-ss")),
    _opt("sslrouter-events", INT, "accepted for uWSGI configs: the most "
         "events uWSGI's sslrouter takes per wait; gevent's loop takes "
         "every ready one", SSLROUTER, default=64),
    _opt("sslrouter-cheap", FLAG, "accept no connection while no node is "
         "subscribed (with a sslrouter-subscription-server)", SSLROUTER,
         default=False),
    # subscriptions (the instance's side)
    _opt("subscribe-to", STR, "subscribe to a router's subscription "
         "server ([ADDR=]SERVER:KEY[,MODIFIER1], or SERVER:@FILE of keys)",
         MASTER, repeat=True, needs_master=True,
         aliases=("st", "subscribe")),
    _opt("subscribe2", STR, "subscribe to a router's subscription server "
         "(server=SERVER,key=KEY[,addr=ADDR][,socket=N][,weight=N]"
         "[,modifier1=N][,modifier2=N][,check=FILE])", MASTER,
         repeat=True, needs_master=True),
    _opt("subscribe-freq", INT, "seconds between the subscription "
         "announces", MASTER, default=10),
    _opt("unsubscribe-on-graceful-reload", FLAG, "unsubscribe also at a "
         "graceful reload", MASTER, default=False),
    _opt("start-unsubscribed", FLAG, "send no subscription until the "
         "master fifo's S", MASTER, default=False),
    _opt("weight", INT, "the instance's weight in its subscriptions",
         MASTER, default=0, wide=True),
    _opt("auto-weight", TOGGLE, "the instance's weight in its "
         "subscriptions is its cores (processes times threads), over "
         "`weight` and a subscription's own", MASTER, default=0),
    _opt("subscribe-with-modifier1", STR, "the modifier1 of every "
         "announce, over each subscription's own", MASTER,
         needs_master=True),
    _opt("subscription-notify-socket", STR, "a unix datagram socket the "
         "announces name, to which a router tells of each new node "
         "([subscription ack] KEY => new node: ADDR)", MASTER,
         needs_master=True),
    _opt("fastrouter-subscription-slot", STR, "deprecated in uWSGI, "
         "logged and ignored as there", CORE),
    _opt("rawrouter-subscription-slot", STR, "deprecated in uWSGI, "
         "logged and ignored as there", CORE),
    # logging
    _opt("logger", STR, "send messages to a logger (file:PATH, fd:N, "
         "stdio, socket:ADDR, rsyslog:ADDR, syslog); NAME file:PATH names one, which takes only the lines "
         "log-route and log-req-route send it", LOGGING,
         repeat=True, needs_master=True),
    _opt("log-syslog", STR, "send messages to the local syslog "
         "(IDENT[,FACILITY], ident uwsgi, facility daemon): a `logger = "
         "syslog:ARGS` line", LOGGING, repeat=True, needs_master=True,
         optional=True, logger_kind="syslog"),
    _opt("log-socket", STR, "send each message as a datagram to a UDP "
         "HOST:PORT or a unix socket's path (ADDR[,PREFIX]): a `logger = "
         "socket:ADDR` line", LOGGING, repeat=True, needs_master=True,
         logger_kind="socket"),
    _opt("rsyslog-packet-size", INT, "the rsyslog logger's largest packet "
         "(default 1024, RFC 3164's limit)", LOGGING, default=0),
    _opt("rsyslog-split-messages", FLAG, "the rsyslog logger sends a "
         "message longer than a packet holds in several packets, rather "
         "than its head alone", LOGGING, default=False),
    _opt("log-master-bufsize", INT, "the longest message a socket, "
         "rsyslog or syslog logger sends (longer ones are cut)", LOGGING,
         default=8192, wide=True, minimum=1),
    _opt("log-master-stream", FLAG, "the socket, rsyslog and syslog "
         "loggers of messages read what the processes write as a stream, "
         "in pieces of log-master-bufsize, not write by write", LOGGING,
         default=False),
    _opt("log-master-req-stream", FLAG, "log-master-stream, for a "
         "req-logger", LOGGING, default=False),
    _opt("req-logger", STR, "send request lines to a logger (file:PATH)",
         LOGGING, repeat=True, needs_master=True,
         aliases=("logger-req",)),
    _opt("log-route", STR, "NAME REGEX: send the lines REGEX matches to "
         "the logger named NAME alone (turns the log master on)", LOGGING,
         repeat=True, needs_master=True),
    _opt("log-req-route", STR, "NAME REGEX: send the request lines REGEX "
         "matches to the logger named NAME alone; the others go to the "
         "req-logger, else the log", LOGGING, repeat=True,
         needs_master=True),
    _opt("disable-logging", FLAG, "do not log requests (but those the "
         "log-4xx, log-5xx, log-slow, log-big, log-zero, log-sendfile and "
         "log-ioerror options name)", LOGGING, default=False, short="L"),
    _opt("log-format", STR, "request lines in this format: %(name) tokens "
         "(uri, method, status, msecs, var.NAME...) in text", LOGGING,
         aliases=("logformat",)),
    _opt("log-format-strftime", FLAG, "%(ftime) in logdate's strftime "
         "format (without one, ftime is ltime)",
         LOGGING, default=False, aliases=("logformat-strftime",)),
    _opt("log-micros", FLAG, "the request line's response time in "
         "microseconds ('in N micros'), not milliseconds", LOGGING,
         default=False),
    _opt("memory-report", FLAG, "measure each worker's memory after "
         "every request, and log it in the request line", LOGGING,
         default=False, short="m"),
    _opt("log-x-forwarded-for", FLAG, "log the X-Forwarded-For header as "
         "the client's address", LOGGING, default=False),
    _opt("log-4xx", FLAG, "with disable-logging, still log 4xx responses",
         LOGGING, default=False),
    _opt("log-5xx", FLAG, "with disable-logging, still log 5xx responses",
         LOGGING, default=False),
    _opt("log-slow", INT, "with disable-logging, still log requests of "
         "this many milliseconds or more", LOGGING, default=0),
    _opt("log-big", INT, "with disable-logging, still log responses whose "
         "body has this many bytes or more", LOGGING, default=0,
         wide=True),
    _opt("log-zero", FLAG, "with disable-logging, still log responses "
         "without a body", LOGGING, default=False),
    # uWSGI 2.0 wants a value for these two (`--log-sendfile 1`).
    _opt("log-sendfile", FLAG, "with disable-logging, still log files "
         "sent by sendfile() (not those of an offload thread)", LOGGING,
         default=False, optional=True, next_word=True),
    _opt("log-ioerror", FLAG, "with disable-logging, still log requests "
         "whose body read and response write both failed", LOGGING,
         default=False, optional=True, next_word=True),
    _opt("logto", STR, "log to a file: messages, request lines and what "
         "the app prints", LOGGING),
    _opt("logto2", STR, "log to a file opened after privileges are "
         "dropped", LOGGING),
    _opt("daemonize", STR, "go to the background, logging to the file",
         LOGGING, short="d"),
    _opt("daemonize2", STR, "go to the background once the app is loaded, "
         "logging to the file", LOGGING),
    _opt("log-reopen", FLAG, "reopen the logto file after a reload",
         LOGGING, default=False),
    _opt("log-truncate", FLAG, "empty the logto file when opening it",
         LOGGING, default=False),
    _opt("touch-logrotate", STR, "rotate the logto file when this file is "
         "touched", LOGGING, repeat=True, needs_master=True),
    _opt("touch-logreopen", STR, "reopen the logto file when this file is "
         "touched", LOGGING, repeat=True, needs_master=True),
    _opt("log-maxsize", INT, "rotate the logto file once larger than this "
         "many bytes", LOGGING, default=0, needs_master=True,
         wide=True),
    _opt("log-backupname", STR, "name the rotated logto file this "
         "(default: its path, a dot and the time)", LOGGING),
    _opt("log-master", FLAG, "the master writes every line: the other "
         "processes write theirs into a pipe it reads", LOGGING,
         default=False, needs_master=True),
    _opt("log-drain", STR, "drop the lines this regexp matches (turns the "
         "log master on)", LOGGING, repeat=True, needs_master=True),
    _opt("log-filter", STR, "write only the lines one of these regexps "
         "matches (turns the log master on)", LOGGING, repeat=True,
         needs_master=True),
    _opt("log-encoder", STR, "rewrite every message with this encoder "
         "(prefix TEXT, suffix TEXT, nl, format TEMPLATE, json TEMPLATE, "
         "gzip, compress), after those before it (turns the log master "
         "on)", LOGGING, repeat=True, needs_master=True),
    _opt("log-req-encoder", STR, "rewrite every request line a "
         "req-logger writes with this encoder (as log-encoder's)",
         LOGGING, repeat=True, needs_master=True),
    _opt("threaded-logger", FLAG, "a thread of the master copies the "
         "other processes' lines to the log (turns the log master on)",
         LOGGING, default=False, needs_master=True),
    _opt("alarm", STR, "name an alarm (NAME KIND:ARGS): cmd:COMMAND runs "
         "it with the line on its stdin, signal:N raises uWSGI signal N, "
         "mule:N queues the line for mule N (0: any), log:TEXT logs it",
         LOGGING, repeat=True, needs_master=True),
    _opt("log-alarm", STR, "raise these alarms for the log lines this "
         "regexp matches (ALARM[,ALARM...] REGEXP; turns the log master "
         "on)", LOGGING, repeat=True, needs_master=True,
         aliases=("alarm-log",)),
    _opt("not-log-alarm", STR, "a log line this regexp matches raises "
         "no alarm of the log-alarm rules after this one (ALARM[,ALARM...] "
         "REGEXP)", LOGGING, repeat=True, needs_master=True,
         aliases=("not-alarm-log",)),
    _opt("alarm-freq", INT, "seconds an alarm waits before it is raised "
         "again for the same line", LOGGING, default=3),
    _opt("alarm-segfault", STR, "raise this alarm when a process of "
         "the instance dies of a segmentation fault", LOGGING,
         repeat=True, needs_master=True, aliases=("segfault-alarm",)),
    _opt("alarm-fd", STR, "raise this alarm with MESSAGE whenever FD is "
         "readable, reading SIZE bytes (1; 8 for an eventfd) each time "
         "(ALARM FD[:SIZE] MESSAGE)", LOGGING, repeat=True,
         needs_master=True),
    _opt("alarm-msg-size", INT, "the longest message an alarm is raised "
         "with by alarm-backlog, alarm-segfault and metric thresholds "
         "(longer: not raised), and by log-alarm under alarm-cheap "
         "(longer: cut)", LOGGING, default=8192, wide=True),
    # uWSGI 2.0 wants a value for it (`--alarm-cheap 1`): any but false,
    # off, no or 0 turns it on.
    _opt("alarm-cheap", STR, "log-alarm raises its alarms with the "
         "line cut to alarm-msg-size, as uWSGI's alarm thread reads it",
         LOGGING),
    _opt("alarm-backlog", STR, "raise this alarm when a socket's listen "
         "queue is full", LOGGING, repeat=True, needs_master=True,
         aliases=("backlog-alarm", "lq-alarm", "alarm-lq",
                  "alarm-listen-queue", "listen-queue-alarm")),
    _opt("logfile-chmod", CHMOD, "give the logto file this mode (three "
         "octal digits) once opened", LOGGING),
    _opt("logfile-chown", FLAG, "give the log file to uid and gid before "
         "dropping root", LOGGING, default=False),
    # None: undated; the bare option (or true, 1, on, yes) ctime's date.
    # log-prefix is the same option in uWSGI, its text a strftime format.
    _opt("logdate", STR, "prefix messages with the date, or with a "
         "strftime format", LOGGING, optional=True,
         aliases=("log-date", "log-prefix")),
    # emperor
    _opt("emperor", STR, "run the Emperor on a glob or directory", EMPEROR,
         repeat=True),
    _opt("emperor-freq", INT, "seconds between scans", EMPEROR, default=3),
    _opt("emperor-throttle", INT, "throttle step for bad vassals (ms)",
         EMPEROR, default=1000),
    _opt("emperor-max-throttle", INT, "longest throttle delay (ms)", EMPEROR,
         default=180000),
    _opt("early-emperor", FLAG, "start the Emperor beside the instance "
         "before its pre-jail hooks and privilege drop", EMPEROR,
         default=False),
    _opt("imperial-monitor-list", FLAG, "list the imperial monitors (the "
         "`emperor` schemes) as the instance starts", EMPEROR,
         aliases=("imperial-monitors-list",), default=False),
    _opt("hook-emperor-start", STR, "run an ACTION:ARGS hook in the "
         "Emperor as it starts (its failure ends the instance)", EMPEROR,
         repeat=True),
    _opt("hook-as-emperor", STR, "run an ACTION:ARGS hook in the Emperor "
         "after each vassal is spawned", EMPEROR, repeat=True),
    _opt("exec-as-emperor", STR, "run a shell command in the Emperor after "
         "each vassal is spawned, with UWSGI_VASSAL_CONFIG, _PID, _UID "
         "and _GID set", EMPEROR, repeat=True),
    _opt("hook-as-vassal", STR, "run an ACTION:ARGS hook in each vassal's "
         "process before it starts ugu (its failure ends the vassal)",
         EMPEROR, repeat=True),
    _opt("exec-as-vassal", STR, "run a shell command in each vassal's "
         "process before it starts ugu (its failure ends the vassal)",
         EMPEROR, repeat=True),
    _opt("emperor-broodlord", INT, "spawn up to N zerg vassals, each "
         "from the [zerg] section of the file of a vassal that calls for "
         "reinforcements (vassal-sos)", EMPEROR, default=0),
    _opt("emperor-no-blacklist", FLAG, "respawn dying vassals without "
         "throttling them", EMPEROR, default=False),
    _opt("emperor-curse-tolerance", INT, "seconds a vassal told to stop (or "
         "whose link broke) may take to die before SIGKILL", EMPEROR,
         default=30),
    # 0: 30 s for the Emperor's vassals, 3 s for a vassal's daemons.
    _opt("reload-mercy", INT, "seconds to wait for vassals (or the Emperor) "
         "to die at shutdown before SIGKILL, and for a vassal's daemons "
         "(default 30, for daemons 3)", EMPEROR, default=0),
    _opt("vassals-include", STR, "include a config template after each "
         "vassal's own config (--include)", EMPEROR, repeat=True),
    _opt("vassals-include-before", STR, "include a config template before "
         "each vassal's own config (--include)", EMPEROR, repeat=True),
    _opt("vassals-inherit", STR, "add a config template after each vassal's "
         "own config (--inherit)", EMPEROR, repeat=True),
    _opt("vassals-inherit-before", STR, "add a config template before each "
         "vassal's own config (--inherit)", EMPEROR, repeat=True),
    _opt("vassal-set", STR, "set an option (KEY=VALUE, via --set) for every "
         "vassal", EMPEROR, repeat=True, aliases=("vassals-set",)),
    _opt("emperor-required-heartbeat", INT, "seconds a vassal that sent a "
         "heartbeat may stay silent before it is respawned", EMPEROR,
         default=30),
    _opt("emperor-tyrant", FLAG, "run each vassal as the owner of its "
         "config file", EMPEROR, default=False),
    _opt("safe-fd", INT, "leave this file descriptor open where uWSGI "
         "closes all but its own: in each vassal the Emperor starts "
         "(ugu's reloads close none it inherited)", EMPEROR, repeat=True,
         aliases=("fd-safe",)),
    _opt("emperor-wrapper", STR, "run each vassal with this program (a "
         "name looked up in PATH, or a path) instead of this ugu, with "
         "the same arguments", EMPEROR),
    _opt("emperor-wrapper-override", STR, "try this program first to run "
         "each vassal, before emperor-wrapper (or this ugu)", EMPEROR,
         repeat=True),
    _opt("emperor-wrapper-fallback", STR, "try this program to run a "
         "vassal when emperor-wrapper (or this ugu) cannot be run",
         EMPEROR, repeat=True),
    _opt("emperor-nofollow", FLAG, "take a symlinked vassal file's mtime "
         "from the link, not from the file it points to", EMPEROR,
         default=False),
    _opt("emperor-tyrant-nofollow", FLAG, "emperor-tyrant: take the owner "
         "from a symlink, not from the file it points to", EMPEROR,
         default=False),
    _opt("emperor-procname", STR, "name the Emperor's process this",
         EMPEROR),
    _opt("emperor-graceful-shutdown", FLAG, "stop vassals gracefully: "
         "their workers finish the requests they run", EMPEROR,
         default=False),
    _opt("emperor-magic-exec", FLAG, "run an executable vassal file and "
         "read its output as the config (exec://FILE)", EMPEROR,
         default=False),
    _opt("emperor-on-demand-extension", STR, "on-demand vassals: the "
         "socket a vassal waits on is the first line of its file's name "
         "+ EXT", EMPEROR, aliases=("emperor-on-demand-ext",)),
    _opt("emperor-on-demand-directory", STR, "on-demand vassals: each "
         "waits on the unix socket DIR/NAME.socket (NAME: its file's name "
         "less the extension)", EMPEROR,
         aliases=("emperor-on-demand-dir",)),
    _opt("emperor-on-demand-exec", STR, "on-demand vassals: the socket a "
         "vassal waits on is the output of COMMAND \"FILE\"", EMPEROR),
    _opt("vassals-start-hook", STR, "run this program with the vassal's "
         "name before each vassal starts", EMPEROR),
    _opt("vassals-stop-hook", STR, "run this program with the vassal's "
         "name after each vassal dies", EMPEROR),
    _opt("emperor-stats", STR, "serve the Emperor's stats as JSON on ADDR "
         "(host:port or a unix path)", EMPEROR,
         aliases=("emperor-stats-server",)),
    _opt("udp", STR, "the master logs each packet that comes to this "
         "UDP address (HOST:PORT) as [udp:ADDR:PORT] PAYLOAD", MASTER,
         needs_master=True),
    # stats server (the master's, and the Emperor's format)
    _opt("stats", STR, "serve the instance's stats as JSON on ADDR "
         "(host:port or a unix path), one document per connection",
         MASTER, needs_master=True, aliases=("stats-server",)),
    _opt("stats-http", FLAG, "stats servers answer an HTTP request, "
         "with a response head before the JSON", MASTER, default=False,
         needs_master=True),
    _opt("stats-minified", FLAG, "stats servers write their JSON "
         "without indentation or newlines", MASTER, default=False,
         needs_master=True, aliases=("stats-min",)),
    _opt("stats-no-cores", FLAG, "leave each worker's cores out of the "
         "stats", MASTER, default=False, needs_master=True),
    _opt("stats-no-metrics", FLAG, "leave the metrics out of the stats",
         MASTER, default=False, needs_master=True),
    # metrics (each option but enable-metrics also turns them on, as in
    # uWSGI: see ugu/vassal/metrics.py)
    _opt("enable-metrics", FLAG, "enable the metrics subsystem", MASTER,
         default=False, needs_master=True),
    _opt("metric", STR, "add a custom metric (NAME, or KEY=VALUE,...: "
         "name, oid, type, collector, freq, initial_value, children, "
         "alias, arg1, arg1n, reset_after_push)", MASTER, repeat=True,
         needs_master=True),
    _opt("metric-threshold", STR, "add a metric threshold/alarm "
         "(key=METRIC,value=N[,alarm=NAME,rate=S,msg=TEXT,reset=N])",
         MASTER, repeat=True, needs_master=True,
         aliases=("metric-alarm", "alarm-metric")),
    _opt("metrics-dir", STR, "export metrics as text files to the "
         "specified directory", MASTER, needs_master=True,
         aliases=("metric-dir",)),
    _opt("metrics-dir-restore", FLAG, "restore last value taken from the "
         "metrics dir", MASTER, default=False, needs_master=True,
         aliases=("metric-dir-restore",)),
    _opt("metrics-no-cores", FLAG, "disable generation of cores-related "
         "metrics", MASTER, default=False, needs_master=True),
    # stats pushers (ugu/vassal/statspush.py)
    _opt("stats-push", STR, "push the metrics (socket:HOST:PORT[,PREFIX], "
         "statsd:HOST:PORT[,PREFIX]) or the stats JSON (file:path=PATH,"
         "separator=TEXT,freq=N) every few seconds; turns the metrics on",
         MASTER, repeat=True, needs_master=True),
    _opt("stats-pusher-default-freq", INT, "seconds between the pushes of "
         "a stats pusher that names no freq", MASTER, default=3,
         aliases=("stats-pushers-default-freq",)),
    # carbon (uWSGI's carbon plugin: ugu/vassal/carbon.py)
    _opt("carbon", STR, "push statistics to the specified carbon server "
         "(HOST:PORT)", MASTER, repeat=True, needs_master=True),
    _opt("carbon-timeout", INT, "set carbon connection timeout in seconds "
         "(default 3)", MASTER, default=0),
    _opt("carbon-freq", INT, "set carbon push frequency in seconds "
         "(default 60)", MASTER, default=0),
    _opt("carbon-id", STR, "set carbon id (default: the first socket's "
         "name, its dots made underscores)", MASTER),
    _opt("carbon-no-workers", FLAG, "disable generation of single worker "
         "metrics", MASTER, default=False),
    _opt("carbon-max-retry", INT, "set maximum number of retries in case "
         "of connection errors (default 0)", MASTER, default=0),
    _opt("carbon-retry-delay", INT, "set connection retry delay in seconds "
         "(default 7)", MASTER, default=0),
    _opt("carbon-root", STR, "set carbon metrics root node (default "
         "'uwsgi')", MASTER),
    _opt("carbon-hostname-dots", STR, "set char to use as a replacement "
         "for dots in hostname (dots are not replaced by default)",
         MASTER),
    _opt("carbon-name-resolve", FLAG, "allow using hostname as carbon "
         "server address (default disabled)", MASTER, default=False,
         aliases=("carbon-resolve-names",)),
    _opt("carbon-idle-avg", STR, "average values source during idle "
         "period (no requests), can be \"last\", \"zero\", \"none\" "
         "(default is last)", MASTER),
    _opt("carbon-use-metrics", FLAG, "push the metrics subsystem's values "
         "instead of the computed statistics (key names differ)", MASTER,
         default=False),
    _opt("emperor-pidfile", STR, "write the Emperor's pid to the file",
         EMPEROR),
    _opt("reload-on-fd", STR, "reload gracefully when the inherited "
         "descriptor is readable (FD[:SIZE][ MESSAGE]: SIZE bytes read "
         "each time, 1 by default; MESSAGE said)", MASTER, repeat=True,
         needs_master=True),
    _opt("brutal-reload-on-fd", STR, "reload brutally when the inherited "
         "descriptor is readable (FD[:SIZE][ MESSAGE], as reload-on-fd)",
         MASTER, repeat=True, needs_master=True),
    _opt("check-interval", INT, "set the interval (in seconds) of the "
         "master's checks: workers (harakiri, memory), touched files, "
         "cheaper, idle (default 1)", MASTER, default=0, minimum=0,
         needs_master=True),
    _opt("heartbeat", INT, "announce healthiness to the Emperor every N "
         "seconds", MASTER, default=0),
    _opt("vassal-sos", INT, "ask the Emperor for reinforcements (a zerg, "
         "in broodlord mode) while every worker is busy, at most once in "
         "N seconds", MASTER, default=0),
    _opt("vassal-sos-backlog", INT, "ask the Emperor for reinforcements "
         "each second a worker socket's listen queue holds N or more "
         "connections", MASTER, default=0),
)


def _index():
    by_name, by_short = {}, {}
    for opt in OPTIONS:
        for name in (opt.name, *opt.aliases):
            by_name[name] = opt
        if opt.short:
            by_short[opt.short] = opt
    return by_name, by_short


BY_NAME, BY_SHORT = _index()
_BUILT_IN_PLUGIN = re.compile(
    r"python3?[0-9]*|http|gevent|logfile|fastrouter|rawrouter|"
    r"sslrouter|corerouter")


def built_in_plugin(name):
    """Whether a uWSGI plugin name is one of ugu's parts: the Python plugin
    under any of its packaged names (python, python3, python311...), the
    HTTP router, the fastrouter, rawrouter and sslrouter (and
    corerouter, which they are in uWSGI), gevent and the file logger."""
    return bool(_BUILT_IN_PLUGIN.fullmatch(name))


def plugin_names(value):
    """The names of a `plugins` or `need-plugins` line, as uWSGI splits
    it."""
    return [n for n in re.split(r"[\s,]+", value) if n]


def missing_plugin(name):
    """Why plugin `name` cannot be loaded (not one ugu has built in)."""
    return (f"plugin '{name}' is not part of ugu: python, http, gevent "
            "and logfile are built in (remove the others from the line)")


def lookup(name):
    """The Option called `name` (or one of its aliases), else None."""
    return BY_NAME.get(name)


def _uwsgi_names():
    text = Path(__file__).with_name("uwsgi-names.txt").read_text()
    return frozenset(text.split())


UWSGI_NAMES = _uwsgi_names()
# uWSGI's one-letter options, so that one ugu lacks is refused by name.
UWSGI_SHORT = {
    "C": "chmod-socket", "J": "test",
    "L": "disable-logging", "M": "master", "O": "optimize",
    "R": "max-requests", "S": "set", "T": "enable-threads",
    "a": "abstract-socket", "b": "buffer-size", "c": "cgi-mode",
    "d": "daemonize", "h": "help", "i": "single-interpreter", "l": "listen",
    "m": "memory-report", "p": "processes", "r": "reaper", "s": "socket",
    "t": "harakiri", "v": "max-vars", "w": "module",
    "z": "socket-timeout",
}


def is_unimplemented_uwsgi_option(name):
    return name not in BY_NAME and name in UWSGI_NAMES


# What to write instead of a uWSGI option ugu lacks, where ugu has a way.
_INSTEAD = {
    "http-use-code-string": "ugu's routers run no plugin's code as a "
                            "mapper: use http-to, http-use-pattern, "
                            "http-use-base or a subscription server",
    **{f"{router}-use-code-string": "ugu's routers run no plugin's "
                                    "code as a mapper: use "
                                    f"{router}-to, -use-pattern or a "
                                    "subscription server"
       for router in ("fastrouter", "rawrouter", "sslrouter")},
    "ssl-verify-depth": "Python's ssl module cannot set OpenSSL's "
                        "verification depth: ugu verifies client "
                        "certificate chains to OpenSSL's default depth "
                        "(100); remove the option",
    "mem-collector-freq": "remove it: ugu's master reads each worker's "
                          "memory itself, once a second, for "
                          "evil-reload-on-rss and evil-reload-on-as",
    "propagate-touch": "it changes only how a worker ends when an app's "
                       "own touch-reload file (the UWSGI_TOUCH_RELOAD "
                       "var of a dynamic app) changes, which ugu does not "
                       "watch: remove it (touch-reload and "
                       "touch-workers-reload reload the instance or its "
                       "workers)",
    "backtrace-depth": "it sets the depth of the C backtrace uWSGI logs "
                       "when a process crashes (SIGSEGV); ugu's "
                       "processes log no such backtrace: remove it",
    "master-as-root": "ugu's master jails itself and drops to uid and "
                      "gid, before binding, and every process it forks "
                      "inherits that: remove it (hook-as-root and "
                      "exec-as-root still run as root, before the drop)",
    **dict.fromkeys(
        ("namespace", "ns", "namespace-keep-mount", "namespace-net",
         "ns-net"),
        "ugu does not clone() the instance into a namespace rooted at a "
        "folder yet: write `unshare = ipc,uts,mount` (net too for a "
        "network of its own) and `pivot-root = DIR DIR/old` or "
        "`chroot = DIR`, mounting what the folder needs in exec-post-jail"),
    **dict.fromkeys(
        ("setns", "setns-socket", "setns-socket-skip", "setns-skip",
         "setns-preopen"),
        "ugu neither joins nor hands out another instance's namespaces: "
        "start ugu under nsenter(1) to run it in them"),
    "ksm": "ugu does not mark its memory mergeable (Linux KSM) yet: "
           "remove it",
    "ftok": "it keys uWSGI's SysV semaphore locks (the ipcsem lock "
            "engine), and ugu's locks are not SysV semaphores: remove it",
    **dict.fromkeys(
        ("emperor-extra-extension", "emperor-extra-ext"),
        "uWSGI starts such a vassal with --config, which loads a file "
        "only through a plugin's configurator (lua or v8 programs; any "
        "other file ends the vassal with 'unable to load configuration'), "
        "and ugu has none: name the vassal files .ini, .xml, .yml, "
        ".yaml, .json or .js"),
    **dict.fromkeys(
        ("call-as-emperor", "call-as-emperor1", "call-as-emperor2",
         "call-as-emperor4"),
        "uWSGI calls a C function of its binary or plugins by name "
        "(dlsym), and ugu has none to call: run a command with "
        "exec-as-emperor, which gets the vassal's config, pid, uid and "
        "gid in UWSGI_VASSAL_CONFIG, _PID, _UID and _GID"),
    **dict.fromkeys(
        ("call-as-vassal", "call-as-vassal1", "call-as-vassal3"),
        "uWSGI calls a C function of its binary or plugins by name "
        "(dlsym), and ugu has none to call: run a command in the "
        "vassal's process with exec-as-vassal (or a hook-as-vassal "
        "action)"),
    **dict.fromkeys(
        ("mount-as-emperor", "umount-as-emperor", "mount-as-vassal",
         "umount-as-vassal"),
        "ugu makes no mount(2) call of its own (no hook's mount: action "
        "either): run mount(8) or umount(8) with exec-as-emperor, or "
        "exec-as-vassal in the vassal's process"),
    "emperor-use-clone": "uWSGI clone()s each vassal into the new Linux "
                         "namespaces its unshare flags name; ugu forks "
                         "vassals in the Emperor's own namespaces and "
                         "makes none: remove it, or start the whole "
                         "Emperor under unshare(1)",
    "emperor-proxy-socket": "it makes the vassal hand its Emperor link, "
                            "through a unix socket, to vassals in a jail "
                            "(chroot or namespace) that cannot inherit "
                            "it; ugu has no jails and its Emperor passes "
                            "each vassal its link itself: remove it",
    **dict.fromkeys(
        ("cache-udp-server", "cache-udp-node", "cache-sync"),
        "ugu's caches are local to the instance: it has no cache UDP "
        "servers or nodes to sync with (remove it)"),
    **dict.fromkeys(
        ("http-use-cache", "fastrouter-use-cache",
         "rawrouter-use-cache", "sslrouter-use-cache"),
        "ugu's routers answer nothing from a cache: remove it "
        "(`check-cache` answers requests from the cache in the workers)"),
    **dict.fromkeys(
        ("py-programname", "py-program-name"),
        "uWSGI gives the name to Python before it starts, which derives "
        "sys.prefix, sys.base_prefix, the standard library's folders on "
        "sys.path and sys._base_executable from it (sys.executable stays "
        "uWSGI's binary); ugu runs in the Python that started it, where "
        "they are already set: start ugu "
        "with the Python you name (`/venv/bin/python -m ugu`), or write "
        "`home = /venv` to put a virtualenv's packages on sys.path"),
    **dict.fromkeys(
        ("call-asap", "call-pre-jail", "call-post-jail", "call-in-jail",
         "call-as-root", "call-as-user", "call-as-user-atexit",
         "call-pre-app", "call-post-app"),
        "uWSGI calls a C function of its own binary or plugins by name, "
        "and ugu has no C functions to call: run a command with the "
        "phase's exec- option, or an action with its hook- option"),
    "config": "uWSGI loads it only through a plugin's configurator (lua "
              "or v8 programs), which ugu does not have; for an INI, "
              "YAML, XML or JSON file write `include = FILE`, or name it "
              "with ini, yaml, xml or json",
    **{f"{router}-zerg": "only ugu's HTTP router takes a zerg server's "
                         "sockets (`http-zerg = PATH`), and an instance's "
                         "workers (`zerg = PATH`): bind the address with "
                         f"`{router} = ADDR`"
       for router in ("fastrouter", "rawrouter", "sslrouter")},
    "python-raw": "uWSGI 2.0 runs the file where it loads the apps and "
                  "never calls the callable it finds there (it has no "
                  "raw mode to hand it connections): remove it, or "
                  "import the file with `import = FILE.py`",
    "no-site": "uWSGI starts its Python without importing site; ugu "
               "runs in a Python that has (ugu and its packages come "
               "from site-packages): remove it, and put what the app "
               "imports on sys.path with pythonpath or home",
    "dot-h": "it prints the uwsgi.h uWSGI was built with, for building "
             "its C plugins; ugu is Python and loads none: remove it",
    "web3": "Web3 (the withdrawn PEP 444) never became a standard and "
            "no framework serves it: wrap the callable as a WSGI app "
            "and load it with module",
    "wsgi-lite": "uWSGI 2.0 loads such an app but has no handler for its "
                 "requests: load it with module, as a WSGI app",
}


def unimplemented_message(name):
    """Why a uWSGI option is refused, and what to do about it."""
    fix = _INSTEAD.get(name, "remove the option to run without it")
    return f"this uWSGI option is not implemented by ugu yet; {fix}"
