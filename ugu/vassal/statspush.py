"""uWSGI's stats pushers (`stats-push = KIND:ARGS`), of the kinds uWSGI
2.0 ships without extra libraries:

- `socket:HOST:PORT[,PREFIX]` sends each metric as a UDP datagram
  `PREFIX.NAME TYPE VALUE` (TYPE the metric's type as a number: 0
  counter, 1 gauge, 2 absolute, 3 alias; PREFIX uwsgi by default);
- `statsd:HOST:PORT[,PREFIX]` sends each metric in statsd's format,
  `PREFIX.NAME:VALUE|g` for a gauge, `|c` for any other type;
- `file:path=PATH,separator=TEXT,freq=N` appends the stats server's JSON
  document, then the separator (two newlines), to PATH (uwsgi.stats in
  the working folder), every N seconds.

A pusher runs a second after the master starts, then every
`stats-pusher-default-freq` seconds (3), or its own freq.  `stats-push`
turns the metrics on, as in uWSGI, and each metric whose
`reset_after_push` is set goes back to its initial value once pushed
(keeping what was counted meanwhile, as carbon's).

uWSGI pushes from a thread of its master; here the master's tick does,
as a datagram or an append to a file never waits.  uWSGI skips a socket
pusher whose address has no port (saying so at every push) and pushes
nothing to a host it cannot resolve; ugu refuses both before it starts.

Imported only where `stats-push` is configured.
"""

import os
import socket

from ugu import log
from ugu import stats as stats_format
from ugu.options.errors import ConfigError
from ugu.options.expand import atoi
from ugu.options.kvlist import split_escaped
from ugu.vassal import metrics as metrics_module
from ugu.vassal import stats

KINDS = ("socket", "statsd", "file")


class Pusher:
    def __init__(self, kind, freq):
        self.kind, self.freq = kind, freq
        self.last_run = 0


class _MetricsPusher(Pusher):
    def __init__(self, kind, freq, target, prefix):
        super().__init__(kind, freq)
        self.target, self.prefix = target, prefix.encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    def push(self, master):
        found = master.shared.metrics
        for metric in found.all:
            value = found.value(metric)
            try:
                self.sock.sendto(self.packet(metric, value), self.target)
            except OSError as e:
                log.log(f"{self.kind}_send_metric()/sendto(): {e.strerror}")
            if metric.reset_after_push:
                found.reset_after_push(metric, value)


class SocketPusher(_MetricsPusher):
    def packet(self, metric, value):
        return b"%s.%s %d %d" % (self.prefix, metric.name.encode(),
                                 metric.type, value)


class StatsdPusher(_MetricsPusher):
    def packet(self, metric, value):
        kind = b"|g" if metric.type == metrics_module.GAUGE else b"|c"
        return b"%s.%s:%d%s" % (self.prefix, metric.name.encode(), value,
                                kind)


class FilePusher(Pusher):
    def __init__(self, freq, path, separator, minified):
        super().__init__("file", freq)
        self.path, self.separator = path, separator.encode()
        self.minified = minified

    def push(self, master):
        data = stats_format.encode(stats.document(master), self.minified)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND,
                         0o640)
        except OSError as e:
            log.log(f"open(\"{self.path}\"): {e.strerror}")
            return
        try:
            os.write(fd, data + self.separator)
        except OSError as e:
            log.log(f"uwsgi_stats_pusher_file() -> write(): {e.strerror}")
        finally:
            os.close(fd)


class StatsPushers:
    """The instance's pushers, made before the master forks."""

    def __init__(self, pushers, default_freq):
        self.pushers = pushers
        self.default_freq = default_freq

    @classmethod
    def from_config(cls, config):
        pushers = [_pusher(spec, config) for spec in config["stats-push"]]
        if not pushers:
            return None
        return cls(pushers, config["stats-pusher-default-freq"])

    def tick(self, master, now):
        """Push what is due (`now`: whole seconds); the master's first
        tick is a second after it starts, when uWSGI's pusher thread
        first pushes."""
        for pusher in self.pushers:
            if pusher.last_run + (pusher.freq or self.default_freq) <= now:
                pusher.push(master)
                pusher.last_run = now


def _pusher(spec, config):
    kind, colon, arg = spec.partition(":")
    if kind not in KINDS:
        raise ConfigError(f"'{spec}': ugu has the stats pushers uWSGI 2.0 "
                          f"ships without extra libraries: "
                          f"{', '.join(KINDS)} (\"{kind}\" is not one)",
                          option="stats-push")
    if kind == "file":
        return _file(spec, arg if colon else "", config)
    address, comma, prefix = arg.partition(",")
    host, colon, port = address.partition(":")
    if not colon:
        raise ConfigError(f"'{spec}': invalid {kind} address "
                          f"'{address}' (write {kind}:HOST:PORT, then "
                          "optionally ,PREFIX)", option="stats-push")
    if host:
        try:
            host = socket.gethostbyname(host)
        except OSError:
            raise ConfigError(f"'{spec}': cannot resolve '{host}' to an "
                              "IPv4 address", option="stats-push") \
                from None
    target = (host or "0.0.0.0", atoi(port) % 65536)
    made = SocketPusher if kind == "socket" else StatsdPusher
    return made(kind, 0, target, prefix if comma else "uwsgi")


def _file(spec, arg, config):
    keys = {}
    for item in split_escaped(arg, ",") if arg else ():
        key, eq, value = item.partition("=")
        if not eq or key not in ("path", "separator", "freq"):
            # uWSGI's kvlist refuses the item, and the pusher then
            # crashes it at its first push.
            raise ConfigError(f"'{spec}': '{item}' is not one of "
                              "path=PATH, separator=TEXT, freq=SECONDS",
                              option="stats-push")
        keys[key] = value
    return FilePusher(atoi(keys.get("freq", "0")),
                      keys.get("path") or "uwsgi.stats",
                      keys.get("separator") or "\n\n",
                      config["stats-minified"])
