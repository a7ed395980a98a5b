"""Response-phase route actions, registered by name as uWSGI names them.

An action is the `name:args` half of a rule.  Its factory is called once,
when the config is read, with the args text, and returns a function of the
request's `Response`.  That function returns None to go on with the next
rule, `STOP` to end routing, or a `Goto`.

Results follow uWSGI 2.0 in the response phase: `continue`/`last` end
routing and the response goes out; `break` ends routing and drops the
app's body, and `break:CODE text` also replaces the app's status and
headers.  Two things differ, on purpose: `delheader` removes a header the
app set (uWSGI only filters later additions), and a dropped body leaves
`Content-Length: 0` behind, not the app's length, so the framing holds.
"""

import re

from ugu.http import status as http_status
from ugu.options.errors import ConfigError
from ugu.routing.template import Template

ACTIONS = {}

# uWSGI 2.0 actions that ugu does not run in the response phase (yet):
# named apart from unknown ones, so the message says what is missing.
NOT_IMPLEMENTED = frozenset({
    "return", "logvar", "donotlog", "clearheaders", "setpathinfo", "seturi",
    "setmethod", "setscriptname", "setdocroot", "setscheme", "setapp",
    "chdir", "signal", "send", "harakiri", "fixcl", "redirect",
    "redirect-302", "redirect-permanent", "redirect-301", "rewrite",
    "rewrite-last", "static", "uwsgi", "http", "basicauth", "cache",
    "cachestore", "gzip", "expires",
})

STOP = "stop"  # what continue, last and break return

# What uWSGI logs when a var does not fit in the request's buffer.
VARS_FULL = ("not enough buffer space to add {} variable, consider "
             "increasing it with the --buffer-size option")

_STATUS = re.compile(r"([0-9]{3})(?: (.*))?")
_FRAMING = frozenset({"content-length", "transfer-encoding"})


class Goto:
    """An action's request to jump to the rule after `label`."""

    __slots__ = ("label",)

    def __init__(self, label):
        self.label = label


class Response:
    """A response head being routed; one per request.

    While the rules run, `headers` are the app's and `added` those the
    rules appended: uWSGI writes the added ones after the app's, and
    `break:CODE` keeps only them.  `match` is the regexp match of the rule
    being run, if any.  `appended` are the vars added to the request, in
    order, `arrived` the values those vars had before ("" for none), and
    `room` the bytes left for more in its buffer (None: no limit).  Once finished, `headers` are the ones to send,
    `status` is None to keep the app's status line or the one to send
    instead ("403 Forbidden"), and without `send_body` the app's body
    must not be sent.
    """

    __slots__ = ("vars", "headers", "added", "match", "status", "send_body",
                 "log", "appended", "arrived", "room")

    def __init__(self, variables, headers, log, room=None):
        self.vars = variables
        self.headers = headers
        self.added = []
        self.appended = []
        self.arrived = {}
        self.room = room
        self.match = None
        self.status = None
        self.send_body = True
        self.log = log

    def expand(self, template):
        return template.expand(self.vars, self.match)

    def append_var(self, key, value):
        """Add a request var as uWSGI appends one to the request's buffer
        (a name met again is another var, the last one read): False, and
        uWSGI's log line, when it does not fit."""
        if self.room is not None:
            size = 4 + len(key) + len(value)
            if size > self.room:
                self.log(VARS_FULL.format(key))
                return False
            self.room -= size
        self.arrived.setdefault(key, self.vars.get(key, ""))
        self.vars[key] = value
        self.appended.append((key, value))
        return True

    def arrival_vars(self):
        """The request vars as the request brought them, which uWSGI's
        regexp rules match (its `${VAR}` sees the latest value)."""
        if not self.arrived:
            return self.vars
        return {**self.vars, **self.arrived}

    def remove(self, lowered_name):
        """Drop every header with this (lower-case) name."""
        self.headers = [h for h in self.headers
                        if h[0].lower() != lowered_name]
        self.added = [h for h in self.added if h[0].lower() != lowered_name]

    def abort(self, status=None):
        """Send no body; with a status, the rules' headers replace the app's
        response, as uWSGI answers it."""
        self.send_body = False
        if status:
            self.status = status
            self.headers = [("Connection", "close"),
                            ("Content-Type", "text/plain")]

    def finish(self):
        """Settle what to send and return self: the added headers follow
        the app's, and a dropped body leaves `Content-Length: 0`."""
        headers = self.headers + self.added
        if not self.send_body:
            headers = [h for h in headers if h[0].lower() not in _FRAMING]
            headers.append(("Content-Length", "0"))
        self.headers, self.added = headers, []
        return self


def action(*names):
    """Register an action factory under each of `names`."""
    def register(factory):
        for name in names:
            ACTIONS[name] = factory
        return factory
    return register


@action("addheader")
def addheader(args):
    if ":" not in args:
        raise ConfigError('addheader needs "Name: value"')
    template = Template(_as_sent(args))
    if template.static is not None:
        header = _header(template.static)
        return lambda r: r.added.append(header)
    return lambda r: r.added.append(_header(r.expand(template)))


def _as_sent(text):
    """Config text as the latin-1 str of its UTF-8 bytes, the form of a
    request var and of a PEP 3333 header: what it adds goes out as the
    bytes written in the file."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def _header(text):
    name, _, value = text.partition(":")
    return name, value.lstrip(" \t")


@action("delheader", "remheader")
def delheader(args):
    if not args:
        raise ConfigError("delheader needs a header name")
    template = Template(args)
    return lambda r: r.remove(r.expand(template).lower())


@action("addvar")
def addvar(args):
    key, eq, value = args.partition("=")
    if not eq:
        raise ConfigError("invalid addvar syntax, must be KEY=VAL")
    template = Template(_as_sent(value))

    def run(r):
        # As uWSGI: a var that does not fit ends routing, as break does.
        if not r.append_var(key, r.expand(template)):
            r.abort()
            return STOP
    return run


@action("log")
def log(args):
    template = Template(args)

    def run(r):
        r.log(r.expand(template))
    return run


@action("continue", "last")
def stop(args):
    return lambda r: STOP


@action("break")
def break_(args):
    # uWSGI does not expand the status text, so neither do we.
    status = _status(args) if args else None

    def run(r):
        r.abort(status)
        return STOP
    return run


def _status(text):
    m = _STATUS.fullmatch(text)
    if m is None:
        raise ConfigError(f'invalid status "{text}" for break (expected '
                          '"CODE" or "CODE Reason")')
    code, reason = m.groups()
    # uWSGI completes a bare code with its reason phrase.
    return f"{code} {reason or http_status.reason(code)}"


@action("goto")
def goto(args):
    template = Template(args)
    if template.static is not None:
        jump = Goto(template.static)
        return lambda r: jump
    return lambda r: Goto(r.expand(template))
