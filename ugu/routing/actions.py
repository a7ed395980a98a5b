"""Route actions, registered by name as uWSGI names them, per phase.

An action is the `name:args` half of a rule.  Its factory is called once,
when the config is read, with the args text, and returns a function of the
request being routed (a `Request` before the app, a `Response` on the
response head).  That function returns None to go on with the next rule,
`STOP` to end routing, or a `Goto`.

Results follow uWSGI 2.0.  Before the app, `continue`/`last` end routing
and the request goes on; `break` ends the request (with `break:CODE text`
answering that status with an empty body), as do `return` and the
redirects, which answer it.  In the response phase `continue`/`last` end
routing and the response goes out; `break` drops the app's body, and
`break:CODE text` also replaces the app's status and headers.  Two things
differ, on purpose: `delheader` removes a header the app set, or an
earlier `addheader` added (uWSGI only filters later additions), and a
dropped body leaves `Content-Length: 0` behind, not the app's length, so
the framing holds.  `gzip` only counts a layer of compression, which the
worker applies to the body (ugu.vassal.transform); a response route's
`static:` names a file that goes out instead of the app's response (the
X-Sendfile emulation), served as a request route's is.

The error table (`error-route*`) runs on every response head, with the
status the response was given (whatever it is: uWSGI runs it whenever a
status is set), before collect-header and the response routes; it takes
the response phase's actions, and return and the redirects, whose answer
replaces the app's response.  The final table (`final-route*`) runs once
the response is sent, before the request's log line: only what still
means something then is taken (log, donotlog, the chain's own actions).
"""

import re

from ugu.http import status as http_status
from ugu.http.vars import path_info
from ugu.options.errors import ConfigError
from ugu.routing.template import Template

REQUEST = "request"
RESPONSE = "response"
ERROR = "error"
FINAL = "final"
ACTIONS = {REQUEST: {}, RESPONSE: {}, ERROR: {}, FINAL: {}}

# uWSGI 2.0's actions (its core's and its plugins'): those ugu does not run
# in a phase are named apart from unknown ones, so the message says what
# is missing.
UWSGI_ACTIONS = frozenset({
    "*", "+", "-", "/", "access", "addheader", "addvar", "alarm",
    "basicauth", "basicauth-next", "break", "break-with-status", "cache",
    "cache-continue", "cache-store", "cachedec", "cachediv", "cacheinc",
    "cachemul", "cacheset", "cachestore", "cachevar", "call", "cgi",
    "cgihelper", "chdir", "chunked", "clearheaders", "continue",
    "delheader", "disableheaders", "donotlog", "donotoffload", "expires",
    "fastfile", "fastfile-next", "file", "file-next", "fixcl",
    "fixpathinfo", "flush", "forcecl", "goto", "gridfs", "gzip",
    "harakiri", "hash", "http", "httpconnect", "httpdumb", "last",
    "ldapauth", "ldapauth-next", "log", "logvar", "memcached",
    "memcached-continue", "memcached-store", "memcachedstore", "metricdec",
    "metricdiv", "metricinc", "metricmul", "metricset", "offload",
    "proxyhttp", "proxyhttpconnect", "proxyuwsgi", "radius", "radius-next",
    "redirect", "redirect-301", "redirect-302", "redirect-permanent",
    "redis", "redis-continue", "redis-store", "redisstore", "remheader",
    "resetheaders", "return", "rewrite", "rewrite-last", "rpc", "rpcblob",
    "rpcnext", "rpcraw", "rpcret", "rpcvar", "send", "send-crnl",
    "sendfile", "sendfile-next", "setapp", "setdocroot", "setfile",
    "sethome", "setmethod", "setmodifier1", "setmodifier2", "setpathinfo",
    "setprocname", "setremoteaddr", "setscheme", "setscriptname", "seturi",
    "setuser", "signal", "spnego", "spnego-next", "ssi", "static",
    "static-next", "symcall", "symcall-next", "template", "to-file",
    "tofile", "toupper", "toxslt", "uwsgi", "xmldir", "xslt",
})

STOP = "stop"  # what continue, last and break return

# What uWSGI logs when a var does not fit in the request's buffer.
VARS_FULL = ("not enough buffer space to add {} variable, consider "
             "increasing it with the --buffer-size option")

_STATUS = re.compile(r"([0-9]{3})(?: (.*))?")
_FRAMING = frozenset({"content-length", "transfer-encoding"})
# The head uWSGI gives the answer of `break:CODE`, in either phase.
_BREAK_HEADERS = (("Connection", "close"), ("Content-Type", "text/plain"))


def not_implemented(name, phase):
    """Whether `name` is a uWSGI action that ugu does not run in `phase`."""
    return name in UWSGI_ACTIONS and name not in ACTIONS[phase]


class Goto:
    """An action's request to jump to the rule after `label`."""

    __slots__ = ("label",)

    def __init__(self, label):
        self.label = label


class Routed:
    """What both phases route: the request's vars and the headers the
    rules add to the response.

    `added` are the headers the rules appended (uWSGI writes them after
    the response's own).  `match` is the regexp match of the rule being
    run, if any.  `appended` are the vars added to the request, in order,
    `arrived` the values their names had in the request's own fields,
    which regexp rules match ("" for none), and `room` the bytes left for
    more in its buffer (None: no limit).  `gzip` counts the `gzip`
    actions met, each a layer of compression of the response's body.
    """

    __slots__ = ("vars", "added", "match", "log", "appended", "arrived",
                 "room", "gzip")

    def __init__(self, variables, log, room=None):
        self.vars = variables
        self.added = []
        self.appended = []
        self.arrived = {}
        self.room = room
        self.match = None
        self.log = log
        self.gzip = 0

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
        # Last in order too, as uWSGI appends it (wsgi.url_scheme, say,
        # takes the later of UWSGI_SCHEME and X-Forwarded-Proto).
        self.vars.pop(key, None)
        self.vars[key] = value
        self.appended.append((key, value))
        return True

    def set_field(self, key, value):
        """Append a var that the request's own field then points at (a
        `setpathinfo`): regexp rules match it from now on."""
        if not self.append_var(key, value):
            return False
        del self.arrived[key]
        return True

    def field(self, key):
        """The value of one of the request's own fields."""
        return self.arrived.get(key, self.vars.get(key, ""))

    def arrival_vars(self):
        """The request vars as the request's fields hold them, which
        uWSGI's regexp rules match (its `${VAR}` sees the latest value)."""
        if not self.arrived:
            return self.vars
        return {**self.vars, **self.arrived}


class Response(Routed):
    """A response head being routed; one per request.

    While the rules run, `headers` are the response's and `added` also
    holds what request routes added before.  Once finished, `headers`
    are the ones to send, `status` is None to keep the app's status line
    or the one to send instead ("403 Forbidden"), and without
    `send_body` the app's body must not be sent.  `file`, when a
    `static:` rule named one, is the path of the file to send instead of
    the app's response, and `headers` then only those that go after the
    file's own.  `coding_at` is where in `headers` a gzip layer's
    Content-Encoding goes: after the response's own, before the ones
    add-header and the rules add.
    """

    __slots__ = ("headers", "status", "send_body", "code", "body", "file",
                 "coding_at")

    def __init__(self, variables, headers, log, room=None, request=None,
                 code=0):
        super().__init__(variables, log, room)
        self.headers = headers
        self.status = None
        self.send_body = True
        self.body = None
        self.file = None
        self.coding_at = 0
        # The status code the response was given, which `-status` rules
        # of the error and response tables test.
        self.code = code
        if request is not None:
            self._follow(request)

    def _follow(self, request):
        """Go on from what the request routes did: their headers, the
        names they removed and the fields they moved."""
        self.added = list(request.added)
        self.arrived = dict(request.arrived)
        self.gzip = request.gzip
        if request.removed:
            self.headers = [h for h in self.headers
                            if h[0].lower() not in request.removed]

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
            # As in uWSGI, where the new head sets the request's status.
            self.code = int(status[:3])
            self.headers = list(_BREAK_HEADERS)

    def respond(self, status, headers, body):
        """Answer with this response instead of the app's (an error
        route's `return` or redirect): `body` takes the app's body's
        place."""
        self.abort(status)
        self.headers = list(headers)
        self.body = body

    def send_file(self, path):
        """Send this file instead of the app's response (X-Sendfile
        emulation): uWSGI serves it as a static file, whose head
        replaces the app's."""
        self.file = path

    def finish(self, removed=frozenset(), always=()):
        """Settle what to send and return self: the headers `removed`
        names (lower-case, del-header's) leave the response's own, then
        come the headers sent `always` (add-header's) and the ones the
        rules added, and a dropped body leaves the length of the `body`
        sent instead (0 without one).  A file to send keeps only the
        headers that go after its own."""
        own = [] if self.file is not None else self.headers
        if removed:
            own = [h for h in own if h[0].lower() not in removed]
        later = [*always, *self.added]
        if not self.send_body:
            own = [h for h in own if h[0].lower() not in _FRAMING]
            later = [h for h in later if h[0].lower() not in _FRAMING]
            length = len(self.body) if self.body is not None else 0
            later.append(("Content-Length", str(length)))
        self.coding_at = len(own)
        self.headers, self.added = [*own, *later], []
        return self


class Request(Routed):
    """A request being routed before the app; one per request.

    `removed` are the (lower-case) header names `delheader` took out of
    the response to come.  `ended` tells the request is over (`break`,
    `return`, a redirect, `static:`); `answer`, when it is, is the
    (status line, headers, body) to send, or `file` the path of the file
    to send (both None: nothing).  `quiet` stops its log line.  `stores`
    are the `cachestore` rules met (ugu.routing.backed.CacheStore), None
    for none.
    """

    __slots__ = ("removed", "ended", "answer", "file", "quiet", "stores")

    def __init__(self, variables, log, room=None):
        super().__init__(variables, log, room)
        self.removed = set()
        self.ended = False
        self.answer = self.file = self.stores = None
        self.quiet = False

    def remove(self, lowered_name):
        self.added = [h for h in self.added if h[0].lower() != lowered_name]
        self.removed.add(lowered_name)

    def abort(self, status=None):
        """End the request; with a status, answer it with an empty body."""
        self.ended = True
        if status:
            self.answer = (status, list(_BREAK_HEADERS), b"")

    def respond(self, status, headers, body):
        self.ended = True
        self.answer = (status, headers, body)

    def send_file(self, path):
        self.ended = True
        self.file = path


class Final(Routed):
    """A request whose response is over, routed by the final table.

    `code` is the status it was logged with; `quiet` stops its log
    line.  Nothing can change the response any more: a `break` only ends
    the chain."""

    __slots__ = ("code", "quiet")

    def __init__(self, variables, log, code):
        super().__init__(variables, log)
        self.code = code
        self.quiet = False

    def abort(self, status=None):
        """Nothing to drop: the response is sent."""


ALL = (REQUEST, RESPONSE, ERROR, FINAL)


def action(*names, phases=(REQUEST, RESPONSE, ERROR)):
    """Register an action factory under each of `names`, for `phases`."""
    def register(factory):
        for phase in phases:
            for name in names:
                ACTIONS[phase][name] = factory
        return factory
    return register


@action("addheader")
def addheader(args):
    if ":" not in args:
        raise ConfigError('addheader needs "Name: value"')
    template = Template(args)
    if template.static is not None:
        header = _header(template.static)
        return lambda r: r.added.append(header)

    def add(r):
        name, value = _header(r.expand(template))
        if "\r" in value or "\n" in value:
            # A value the request filled (a decoded %0D%0A in PATH_INFO)
            # would add headers of the client's choosing: refused as an
            # app's header with a line break is, with a 500.
            raise ValueError(f"invalid http header {name!r}")
        r.added.append((name, value))
    return add


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
    template = Template(value)

    def run(r):
        # As uWSGI: a var that does not fit ends routing, as break does.
        if not r.append_var(key, r.expand(template)):
            r.abort()
            return STOP
    return run


@action("log", phases=ALL)
def log(args):
    template = Template(args)

    def run(r):
        r.log(r.expand(template))
    return run


@action("continue", "last", phases=ALL)
def stop(args):
    return lambda r: STOP


@action("break", phases=ALL)
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


@action("goto", phases=ALL)
def goto(args):
    template = Template(args)
    if template.static is not None:
        jump = Goto(template.static)
        return lambda r: jump
    return lambda r: Goto(r.expand(template))


@action("gzip")
def gzip(args):
    # uWSGI reads no args, and goes on with the next rule.
    def run(r):
        r.gzip += 1
    return run


# --- request phase: what only a request on its way to the app can do (and,
# for the answers, an error route, which answers instead of the app) ---

@action("return", "break-with-status", phases=(REQUEST, ERROR))
def return_(args):
    phrase = http_status.known(args) if args.isdigit() and \
        len(args) == 3 else None
    if phrase is None:
        # uWSGI answers nothing for a code it has no phrase for.
        raise ConfigError(f'invalid status "{args}" for return (expected '
                          'a code uWSGI knows, e.g. "404")')
    if args[0] == "1" or args in ("204", "304"):
        # uWSGI's sends its phrase as the body all the same, which HTTP
        # does not carry: every such answer would be a 500.
        raise ConfigError(f"return:{args} answers with its phrase as the "
                          f"body, which a {args} cannot carry: write "
                          f"break:{args}, which answers with no body")
    answer = (f"{args} {phrase}", [("Content-Type", "text/plain"),
                                   ("Content-Length", str(len(phrase)))],
              phrase.encode("latin-1"))

    def run(r):
        r.respond(*answer)
        return STOP
    return run


def _redirect(status, body):
    def factory(args):
        template = Template(args)

        def run(r):
            r.respond(status, [("Location", r.expand(template))], body)
            return STOP
        return run
    return factory


action("redirect", "redirect-302", phases=(REQUEST, ERROR))(
    _redirect("302 Found", b"Moved"))
action("redirect-permanent", "redirect-301", phases=(REQUEST, ERROR))(
    _redirect("301 Moved Permanently", b"Moved Permanently"))


def _rewrite(last):
    def factory(args):
        template = Template(args)

        def run(r):
            path, question, query = r.expand(template).partition("?")
            # As uWSGI: a query string in the target comes first, the
            # request's own after it; without one the request's stays.
            kept = r.field("QUERY_STRING")
            if not question:
                query = kept
            elif kept:
                query = f"{query}&{kept}"
            decoded = path_info(path.encode("latin-1")).decode("latin-1")
            if not (r.set_field("PATH_INFO", decoded)
                    and r.set_field("QUERY_STRING", query)):
                r.abort()
                return STOP
            return STOP if last else None
        return run
    return factory


action("rewrite", phases=(REQUEST,))(_rewrite(last=False))
action("rewrite-last", phases=(REQUEST,))(_rewrite(last=True))


def _setter(key):
    """An action that points one of the request's fields at a new var."""
    def factory(args):
        template = Template(args)

        def run(r):
            # As uWSGI: a var that does not fit ends routing, as break does.
            if not r.set_field(key, r.expand(template)):
                r.abort()
                return STOP
        return run
    return factory


for _name, _key in (("setpathinfo", "PATH_INFO"), ("seturi", "REQUEST_URI"),
                    ("setmethod", "REQUEST_METHOD"),
                    ("setscriptname", "SCRIPT_NAME"),
                    ("setscheme", "UWSGI_SCHEME"),
                    ("setremoteaddr", "REMOTE_ADDR"),
                    ("setapp", "UWSGI_APPID"),
                    ("setdocroot", "DOCUMENT_ROOT")):
    action(_name, phases=(REQUEST,))(_setter(_key))


@action("donotlog", phases=(REQUEST, FINAL))
def donotlog(args):
    def run(r):
        r.quiet = True
    return run


# As a response route, X-Sendfile emulation: the file a header named
# (collect-header) goes out instead of the app's response.
@action("static", phases=(REQUEST, RESPONSE))
def static(args):
    template = Template(args)

    def run(r):
        r.send_file(r.expand(template))
        return STOP
    return run
