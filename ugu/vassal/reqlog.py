"""Which finished requests get a log line, and how it reads.

Decided once, when a worker starts: the default line (`log.request_line`,
after the worker's memory under `memory-report`) unless `log-format` is
set, for every request unless `disable-logging`, which then still logs
the requests its exceptions name (`log-4xx`, `log-slow`...).  Without
these options the worker runs the default line's code and nothing more.

A `log-format` is compiled into one Python function: its text between
`%(name)` tokens goes into a %-template, each token into an expression of
the request, so that a line costs one formatting, as the default's does.
"""

import os
import time

from ugu import log
from ugu.options.sources import as_sent
from ugu.routing.rules import request_host
from ugu.vassal import metrics

_DEFAULT_STRFTIME = "%d/%b/%Y:%H:%M:%S %z"
# uWSGI formats dates into 64 bytes: a longer one is empty (so "-").
_STRFTIME_ROOM = 63
_MEGABYTE = 1024 * 1024

# Tokens read from the request as they came (empty ones are logged "-").
_TEXT = {
    "uri": "r.uri", "method": "r.method", "user": "r.remote_user",
    "addr": "r.remote_addr", "proto": "r.protocol",
    "host": "f.request_host(r.vars)",
    "uagent": "r.vars.get('HTTP_USER_AGENT')",
    "referer": "r.vars.get('HTTP_REFERER')",
}
# Tokens that are numbers (or dates, never empty): `now` is the time the
# line is written, `mem` the worker's memory then, `f` this module's
# helpers.
_FIGURES = {
    "status": "r.status", "rsize": "r.body_size", "hsize": "r.header_size",
    "size": "r.header_size + r.body_size", "cl": "f.post_cl(r)",
    # The line's times all end at `now`, so that they agree.
    "micros": "f.micros(r, now)", "msecs": "f.micros(r, now) // 1000",
    "secs": "'%f' % (f.micros(r, now) / 1e6)",
    "tmsecs": "int(r.start * 1e6) // 1000", "tmicros": "int(r.start * 1e6)",
    "time": "int(r.start)", "ctime": "time.ctime(int(r.start))",
    "ltime": "(f.ltime(r.start) or '-')",
    "ftime": "(f.ftime(r.start) or '-')", "epoch": "int(now)",
    "pid": "r.pid", "wid": "f.wid",
    "switches": "r.switches", "vars": "r.vars_count", "core": "r.core",
    "vsz": "mem[0]", "rss": "mem[1]",
    "vszM": "mem[0] // f.MEGABYTE", "rssM": "mem[1] // f.MEGABYTE",
    "pktsize": "r.vars_size", "modifier1": "r.modifier1",
    "modifier2": "r.modifier2", "headers": "r.header_count",
    "werr": "r.write_errors", "rerr": "f.read_errors(r)",
    "ioerr": "r.write_errors + f.read_errors(r)",
}


def chunks(fmt):
    """The format's parts, in order: ("text", TEXT) or ("token", NAME).

    Read as uWSGI reads it, quirks included: `%(` opens a token only
    when a character other than `)` follows, `%%(uri)` is a `%` and
    the uri, and a token never closed ends the line with the format's
    tail from the last closed token on, after the text before it."""
    parts, state, start, token = [], "text", 0, None
    for i, char in enumerate(fmt):
        if char == "%":
            if state == "text":
                state = "percent"
        elif char == "(":
            if state == "percent":
                state = "open"
        elif char == ")":
            if token is not None:
                parts.append(("token", fmt[token:i]))
                state, token, start = "text", None, i + 1
        else:
            if state == "open":
                parts.append(("text", fmt[start:i - 2]))
                token = i
            state = "text"
    if len(fmt) > start:
        parts.append(("text", fmt[start:]))
    return parts


class _Helpers:
    """What the compiled line reads beyond the request itself."""

    MEGABYTE = _MEGABYTE
    request_host = staticmethod(request_host)

    def __init__(self, wid, date_format, measures_memory):
        self.wid = wid
        self._date_format = date_format
        self._measures_memory = measures_memory
        # (second, its ltime text): a busy worker logs many requests
        # within one second, and strftime() is most of a line's cost.
        self._last_ltime = (None, "")

    @staticmethod
    def micros(r, now):
        return max(int((now - r.start) * 1e6), 0)

    @staticmethod
    def post_cl(r):
        return r.input.length if r.input is not None else 0

    @staticmethod
    def read_errors(r):
        return r.input.read_errors if r.input is not None else 0

    def ltime(self, start):
        second, text = self._last_ltime
        if second != int(start):
            second = int(start)
            text = _strftime(_DEFAULT_STRFTIME, second)
            self._last_ltime = (second, text)
        return text

    def ftime(self, start):
        return _strftime(self._date_format, start)

    def memory(self):
        """(vsz, rss) in bytes: uWSGI measures them after each request
        only for memory-report and the reload-on-rss family; otherwise
        they stay 0."""
        if not self._measures_memory:
            return 0, 0
        return process_memory()


def process_memory():
    """This process's (vsz, rss) in bytes, from /proc/self/stat."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return int(fields[20]), int(fields[21]) * os.sysconf("SC_PAGE_SIZE")


def _strftime(fmt, when):
    text = time.strftime(fmt, time.localtime(int(when)))
    return text if len(text) <= _STRFTIME_ROOM else ""


def compile_format(fmt, wid, date_format=None, measures_memory=False):
    """A function of a finished request: its line in `log-format` fmt.

    `date_format` is what `%(ftime)` uses (logdate's, under
    logformat-strftime); without it ftime is ltime, as in uWSGI."""
    template, values, names = [], [], {}
    for kind, text in chunks(fmt):
        if kind == "text":
            # Written as the bytes the config holds: the line is latin-1.
            template.append(as_sent(text).replace("%", "%%"))
            continue
        template.append("%s")
        values.append(_expression(text, names))
    helpers = _Helpers(wid, date_format or _DEFAULT_STRFTIME,
                       measures_memory)
    body = ["now = time.time()"]
    if any("mem[" in value for value in values):
        body.append("mem = f.memory()")
    body.append(f"return TEMPLATE % ({''.join(v + ', ' for v in values)})")
    source = "def line(r):\n" + "".join(f"    {line}\n" for line in body)
    namespace = {"TEMPLATE": "".join(template), "f": helpers, "time": time,
                 **names}
    exec(source, namespace)
    return namespace["line"]


def _expression(token, names):
    """The Python expression of a token; names it refers to (var and
    logvar names, kept out of the source) are added to `names`."""
    if token in _FIGURES:
        return _FIGURES[token]
    if token in _TEXT:
        return f"({_TEXT[token]} or '-')"
    name = f"NAME{len(names)}"
    if token.startswith("var."):
        names[name] = token[4:]
        return f"(r.vars.get({name}) or '-')"
    if token.startswith("metric."):
        # As uWSGI: 0 for one that is not there, or without metrics.
        names[name] = token[7:]
        names["METRIC"] = _metric
        return f"METRIC({name})"
    names[name] = token
    return f"((r.logvars or {{}}).get({name}) or '-')"


def _metric(name):
    found = metrics.instance()
    return str(found.get(name)) if found else "0"


def request_logger(config, wid):
    """The worker's request logger, a function of a finished request;
    None when no request is ever logged."""
    write = log.request_writer(_line_of(config, wid))
    if not config["disable-logging"]:
        return write
    tests = _exceptions(config)
    if not tests:
        return None

    def write_exceptions(r):
        if any(test(r) for test in tests):
            write(r)
    return write_exceptions


def forced_logger(config, wid):
    """The logger of a request that must be logged whatever
    disable-logging and its exceptions say (uwsgi.log_this_request())."""
    return log.request_writer(_line_of(config, wid))


def _line_of(config, wid):
    fmt = config["log-format"]
    # As uWSGI: memory-report and the reload-on-rss family measure the
    # worker after each request; log-format's vsz and rss are 0 otherwise.
    measures_memory = config["memory-report"] or any(
        config[name] for name in ("reload-on-rss", "reload-on-as",
                                  "evil-reload-on-rss", "evil-reload-on-as"))
    if fmt is not None:
        # As uWSGI: ftime is ltime but under logformat-strftime, with a
        # logdate that names a format.
        date_format = None
        if config["log-format-strftime"]:
            date_format = log.logdate_format()
        return compile_format(fmt, wid, date_format, measures_memory)
    line = (log.request_line_micros if config["log-micros"]
            else log.request_line)
    if config["memory-report"]:
        line = _with_memory_report(line)
    if config["vhost"] or config["vhost-host"]:
        return _with_vhost(line)
    return line


def _with_vhost(line):
    """The default line after the request's virtual host, as uWSGI
    writes it under vhost."""
    def line_with_host(r):
        return f"{request_host(r.vars)} {line(r)}"
    return line_with_host


def _with_memory_report(line):
    """The default line after the worker's memory, as memory-report has
    uWSGI write it."""
    def line_with_memory(r):
        vsz, rss = process_memory()
        return (f"{{address space usage: {vsz} bytes/{vsz // _MEGABYTE}MB}}"
                f" {{rss usage: {rss} bytes/{rss // _MEGABYTE}MB}} "
                f"{line(r)}")
    return line_with_memory


def _exceptions(config):
    """What each of disable-logging's exceptions that is set logs anyway,
    as uWSGI tests them: a body of 0 bytes, a time in milliseconds or a
    body size from the limit up, a file sent by sendfile() (not by an
    offload thread), and both a read and a write failed."""
    tests = []
    if config["log-zero"]:
        tests.append(lambda r: r.body_size == 0)
    if config["log-slow"]:
        slow = config["log-slow"]
        tests.append(lambda r: r.msecs >= slow)
    if config["log-4xx"]:
        tests.append(lambda r: 400 <= r.status <= 499)
    if config["log-5xx"]:
        tests.append(lambda r: 500 <= r.status <= 599)
    if config["log-big"]:
        big = config["log-big"]
        tests.append(lambda r: r.body_size >= big)
    if config["log-sendfile"]:
        tests.append(lambda r: r.via == "sendfile")
    if config["log-ioerror"]:
        tests.append(lambda r: r.write_errors > 0 and r.input is not None
                     and r.input.read_errors > 0)
    return tests
