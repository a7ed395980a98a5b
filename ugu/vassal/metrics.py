"""uWSGI's metrics: named 64-bit numbers, shared by every process of the
instance, that the master collects once a second and the stats server,
carbon and the apps read (`enable-metrics`, `metric`, ...).

The master registers them before it forks, in uWSGI 2.0's order and with
its names and oids: `core.*`, `worker.N.*` (N from 0, the instance, to
`processes`; with each worker's cores unless `metrics-no-cores`), the
totals over the workers, `socket.N.listen_queue`, the aliases `rss_size`
and `vsz_size`, then the `metric` lines.  Their values live in one
anonymous shared mapping made then, so a worker's `uwsgi.metric_inc()`
is seen by every process, and by the master's stats and carbon.  One
cross-process lock guards writes; its holder's pid is kept, so that the
master frees it when a process dies holding it (as the cache's).

A metric has a collector, or none (the apps set it).  The built-in ones
read what ugu's master already keeps (the scoreboard the workers write,
its records of spawns, the listen queues), where uWSGI reads its shared
worker table; a `metric` line may name `file` (a number in a file),
`sum`, `avg`, `accumulator`, `adder` or `multiplier` (over its
`children`).  `ptr` and `func` read C memory and C functions of the
uWSGI binary, which ugu has none of, and are refused.  uWSGI's collector
thread runs in ugu's master tick: a metric is collected every `freq`
seconds (1 by default), then its thresholds are checked.

With `metrics-dir` each metric has a file there, a page long, holding
its value as text.  uWSGI writes a file only when the collector changes
the value, so the files of the metrics the apps set stay empty, and
`metrics-dir-restore` gives their value back to none: ugu writes a file
whenever the value it shows differs from the file's, and restores it.
"""

import mmap
import operator
import os

import _multiprocessing

from ugu import log
from ugu.options.errors import ConfigError
from ugu.options.expand import atoi
from ugu.vassal import recycle

COUNTER, GAUGE, ABSOLUTE, ALIAS = range(4)
_TYPES = {"counter": COUNTER, "gauge": GAUGE, "absolute": ABSOLUTE,
          "alias": ALIAS}
# The options that turn the metrics on (uWSGI's UWSGI_OPT_METRICS).
OPTIONS = ("enable-metrics", "metric", "metric-threshold", "metrics-dir",
           "metrics-dir-restore", "metrics-no-cores", "stats-push")
_METRIC_KEYS = ("name", "oid", "type", "initial_value", "collector", "freq",
                "arg1", "arg2", "arg3", "arg1n", "arg2n", "arg3n",
                "children", "alias", "reset_after_push")
_THRESHOLD_KEYS = ("key", "value", "alarm", "rate", "msg", "reset")
_CHILDREN = ("sum", "accumulator", "adder", "multiplier", "avg")
_REFUSED_COLLECTORS = {
    "ptr": "it reads a C pointer into the uWSGI binary's memory, which "
           "only uWSGI's own metrics have (a `metric` line's is NULL, "
           "and uWSGI crashes on it): leave the collector out and set "
           "the metric from the app (uwsgi.metric_set)",
    "func": "it calls the C function named by arg1, looked up in the "
            "uWSGI binary, which ugu has none of: use collector=file, or "
            "set the metric from the app (uwsgi.metric_set)",
}
_NAME_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-_")
_INT64 = 1 << 64
_SEMAPHORE = 1
_PAGE = mmap.PAGESIZE


def wrap(number):
    """A Python int as C's int64_t arithmetic leaves it (wrapped)."""
    number %= _INT64
    return number - _INT64 if number >= _INT64 // 2 else number


def enabled(config):
    """Whether the instance has metrics: enable-metrics, or any other
    metric option given, as uWSGI turns them on."""
    return config["enable-metrics"] or any(
        config.is_set(name) for name in OPTIONS[1:])


class Threshold:
    def __init__(self, value, alarm=None, rate=0, msg=None, reset=None):
        self.value, self.alarm, self.rate = value, alarm, rate
        self.msg, self.reset = msg, reset
        self.last_alarm = 0


class Metric:
    def __init__(self, name):
        self.name = name
        self.oid = None
        self.type = COUNTER
        self.collector = None   # its name, or None: the apps set it
        self.source = None      # a built-in's: sample -> int
        self.freq = 1
        self.initial = 0
        self.children = []
        self.target = None      # an alias's metric
        self.arg1, self.arg1n = None, 0
        self.reset_after_push = False
        self.thresholds = []
        self.slot = 0
        self.last_update = 0
        self.map = None         # its page in metrics-dir
        self.written = None     # the value its file holds

    def register(self, oid, kind, collector, source=None, freq=0):
        """(Re)set what uWSGI's registration sets: a name registered
        again keeps its place and takes the new settings."""
        self.oid, self.type, self.collector = oid, kind, collector
        self.source, self.freq = source, freq or 1


class Metrics:
    """The instance's metrics, made by the master before it forks."""

    def __init__(self, config):
        self.all = []
        self._by_name = {}
        self.dir = None
        if config["metrics-dir"]:
            self.dir = _real_dir(config["metrics-dir"])
        self.no_cores = config["metrics-no-cores"]
        self.processes = config["processes"]
        # The master's load counters, updated at each pass of its loop
        # (uWSGI's uwsgi_update_load_counters), and its sockets' listen
        # queues, read each second.
        self.busy = self.idle = self.overloaded = 0
        self.queues = {}

    # -- registration (before the values are allocated) ------------------
    def add(self, name, oid, kind, collector, source=None, freq=0,
            listed=True):
        metric = self._by_name.get(name)
        if metric is None:
            metric = Metric(name)
            self._by_name[name] = metric
            if listed:
                self.all.append(metric)
        metric.register(oid, kind, collector, source, freq)
        if self.dir and metric.map is None:
            metric.map = _page(os.path.join(self.dir, name))
        return metric

    def append(self, metric):
        self.all.append(metric)

    def find(self, name):
        return self._by_name.get(name)

    def allocate(self, restore):
        """The shared values, one slot a metric (an alias shares its
        target's), then the initial values and, with restore, the last
        ones of metrics-dir."""
        self._shared = mmap.mmap(-1, 8 * (len(self.all) + 3))
        view = memoryview(self._shared)
        self.holder = view[:8].cast("q")
        # The signals routed and those that could not be, which every
        # process counts as it sends one (signals.send).
        self.signals = view[8:24].cast("q")
        self.values = view[24:].cast("q")
        for slot, metric in enumerate(self.all):
            metric.slot = slot
        for metric in self.all:
            if metric.type == ALIAS:
                metric.slot = metric.target.slot
                metric.oid = metric.target.oid
            if metric.initial:
                self.values[metric.slot] = metric.initial
        self.lock = _multiprocessing.SemLock(
            _SEMAPHORE, 1, 1, f"/ugu-metrics-{os.getpid()}-{id(self)}", True)
        if self.dir and restore:
            for metric in self.all:
                metric.initial = _restored(metric.map)
                if metric.collector is None and metric.type != ALIAS:
                    # Where uWSGI gives it back to no metric of the apps'.
                    self.values[metric.slot] = metric.initial

    # -- the lock -------------------------------------------------------
    def __enter__(self):
        self.lock.acquire()
        self.holder[0] = os.getpid()
        return self

    def __exit__(self, *exc):
        self.holder[0] = 0
        self.lock.release()

    def died(self, pid):
        """In the master: the lock a dead process held is free again."""
        if self.holder[0] == pid:
            self.__exit__()

    # -- reading and writing --------------------------------------------
    def value(self, metric):
        return self.values[metric.slot]

    def get(self, name):
        metric = self._by_name.get(name)
        return self.values[metric.slot] if metric else 0

    def update(self, name, operation, number):
        """Apply `operation` (new value from the current one and
        `number`) to an apps' metric; False for one that is not there,
        has a collector, or is an alias, as uWSGI refuses them."""
        metric = self._by_name.get(name)
        if metric is None or metric.collector or metric.type == ALIAS:
            return False
        with self:
            found = operation(self.values[metric.slot], number, metric)
            if found is not None:
                self.values[metric.slot] = wrap(found)
        return True

    def count_signal(self, sent):
        """A signal number was written to its process (or could not
        be): uWSGI counts it unlocked, as here."""
        index = 0 if sent else 1
        self.signals[index] = wrap(self.signals[index] + 1)

    def update_load(self, workers, busy):
        """The master's loop: `workers` the wids alive and not cheaped,
        `busy(wid)` whether one is in a request."""
        self.busy = sum(1 for wid in workers if busy(wid))
        self.idle = len(workers) - self.busy
        if self.busy >= self.processes:
            self.overloaded += 1

    def stats(self):
        """The stats document's "metrics", as uWSGI's."""
        return {m.name: {"type": m.type, "oid": m.oid or "",
                         "value": self.values[m.slot]} for m in self.all}

    def reset_after_push(self, metric, pushed):
        """Carbon has `pushed`: the metric back to its initial value,
        keeping what was counted since the value was taken."""
        with self:
            self.values[metric.slot] = wrap(
                metric.initial + self.values[metric.slot] - pushed)

    # -- the master's collector -------------------------------------------
    def announce(self):
        log.log("metrics collector thread started")

    def collect(self, master, now, alarms):
        """One pass of uWSGI's collector thread, from the master's tick:
        each metric due is collected, written to its file, and its
        thresholds checked."""
        sample = Sample(master, self)
        for metric in self.all:
            if not metric.last_update:
                metric.last_update = now
            elif now - metric.last_update < metric.freq:
                continue
            if metric.collector:
                found = self._collected(metric, sample)
                with self:
                    self.values[metric.slot] = wrap(metric.initial + found)
            new = self.values[metric.slot]
            metric.last_update = now
            if metric.map is not None and new != metric.written:
                _write_page(metric.map, new)
                metric.written = new
            for threshold in metric.thresholds:
                if new >= threshold.value:
                    self._crossed(metric, threshold, now, alarms)

    def _collected(self, metric, sample):
        kind = metric.collector
        if kind == "ptr":
            return metric.source(sample) if metric.source else 0
        if kind == "file":
            return _from_file(metric.arg1, metric.arg1n)
        values = [self.values[child.slot] for child in metric.children]
        if kind == "sum":
            return sum(values)
        if kind == "accumulator":
            return self.values[metric.slot] + sum(values)
        if kind == "adder":
            return sum(values) + metric.arg1n
        if kind == "multiplier":
            return sum(values) * metric.arg1n
        # avg: C's integer division, toward zero.
        if not values:
            return 0
        total = sum(values)
        return abs(total) // len(values) * (1 if total >= 0 else -1)

    def _crossed(self, metric, threshold, now, alarms):
        if threshold.reset is not None:
            with self:
                self.values[metric.slot] = threshold.reset
        if threshold.alarm and threshold.last_alarm + threshold.rate <= now:
            message = threshold.msg or metric.name
            alarms.trigger(threshold.alarm, message.encode())
            threshold.last_alarm = now


class Sample:
    """What one collector pass reads of the master, each worker's memory
    read once."""

    def __init__(self, master, metrics):
        self.master, self.metrics = master, metrics
        self.board = master.shared.scoreboard
        self._memory = {}

    def memory(self, wid):
        if wid not in self._memory:
            child = self.master.worker(wid)
            self._memory[wid] = recycle.memory(child.pid) if child \
                else (0, 0)
        return self._memory[wid]

    def traffic(self, wid):
        return self.board.traffic(wid)


_metrics = None


def instance():
    """The instance's Metrics, or None (in any of its processes)."""
    return _metrics


def create(config, listeners, cores):
    """Register and allocate the instance's metrics (in the master,
    before any fork), saying so as uWSGI does; None without metrics."""
    global _metrics
    if not enabled(config):
        return None
    found = Metrics(config)
    _builtin(found, config["processes"], cores, len(listeners))
    for metric in config.parsed(("metric",),
                                lambda _, value: _custom(found, value)):
        log.log(f"added custom metric: {metric.name}")
    found.allocate(config["metrics-dir-restore"])
    config.parsed(("metric-threshold",),
                  lambda _, value: _threshold(found, value, config))
    log.log(f"initialized {len(found.all)} metrics")
    if found.dir:
        size = len(found.all) * _PAGE
        log.log(f"memory allocated for metrics storage: {size} bytes "
                f"({size // 1024 // 1024} MB)")
    _metrics = found
    return found


def _builtin(found, workers, cores, sockets):
    """uWSGI 2.0's own metrics, in its order, with its oids (two of them
    3.N.13, as in uWSGI)."""
    add = found.add
    add("core.routed_signals", "5.1", COUNTER, "ptr",
        lambda s: s.metrics.signals[0])
    add("core.unrouted_signals", "5.2", COUNTER, "ptr",
        lambda s: s.metrics.signals[1])
    add("core.busy_workers", "5.3", GAUGE, "ptr", lambda s: s.metrics.busy)
    add("core.idle_workers", "5.4", GAUGE, "ptr", lambda s: s.metrics.idle)
    add("core.overloaded", "5.5", COUNTER, "ptr",
        lambda s: s.metrics.overloaded)
    totals = [add(name, oid, kind, collector, listed=False)
              for name, oid, kind, collector in (
                  ("core.total_tx", "5.100", COUNTER, "sum"),
                  ("core.total_rss", "5.101", GAUGE, "sum"),
                  ("core.total_vsz", "5.102", GAUGE, "sum"),
                  ("core.avg_response_time", "5.103", GAUGE, "avg"),
                  ("core.total_running_time", "5.104", COUNTER, "sum"))]
    total_tx, total_rss, total_vsz, avg_rt, running = totals
    for wid in range(workers + 1):
        for suffix, oid, kind, source, parent in _worker_metrics(
                wid, total_tx, total_rss, total_vsz, avg_rt, running):
            metric = add(f"worker.{wid}.{suffix}", f"3.{wid}.{oid}", kind,
                         "ptr", source)
            if wid and parent:
                parent.children.append(metric)
        if not wid or found.no_cores:
            continue
        for core in range(cores):
            for suffix, oid, index in _CORE_METRICS:
                add(f"worker.{wid}.core.{core}.{suffix}",
                    f"3.{wid}.2.{core}.{oid}", COUNTER, "ptr",
                    _core_source(wid, core, index))
    for metric in totals:
        found.append(metric)
    for index in range(sockets):
        add(f"socket.{index}.listen_queue", f"7.{index}.1", GAUGE, "ptr",
            lambda s, index=index: s.metrics.queues.get(index, 0))
    for name, target in (("rss_size", total_rss), ("vsz_size", total_vsz)):
        add(name, None, ALIAS, None).target = target


# A core's counts on the scoreboard: requests, static, offloaded, write
# errors, routed, exceptions (uWSGI counts no read errors in ugu: None).
_CORE_METRICS = (("requests", 1, 0), ("write_errors", 3, 3),
                 ("routed_requests", 4, 4), ("static_requests", 5, 1),
                 ("offloaded_requests", 6, 2), ("exceptions", 7, 5),
                 ("read_errors", 8, None))


def _core_source(wid, core, index):
    if index is None:
        return None
    return lambda s: s.board.core_counts(wid, core)[index]


def _worker_metrics(wid, total_tx, total_rss, total_vsz, avg_rt, running):
    """(name, oid, type, source, total) of worker `wid`'s metrics; worker
    0 is the instance, which counts only its requests."""
    if not wid:
        def requests(s):
            return s.board.total()
        def nothing(s):
            return 0
        sources = [requests] + [nothing] * 8
    else:
        sources = [
            lambda s: s.board.requests(wid),
            lambda s: s.traffic(wid)[0],
            None,   # uWSGI 2.0 never counts failed_requests
            lambda s: s.master.spawns.get(wid, (0, 0))[0],
            lambda s: s.traffic(wid)[3],
            lambda s: s.traffic(wid)[1],
            lambda s: s.memory(wid)[0],
            lambda s: s.memory(wid)[1],
            lambda s: s.traffic(wid)[2]]
    names = (("requests", 1, COUNTER, None),
             ("delta_requests", 2, ABSOLUTE, None),
             ("failed_requests", 13, COUNTER, None),
             ("respawns", 14, COUNTER, None),
             ("avg_response_time", 8, GAUGE, avg_rt),
             ("total_tx", 9, COUNTER, total_tx),
             ("rss_size", 11, GAUGE, total_rss),
             ("vsz_size", 12, GAUGE, total_vsz),
             ("running_time", 13, COUNTER, running))
    return [(name, oid, kind, source, parent)
            for (name, oid, kind, parent), source in zip(names, sources)]


def _keyvals(value, keys, what):
    """uWSGI's kvlist: KEY=VALUE items split at unescaped commas; ugu
    refuses a key uWSGI would skip."""
    from ugu.options.kvlist import split_escaped
    given = {}
    for item in split_escaped(value, ","):
        key, equal, text = item.partition("=")
        if not equal or key not in keys:
            raise ConfigError(f"'{item}' is not a {what} KEY=VALUE uWSGI "
                              f"knows ({', '.join(keys)})", option=what)
        given[key] = text
    return given


def _custom(found, value):
    """The Metric of a `metric` line (NAME, or KEY=VALUE,...)."""
    given = _keyvals(value, _METRIC_KEYS, "metric") if "=" in value \
        else {"name": value}
    name = given.get("name")
    if not name:
        raise ConfigError(f"you need to specify a metric name: {value}",
                          option="metric")
    _check_name(name)
    oid = given.get("oid")
    if oid is not None and not set(oid) <= set("0123456789."):
        raise ConfigError(f"invalid metric oid: {oid}", option="metric")
    kind = given.get("type", "counter")
    if kind not in _TYPES:
        raise ConfigError(f"invalid metric type: {kind} (counter, gauge, "
                          f"absolute or alias)", option="metric")
    collector = given.get("collector")
    if collector in _REFUSED_COLLECTORS:
        raise ConfigError(f"metric collector \"{collector}\": "
                          f"{_REFUSED_COLLECTORS[collector]}",
                          option="metric")
    if collector is not None and collector not in ("file", *_CHILDREN):
        raise ConfigError(f'unable to find metric collector "{collector}"',
                          option="metric")
    if collector == "file" and not given.get("arg1"):
        raise ConfigError(f"metric {name}: collector=file reads the file "
                          f"named by arg1 (add arg1=PATH)", option="metric")
    metric = found.add(name, oid, _TYPES[kind], collector,
                       freq=atoi(given.get("freq", "0")))
    metric.initial = wrap(atoi(given.get("initial_value", "0")))
    metric.reset_after_push = "reset_after_push" in given
    for child in filter(None, given.get("children", "").split(";")):
        metric.children.append(_existing(found, child))
    if "alias" in given:
        metric.target = _existing(found, given["alias"])
    if metric.type == ALIAS and metric.target is None:
        raise ConfigError(f'metric alias "{name}" requires a mapping !!! '
                          f"(add alias=METRIC)", option="metric")
    metric.arg1 = given.get("arg1")
    metric.arg1n = atoi(given.get("arg1n", "0"))
    return metric


def _check_name(name):
    if not set(name) <= _NAME_CHARS:
        raise ConfigError(f"invalid metric name: {name} (letters, digits, "
                          f"'.', '-' and '_' only)", option="metric")


def _existing(found, name):
    metric = found.find(name)
    if metric is None:
        raise ConfigError(f'unable to find metric "{name}"', option="metric")
    return metric


def _threshold(found, value, config):
    given = _keyvals(value, _THRESHOLD_KEYS, "metric-threshold")
    if not given.get("key") or "value" not in given:
        raise ConfigError(f"metric's threshold requires a key and a value: "
                          f"{value}", option="metric-threshold")
    metric = found.find(given["key"])
    if metric is None:
        raise ConfigError(f"unable to find metric {given['key']}",
                          option="metric-threshold")
    alarm = given.get("alarm")
    if alarm is not None and alarm not in _alarm_names(config):
        raise ConfigError(f'no alarm is named "{alarm}": add an `alarm = '
                          f'{alarm} KIND:ARGS` line (uWSGI raises '
                          f"nothing)", option="metric-threshold")
    threshold = Threshold(
        wrap(atoi(given["value"])), alarm, atoi(given.get("rate", "0")),
        given.get("msg"),
        wrap(atoi(given["reset"])) if "reset" in given else None)
    metric.thresholds.append(threshold)
    log.log(f"added threshold for metric {metric.name} (value: "
            f"{threshold.value})")


def _alarm_names(config):
    return {value.partition(" ")[0] for value in config["alarm"]}


def _real_dir(path):
    try:
        found = os.path.realpath(path, strict=True)
    except OSError as e:
        raise ConfigError(f"uwsgi_setup_metrics()/uwsgi_expand_path(): "
                          f"{e.strerror} ({path})",
                          option="metrics-dir") from None
    if not os.path.isdir(found):
        raise ConfigError(f"{path} is not a directory",
                          option="metrics-dir")
    return found


def _page(path):
    """The metric's file, a page long, mapped."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o640)
    except OSError as e:
        raise ConfigError(f'open("{path}"): {e.strerror}',
                          option="metrics-dir") from None
    try:
        if os.fstat(fd).st_size < _PAGE:
            os.ftruncate(fd, _PAGE)
        return mmap.mmap(fd, _PAGE)
    except OSError as e:
        raise ConfigError(f"unable to register metric: {path}: "
                          f"{e.strerror}", option="metrics-dir") from None
    finally:
        os.close(fd)


def _write_page(page, value):
    text = f"{value}\n".encode()
    page[:len(text)] = text
    page[len(text):] = bytes(_PAGE - len(text))


def _restored(page):
    return wrap(atoi(bytes(page).split(b"\0", 1)[0].decode("latin-1")))


def _from_file(path, position):
    """The `position`th blank-separated word of the file's first 4 KB, as
    a number (0 when it cannot be read), as uWSGI's file collector."""
    try:
        with open(path, "rb") as f:
            data = f.read(4096)
    except OSError as e:
        log.log(f'open("{path}"): {e.strerror} [core/metrics.c line 78]')
        return 0
    words = data.replace(b"\0", b" ").split()
    if not 0 <= position < len(words):
        return 0
    return wrap(atoi(words[position].decode("latin-1")))


# -- the `uwsgi` module's functions ------------------------------------------
# As uWSGI's: by position, the name a str ("s"), the number an int that
# fits a C long ("l", 1 when left out); True when done, None for a metric
# that is not there (or has a collector, or is an alias, or metrics are
# off); metric_get answers 0 for one that is not there.


def _arguments(function, args, kwargs, least):
    if kwargs:
        raise TypeError(f"{function}() takes no keyword arguments")
    most = 1 if function == "metric_get" else 2
    if most == 1 and len(args) != 1:
        raise TypeError(f"{function}() takes exactly 1 argument "
                        f"({len(args)} given)")
    if not least <= len(args) <= most:
        bound, limit = ("at least", least) if len(args) < least else \
            ("at most", most)
        raise TypeError(f"{function}() takes {bound} {limit} argument"
                        f"{'' if limit == 1 else 's'} ({len(args)} given)")
    name = args[0]
    if not isinstance(name, str):
        raise TypeError(f"{function}() argument 1 must be str, not "
                        f"{type(name).__name__}")
    if "\0" in name:
        raise ValueError("embedded null character")
    number = 1
    if len(args) > 1:
        number = operator.index(args[1])
        if not -(1 << 63) <= number < (1 << 63):
            raise OverflowError("Python int too large to convert to C long")
    return name, number


def _c_division(value, number, metric):
    # C's: toward zero.
    quotient = abs(value) // abs(number)
    return quotient if (value < 0) == (number < 0) else -quotient


_OPERATIONS = {
    "metric_set": lambda value, number, metric: number,
    "metric_inc": lambda value, number, metric: value + number,
    "metric_dec": lambda value, number, metric: value - number,
    "metric_mul": lambda value, number, metric: value * number,
    "metric_div": _c_division,
    "metric_set_max": lambda value, number, metric:
        number if number > value else None,
    # uWSGI's test: above the initial value and below the current one.
    "metric_set_min": lambda value, number, metric:
        number if metric.initial < number < value else None,
}


# What the route actions (metricinc...) apply, by the same names.
OPERATIONS = _OPERATIONS


def _api(function):
    operation = _OPERATIONS[function]

    def call(*args, **kwargs):
        name, number = _arguments(function, args, kwargs, 1)
        if function == "metric_div" and number == 0:
            return None     # as uWSGI's, no division by zero
        if _metrics is None or not _metrics.update(name, operation, number):
            return None
        return True
    call.__name__ = call.__qualname__ = function
    return call


def metric_get(*args, **kwargs):
    name, _ = _arguments("metric_get", args, kwargs, 1)
    return _metrics.get(name) if _metrics else 0


FUNCTIONS = {"metric_get": metric_get,
             **{name: _api(name) for name in _OPERATIONS}}
