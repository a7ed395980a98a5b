"""One request inside a worker: static file or WSGI app, then the log line.

An Exchange holds a request's vars, the response as the app shapes it, and
the figures of uWSGI's request log line.  Its transport puts bytes on the
wire: raw HTTP for the uwsgi protocol (the response ends when the worker
closes), h11 for an http-socket.
"""

import errno
import os
import sys
import time

from ugu import log, staticanswer
from ugu.http.errors import PAGES, Unsendable
from ugu.vassal import app as apps, appexit, ranges, routestores, wsgi
from ugu.vassal.static import Unanswered
from ugu.vassal.transform import Layers
from ugu.vassal.transport import HeadSent

SERVER_ERROR = "500 Internal Server Error"
NO_APP_BODY = b"Internal Server Error"
# uWSGI's answer when no app is loaded ("full dynamic mode"), as it sends it.
NO_APP_HEADERS = [("Connection", "close"), ("Content-Type", "text/plain")]
BODY_TYPES = (bytes, bytearray, memoryview)
ERROR_HEADERS = [("Content-Type", "text/plain")]
# A `static:` route's answer for a file it cannot send (`return:404`'s).
NOT_FOUND = ("404 Not Found", [("Content-Type", "text/plain"),
                               ("Content-Length", "9")], b"Not Found")
# The app's exception for a response that could not be written, as
# uWSGI words it.
WRITE_ERROR = OSError("write error")
PARTIAL_CONTENT = "206 Partial Content"
RANGE_NOT_SATISFIABLE = "416 Requested Range Not Satisfiable"
# uWSGI's names for a failed write, with the source lines its log shows.
WRITEV_HEAD_AND_BODY = ("uwsgi_response_writev_headers_and_body_do()", 306)
WRITE_HEAD = ("uwsgi_response_write_headers_do()", 248)
WRITE_BODY = ("uwsgi_response_write_body_do()", 429)
# The rest of a first chunk whose head went with part of it (HeadSent).
WRITE_BODY_AFTER_HEAD = ("uwsgi_response_write_body_do()", 341)
SENDFILE = ("uwsgi_response_sendfile_do()", 655)


class ClientWriteError(OSError):
    """The client (the router, a front server or a browser) took no more
    of the response: reset, gone or silent past socket-timeout."""

    def __init__(self, call, error):
        super().__init__(error.errno, error.strerror or str(error))
        self.call, self.error = call, error

    def log(self, ex):
        """One line, as uWSGI's writer words it (`ignore-write-errors`
        keeps all but a timeout's quiet, as in uWSGI); the request's log
        line counts the failure (werr) either way."""
        ex.write_errors += 1
        if self.errno == errno.EPIPE and ex.ctx.sigpipe:
            ex.ctx.sigpipe.client_gone(ex)
        name, line = self.call
        if isinstance(self.error, TimeoutError):
            log.log(f"{name} TIMEOUT !!!")
        elif not ex.ctx.ignore_write_errors:
            log.verbose(f"{name}: {self.strerror} [core/writer.c line "
                        f"{line}] during {ex.method} {ex.uri} "
                        f"({ex.remote_addr})")


class Exchange:
    """A request and its response; also the record its log line reads."""

    app = None
    app_id = -1
    app_requests = -1
    via = ""
    switches = 0
    write_errors = 0
    # The uwsgi packet's modifiers, as log-format names them: uWSGI logs
    # modifier1 30 as 0 once the app runs (and, through a uwsgi socket,
    # ugu always does).
    modifier1 = modifier2 = 0
    # The router offered to repeat a static file's answer
    # (ugu.staticanswer).
    offered = False
    # Values the log line names (log-format's other tokens), set with
    # set_logvar(); None until one is.
    logvars = None
    status = 0
    header_count = 0
    header_size = 0
    body_size = 0
    # A response route's `break` dropped the app's body: the log line
    # counts none of it, as uWSGI's does (a HEAD's body counts, as there).
    body_dropped = False
    # Whether the response routes see the response: the server's own 500
    # for a failed app is not one uWSGI would send, nor route.
    routed = True
    # The app's write() failed: the client is gone, and the rest of the
    # response is dropped unsaid.
    write_failed = False
    # What the request routes did (a routing.actions.Request), if they ran.
    routed_request = None
    # The body of an error route's answer, which replaces the app's.
    answer = None
    # For the stats server's per-core counts.
    static = False
    routed_end = False
    # The `gzip` actions the routes met, and where their Content-Encoding
    # goes in the routed head; `gzip` is their Layers once the body
    # started with them.
    _gzip_layers = 0
    _coding_at = 0
    gzip = None
    # A response route's `static:` file (X-Sendfile emulation), and once
    # it is being sent, the headers the routes left to go after its own.
    _routed_file = None
    _after_file = None

    # The vars collect-header and pull-header make of the headers given
    # to start_response, found there.
    _copied = None
    # The request's websocket (ugu.vassal.websocket), once the app
    # called a uwsgi.websocket_* function.
    websocket = None
    # Its chunk reader (ugu.vassal.chunked), once the app called
    # uwsgi.chunked_read or chunked_read_nb.
    chunked_input = None

    def __init__(self, ctx, core, transport, request_vars, vars_count,
                 vars_size, wsgi_input):
        self.ctx, self.core, self.transport = ctx, core, transport
        self.vars = request_vars
        self.vars_count, self.vars_size = vars_count, vars_size
        self.input = wsgi_input
        if wsgi_input is not None:
            wsgi_input.request_vars = request_vars
        self.start = time.time()
        self.pid = ctx.pid
        self.method = request_vars.get("REQUEST_METHOD", "")
        # Whether the client asked for the head alone: the method as it
        # arrived, which setmethod does not change (it changes what the
        # app and the log line see, not what the client waits for).
        self.asked_head = self.method == "HEAD"
        self.uri = request_vars.get("REQUEST_URI", "")
        self.protocol = request_vars.get("SERVER_PROTOCOL", "")
        self.remote_addr = request_vars.get("REMOTE_ADDR", "")
        self.remote_user = request_vars.get("REMOTE_USER", "")
        self._status_line = None
        self._headers = None
        self.headers_sent = False

    # -- the WSGI callables -------------------------------------------
    def start_response(self, status, headers, exc_info=None):
        # Once the head has gone, uWSGI raises its own error whether or
        # not exc_info is given (the app's exception is its context).
        if self.headers_sent:
            raise OSError("headers already sent")
        status_line = wsgi.check_status(status)
        headers = wsgi.check_headers(headers)
        if self.offered:
            headers = staticanswer.unforged(headers)
        if not wsgi.head_fits(self.protocol, status_line, headers,
                              self.ctx.head_limit):
            raise TypeError("unable to add header to the response")
        routing, copied = self.ctx.routing, None
        if routing.copies and self.routed:
            # As uWSGI: a header copied to a var that does not fit in the
            # request's buffer is refused as it is added.
            copied = routing.copied_vars(headers, self.routed_request)
            if not routing.fit(copied, self.ctx.buffer_size - self.vars_size):
                raise TypeError("unable to add header to the response")
        self._status_line, self._headers = status_line, headers
        self._copied = copied
        return self.app_write

    def start_response_nodelay(self, status, headers, exc_info=None):
        """The app's start_response under `start_response-nodelay`: the
        head goes at once, before any body (and without it, so with no
        length the server could have taken from a whole body)."""
        app_write = self.start_response(status, headers, exc_info)
        try:
            self.send_head(body_follows=True)
        except ClientWriteError as e:
            e.log(self)
            self.write_failed = True
            raise OSError("unable to directly send headers") from None
        return app_write

    def write(self, data):
        if not isinstance(data, BODY_TYPES):
            raise TypeError(f"write() takes bytes, not "
                            f"{type(data).__name__}")
        if not self.headers_sent:
            data = self.send_head(data, body_follows=True)
        elif data:
            if self.gzip is not None:
                data = self.gzip.chunk(data)
            self._write_body(data)
        if not self.body_dropped:
            self.body_size += len(data)

    def _write_body(self, data):
        try:
            self.transport.write(data)
        except OSError as e:
            raise ClientWriteError(WRITE_BODY, e) from None

    def app_write(self, data):
        """The write() start_response() gives the app.  As in uWSGI, the
        first write that fails is logged and each one after it fails
        without a word; the app sees OSError("write error"), or nothing
        under `disable-write-exception` or `write-errors-tolerance`."""
        if not self.write_failed:
            try:
                self.write(data)
                return
            except ClientWriteError as e:
                self.write_failed = True
                e.log(self)
        if not self.ctx.write_callable_goes_on:
            raise OSError("write error")

    # -- sending ----------------------------------------------------------
    def waited(self):
        """The client's socket was full and the core waited for room:
        uWSGI counts each such wait of sendfile() among the switches."""
        self.switches += 1

    def send_head(self, first_chunk=b"", body_follows=False,
                  file_follows=False):
        """Send the head, with the body's `first_chunk`; `body_follows`
        tells that the app may write more, `file_follows` that a file's
        sendfile() comes next, unless the head goes alone (HEAD, a
        body the routes dropped).  Returns the body bytes the head went
        with (the chunk as the routes' gzip left it)."""
        if self._status_line is None:
            raise RuntimeError("the app returned without calling "
                               "start_response")
        headers, head_only = self._headers, self.asked_head
        if self._after_file is not None:
            headers = [*headers, *self._after_file]
        elif self.ctx.routing.active:
            headers = self._route_head()
            if self.answer is not None:
                self._send_answer(headers)
                return b""
            if self._routed_file is not None:
                self._send_routed_file(headers)
                return b""
            head_only = head_only or self.body_dropped
            if self._gzip_layers and not self.body_dropped and (
                    first_chunk or body_follows):
                headers, first_chunk = self._start_gzip(headers,
                                                        first_chunk)
        # Counted before the write, so that a client gone by then still
        # has the status and headers in the log line, as in uWSGI.
        self.status = int(self._status_line[:3])
        self.header_count = len(headers)
        try:
            self.header_size = self.transport.start(
                self.protocol, self._status_line, headers, first_chunk,
                head_only, more=file_follows and not head_only)
        except HeadSent as e:
            self._count_head_sent(e, first_chunk)
            raise ClientWriteError(WRITE_BODY_AFTER_HEAD, e.error) from None
        except OSError as e:
            call = WRITEV_HEAD_AND_BODY if first_chunk else WRITE_HEAD
            raise ClientWriteError(call, e) from None
        self.headers_sent = True
        return first_chunk

    def _start_gzip(self, headers, first_chunk):
        """The head and first chunk of a body the routes' `gzip` layers
        compress.  As in uWSGI, a body that starts is compressed, and one
        that never does (no body, a file sent by sendfile()) is not; an
        empty first write starts it, so that what comes after it goes
        out with its Content-Encoding (uWSGI's goes without)."""
        self.gzip = Layers(self._gzip_layers)
        return (self.gzip.headers(headers, self._coding_at),
                self.gzip.chunk(first_chunk))

    def _count_head_sent(self, sent, chunk):
        """The log line's figures for a head that went with part of
        the chunk (not the chunk's framing, which uWSGI does not send)."""
        self.header_size = sent.head_size
        self.body_size += min(sent.body_sent, len(chunk))
        self.headers_sent = True

    def _route_head(self):
        """The headers to send, as the response routes (and add-header,
        del-header) leave them; the status line too may change."""
        routing = self.ctx.routing
        if not self.routed:
            return routing.unrouted(self._headers)
        routed = routing.run(
            self.vars, self._headers,
            self.ctx.buffer_size - self.vars_size, self._copied,
            self.routed_request, int(self._status_line[:3]))
        self._count_added_vars(routed.appended)
        self._status_line = routed.status or self._status_line
        # `break` in a response route drops the app's body.
        self.body_dropped = not routed.send_body
        self.answer = routed.body
        self._gzip_layers, self._coding_at = routed.gzip, routed.coding_at
        self._routed_file = routed.file
        return routed.headers

    def _send_routed_file(self, after):
        """A response route's `static:` file instead of the app's
        response, as a request route's is sent (its own head, then the
        headers `after` it that add-header and the routes add, as in
        uWSGI), or 404 (DEVIATIONS 15: uWSGI sends the app's head with
        no body).  What the app writes after it goes nowhere."""
        self._after_file = after
        _serve_route_file(self, self._routed_file)
        self.body_dropped = True
        self.transport.head_only = True

    def _send_answer(self, headers):
        """An error route's answer (return, a redirect) instead of the
        app's response: its body goes in the head's write, and the
        app's (or a static file's) after it goes nowhere.  The routes'
        gzip compresses it, as uWSGI's does (whose member stops short,
        its stale Content-Length kept)."""
        answer = self.answer
        if self._gzip_layers and answer:
            headers, answer = self._start_gzip(headers, answer)
            answer += self.gzip.final()
            self.gzip = None
        self.status = int(self._status_line[:3])
        self.header_count = len(headers)
        try:
            self.header_size = self.transport.start(
                self.protocol, self._status_line, headers, answer,
                self.asked_head)
        except HeadSent as e:
            self._count_head_sent(e, answer)
            raise ClientWriteError(WRITE_BODY_AFTER_HEAD, e.error) from None
        except OSError as e:
            raise ClientWriteError(WRITEV_HEAD_AND_BODY, e) from None
        self.body_size = len(answer)
        self.transport.head_only = True
        self.headers_sent = True

    def _count_added_vars(self, appended):
        """Vars the routes added (collect-header, addvar) count in the log
        line as if the request had carried them, as in uWSGI, each time
        one is added."""
        for key, value in appended:
            self.vars_count += 2
            self.vars_size += 4 + len(key) + len(value)

    def add_var(self, key, value):
        """A var set after the request arrived (a static index file's
        PATH_INFO), counted in the log line as uWSGI counts one."""
        self.vars[key] = value
        self._count_added_vars([(key, value)])

    def respond(self, status, headers, body=b"", routed=True):
        """A whole response from the server itself (errors, no app)."""
        self.routed = routed
        self.start_response(status, headers)
        if body:
            self.write(body)
        self.finish()

    def finish(self):
        if self.write_failed:
            # The client is gone, as said at the failure: nothing more is
            # written (uWSGI's), and the connection closes.
            return
        if not self.headers_sent:
            self.send_head()
        if self.gzip is not None:
            tail, self.gzip = self.gzip.final(), None
            self._write_body(tail)
            self.body_size += len(tail)
        try:
            self.transport.finish()
        except OSError as e:
            # The end of a chunked body, which HTTP/1.1 frames and uWSGI
            # does not: a body write that failed, in uWSGI's words.
            raise ClientWriteError(WRITE_BODY, e) from None

    def set_logvar(self, name, value):
        """A value for the log line (`%(name)` in log-format); a name set
        again keeps its place and takes the new value."""
        if self.logvars is None:
            self.logvars = {}
        self.logvars[name] = value

    def log(self):
        log_request = self.ctx.log_request
        if log_request is not None:
            self.write_log(log_request)

    def write_log(self, log_request):
        """The request's line, by the worker's `log_request` (or the one
        uwsgi.log_this_request() chose)."""
        self.msecs = int((time.time() - self.start) * 1000)
        if self.app is not None:
            # As uWSGI: the app's count when the line is written, which
            # counts the requests that began since this one.
            self.app_requests = self.app.requests
        log_request(self)


class ForwardedExchange(Exchange):
    """An exchange under log-x-forwarded-for: the client is named by its
    X-Forwarded-For header as sent (a proxy's whole list, or nothing),
    wherever uWSGI names it: the log line, the scoreboard, a failed
    write's line."""

    def __init__(self, ctx, core, transport, request_vars, *args):
        super().__init__(ctx, core, transport, request_vars, *args)
        self.remote_addr = request_vars.get("HTTP_X_FORWARDED_FOR",
                                            self.remote_addr)


def handle(ex):
    """Serve the exchange from a static file or the app, then log it."""
    ctx = ex.ctx
    ctx.describe(ex)
    if ctx.admit_body is not None and not ctx.admit_body(ex):
        return
    app = ctx.apps.select(ex.vars)
    try:
        found = ctx.static.lookup(ex)
        if ctx.request_routing is not None:
            app = route_request(ex, app, found)
            if app is ENDED:
                return
        if found:
            ctx.serve_static(ex, found)
            return
        app = app or _choose_app(ex)
        if app is None:
            log.log("--- no python application found, check your startup "
                    "logs for errors ---")
            _answer_no_app(ex)
        else:
            if app.chdir:
                apps.change_folder(app.chdir,
                                   "plugins/python/wsgi_handlers.c line 387")
            ctx.run_app(ex, app)
    except ClientWriteError as e:
        e.log(ex)
    except Unanswered:
        ex.status = 500
    finally:
        account(ex)


def handle_unserved(ex, modifier1):
    """A request whose modifier1 (`http-socket-modifier1`) names none of
    the Python plugin's, as a uWSGI with only that plugin serves it:
    where there are request routes, a static file or the routes may
    answer it (uWSGI looks for the files before it routes); else
    uWSGI's line, and nothing is sent.  No request line either way (the
    absent plugin's to write)."""
    ctx = ex.ctx
    ctx.describe(ex)
    ex.log = _unlogged
    try:
        if ctx.request_routing is not None:
            found = ctx.static.lookup(ex)
            if route_request(ex, None, found) is ENDED:
                return
            if found:
                ctx.serve_static(ex, found)
                return
        log.log(f"-- unavailable modifier requested: {modifier1} --")
    except ClientWriteError as e:
        e.log(ex)
    except Unanswered:
        ex.status = 500
    finally:
        account(ex)


def _answer_no_app(ex):
    """uWSGI's 500 for a request no app is loaded for, with the
    error-page-500 page where there is one."""
    page = ex.ctx.error_pages.page(500)
    if page is None:
        ex.respond(SERVER_ERROR, NO_APP_HEADERS, NO_APP_BODY)
    else:
        headers, body = page
        ex.respond(SERVER_ERROR, [NO_APP_HEADERS[0], *headers], body)


def _choose_app(ex):
    """The app for the request (ugu.vassal.app), after its routes: the
    UWSGI_APPID vhost adds counts among its vars, as in uWSGI's line."""
    app, added = ex.ctx.apps.choose(ex.vars)
    if added:
        ex._count_added_vars(added)
    return app


def body_admission(config):
    """What handle() does with a request before serving it, chosen once:
    a function that takes the exchange and answers False when the
    request ended there (limit-post, check-cache, post-buffering, in
    uWSGI's order), or None."""
    steps = []
    if config["limit-post"]:
        steps.append(_within_limit)
    if config["check-cache"] is not None:
        from ugu.vassal import checkcache
        steps.append(checkcache.admission(config))
    if config["post-buffering"]:
        steps.append(_buffer_body)
    if not steps:
        return None
    if len(steps) == 1:
        return steps[0]
    return lambda ex: all(step(ex) for step in steps)


# What uWSGI's parser says of a request whose body is over limit-post.
TOO_BIG = "Invalid (too big) CONTENT_LENGTH. skip."


def _within_limit(ex):
    """limit-post: a body declared longer is refused where uWSGI's parser
    meets CONTENT_LENGTH, with its words; uWSGI then closes the
    connection unanswered, ugu answers 413 first (DEVIATIONS 3).  The
    body stays unread and the connection closes.  The log line counts
    the vars read before CONTENT_LENGTH (the block's whole size), as
    uWSGI's does, and the 413 served by no app."""
    if ex.input.length <= ex.ctx.limit_post:
        return True
    log.log(TOO_BIG)
    ex.input.abandon()
    _answer_too_large(ex)
    read = {}
    for key, value in ex.vars.items():
        if key == "CONTENT_LENGTH":
            break
        read[key] = value
    # The line names only what came before: a client, method or URI
    # sent after CONTENT_LENGTH is left out, as in uWSGI's.
    refused = ex.ctx.exchange(ex.ctx, ex.core, ex.transport, read,
                              2 * len(read), ex.vars_size, ex.input)
    refused.start = ex.start
    for figure in ("status", "header_count", "header_size", "body_size"):
        setattr(refused, figure, getattr(ex, figure))
    account(refused)
    return False


def _answer_too_large(ex):
    """The 413 page, the router's own (ugu.http.errors), unrouted: no
    app or route has seen the request."""
    reason, headers, body = PAGES[413]
    ex.transport.close_after()
    try:
        ex.respond(f"413 {reason.decode()}",
                   [(name.decode(), value.decode())
                    for name, value in headers] + [("Connection", "close")],
                   body, routed=False)
    except ClientWriteError as e:
        e.log(ex)


def _buffer_body(ex):
    """post-buffering, each read pushing the harakiri deadline (a slow
    upload is not the app's): False if the body did not come, which
    ends the request unanswered with uWSGI's line for it, a 500 served
    by no app."""
    ctx = ex.ctx
    buffered = wsgi.buffer_body(ex.input, ctx.post_buffering,
                                ctx.post_buffering_bufsize,
                                ctx.push_harakiri if ctx.harakiri else None)
    if buffered is None:
        ex.status = 500
        account(ex)
        return False
    ex.input = buffered
    return True


# What route_request gives for a request its routes ended.
ENDED = object()


def route_request(ex, app, found):
    """The request routes, as uWSGI runs them before the app, or just
    before it sends a static file found for the request (whatever found
    it: a `break` then keeps the file back).  The app to run then (None
    to choose it as the routes left the request), or ENDED once the
    routes answered the request (or dropped it)."""
    ctx = ex.ctx
    arrived_addr = ex.vars.get("REMOTE_ADDR", "")
    try:
        routed = ctx.request_routing.run(ex.vars,
                                         ctx.buffer_size - ex.vars_size)
    except ValueError as e:
        # An addheader value the request filled with a line break: the
        # 500 an app's header with one gets.
        log.log(f"route refused: {e}")
        ex.routed_end = True
        if found:
            os.close(found.fd)
        _answer_500(ex)
        return ENDED
    ex.routed_request = routed
    ex._count_added_vars(routed.appended)
    # The log line reads the request's fields, which set* actions move.
    ex.method = routed.field("REQUEST_METHOD")
    ex.uri = routed.field("REQUEST_URI")
    remote_addr = routed.field("REMOTE_ADDR")
    if remote_addr != arrived_addr:
        # Moved (setremoteaddr); otherwise the client stays as named,
        # by X-Forwarded-For under log-x-forwarded-for.
        ex.remote_addr = remote_addr
    if routed.quiet:
        # donotlog: replaced, not tested on every request.
        ex.log = _unlogged
    if routed.stores and not routed.ended:
        routestores.capture(ex, routed.stores)
    if not routed.ended:
        if any(key in _APP_KEYS for key, _ in routed.appended):
            return None     # chosen again, on the vars the routes set
        return app
    ex.routed_end = True
    if found:
        os.close(found.fd)
    if routed.file is not None:
        _serve_route_file(ex, routed.file)
    elif routed.answer is not None:
        _answer_route(ex, routed.answer)
    else:
        # Nothing answers it: the connection just closes, and the log
        # line has uWSGI's status for a request not served.
        ex.status = 500
    return ENDED


def _answer_route(ex, answer):
    """A route's answer; one whose header a request's text broke (a line
    break in a redirect's Location) gets the 500 an app's would."""
    try:
        ex.respond(*answer)
    except ValueError as e:
        log.log(f"route answer refused: {e}")
        _answer_500(ex)


def _serve_route_file(ex, path):
    """A `static:` route's file, as a check-static one is sent; 404 for
    one that cannot be (DEVIATIONS 15: uWSGI answers nothing)."""
    found = None
    if ex.method in ("GET", "HEAD"):
        found = ex.ctx.static.open_file(ex, path)
    if found:
        ex.ctx.serve_static(ex, found)
        return
    page = ex.ctx.error_pages.page(404)
    if page is None:
        ex.respond(*NOT_FOUND)
    else:
        ex.respond(NOT_FOUND[0], *page)


# The vars that choose the app: after a route set one, it is chosen again.
_APP_KEYS = frozenset({"SCRIPT_NAME", "UWSGI_APPID"})


def _unlogged():
    """The log line of a request a `donotlog` route silenced."""


def account(ex):
    """The request counted, routed by the final routes (if any), logged,
    and its worker told it ended."""
    ctx = ex.ctx
    ctx.count_request(ex)
    if ctx.final_routing is not None:
        _route_final(ex)
    ex.log()
    ctx.request_done(ex)


def _route_final(ex):
    """The final routes, as uWSGI runs them once a request is counted,
    before its log line (which `donotlog` then silences)."""
    if ex.ctx.final_routing.run(ex.vars, ex.status).quiet:
        ex.log = _unlogged


def run_app_holy(ex, app):
    """run_app under `wsgi-env-behaviour = holy`: each request's environ
    is a new dict, which the app may keep."""
    run_app(ex, app, {})


def run_app_cheat(ex, app):
    """run_app under `wsgi-env-behaviour = cheat`, uWSGI's default: the
    core's one environ, emptied once the response is over (an environ
    the app kept is then empty, and the next request's)."""
    environ = ex.ctx.environs[ex.core]
    try:
        run_app(ex, app, environ)
    finally:
        environ.clear()


def run_app(ex, app, environ):
    ctx = ex.ctx
    ex.app, ex.app_id = app, app.id
    ctx.count_app_request(app)
    wsgi.build_environ(environ, ex.vars, ex.input, ctx.environ_keys,
                       ctx.multithread, ctx.multiprocess,
                       ctx.core_id(ex.core))
    if ex.modifier1:
        # 30 (http-socket-modifier1), which uWSGI's Python plugin turns
        # into its own 0 once the environ is built.
        ex.modifier1 = 0
    result = None
    try:
        result = app.callable(environ,
                              ex.start_response_nodelay
                              if ctx.start_response_nodelay
                              else ex.start_response)
        _send_result(ex, result)
        if not ex.headers_sent and not ex.write_failed:
            # An empty body: the head goes now, so that a head HTTP
            # cannot carry gets the 500 below.
            ex.send_head()
    except ClientWriteError as e:
        if ex.write_failed:
            # Said when the app's write() failed.
            return
        # No one to answer either; uWSGI makes it the app's exception (of
        # its own wording), counted, and logged unless
        # disable-write-exception.
        e.log(ex)
        if ctx.iterable_goes_on:
            # write-errors-tolerance, where the whole body or the file
            # failed: nothing is left to go on with.
            ex.write_failed = True
            return
        if ctx.quiet_writes:
            ctx.count_exception(app, None, ex.core)
            return
        log.log("OSError: write error")
        ctx.count_exception(app, WRITE_ERROR, ex.core)
        return
    except Unsendable as e:
        # The app's response, which HTTP cannot carry (README): refused,
        # in a line, not a traceback of the HTTP library's.
        log.log(f"response refused: {e} (HTTP/1.1 cannot carry it)")
        _answer_500(ex)
        return
    except SystemExit as error:
        appexit.end_process(error)
    except BaseException as error:
        if _process_end(error):
            raise
        # Not only Exception: gevent.Timeout, say, is a BaseException an
        # app can raise; uWSGI answers 500 to whatever the app raised.
        log.app_traceback()
        try:
            ctx.answer_exception(ex, error)
        finally:
            # After the answer: reload-on-exception may end the worker
            # here, once catch-exceptions' page has gone, as in uWSGI.
            ctx.count_exception(ex.app, error, ex.core)
        return
    finally:
        # After a failure's lines, as uWSGI closes the response.
        _close(ex, result)
    ex.finish()


def _close(ex, result):
    """The response's close(), whose failure is logged and counted as
    uWSGI does, and ends nothing: the body may have gone whole."""
    if not hasattr(result, "close"):
        return
    try:
        result.close()
    except SystemExit as error:
        appexit.end_process(error)
    except BaseException as error:
        if _process_end(error):
            raise
        log.app_traceback()
        ex.ctx.count_exception(ex.app, error, ex.core)


def _process_end(error):
    """Whether what the app raised is not its failure but the process's
    end, which goes on up, past the 500 every other exception gets: a
    GreenletExit, gevent ending the worker's greenlets.  (A
    KeyboardInterrupt the app raises is its failure, as in uWSGI, whose
    workers take SIGINT themselves.)  GreenletExit exists only once gevent
    mode has imported greenlet, which other modes need not pay for."""
    greenlet = sys.modules.get("greenlet")
    return greenlet is not None and isinstance(error, greenlet.GreenletExit)


def answer_500(ex, error):
    """An app's exception answered without catch-exceptions (catch.py):
    the server's 500."""
    _answer_500(ex)


def _answer_500(ex):
    """The server's 500 for an app that failed before its response
    started (DEVIATIONS 9); unrouted, as uWSGI sends none to route."""
    if ex.headers_sent:
        return
    page = ex.ctx.error_pages.page(500)
    if page is None:
        ex.respond(SERVER_ERROR, ERROR_HEADERS, NO_APP_BODY, routed=False)
    else:
        ex.respond(SERVER_ERROR, *page, routed=False)


def _send_result(ex, result):
    if isinstance(result, wsgi.FileWrapper) and result.fileno() is not None:
        _send_wrapped_file(ex, result)
        return
    accept_buffer = ex.ctx.accept_buffer
    if not ex.ctx.wsgi_strict:
        # Not an iterable of bytes, but uWSGI sends it whole (no switch),
        # unless wsgi-strict; with wsgi-accept-buffer, any buffer too.
        whole = result if isinstance(result, bytes) else (
            _as_buffer(result) if accept_buffer else None)
        if whole is not None:
            ex.write(whole)
            return
    chunks = iter(result)
    try:
        for chunk in chunks:
            # uWSGI's log line counts the items of the response iterable
            # as its "switches", empty ones too (not the write() calls).
            ex.switches += 1
            if not isinstance(chunk, BODY_TYPES):
                data = _as_buffer(chunk) if accept_buffer else None
                if data is None:
                    _unhandled(chunk)
                elif data:
                    ex.write(data)
            elif chunk:
                ex.write(chunk)
    except ClientWriteError as e:
        if not ex.ctx.iterable_goes_on:
            raise
        _tolerate(ex, e, chunks)


def _tolerate(ex, error, chunks):
    """write-errors-tolerance: a failed write said, and the rest of the
    iterable taken from the app, counted and dropped, as uWSGI goes on
    with it (a request counts one failed write, never over tolerance)."""
    error.log(ex)
    ex.write_failed = True
    for _ in chunks:
        ex.switches += 1


def _as_buffer(obj):
    """wsgi-accept-buffer: the bytes of an object of the buffer protocol
    (array.array, mmap...), as a flat memoryview, else None."""
    try:
        return memoryview(obj).cast("B")
    except (TypeError, ValueError):
        return None


def _unhandled(chunk):
    """An item of the response iterable that is not bytes: skipped, as
    uWSGI skips it, and named in the log unless it is None."""
    if chunk is not None:
        log.log(f"[ERROR] Unhandled object from iterator: {chunk!r} "
                f"({id(chunk):#x})")


def _send_wrapped_file(ex, wrapper):
    """The whole file, from its first byte whatever the app read of it,
    as uWSGI sends it (a pipe's size is 0: nothing)."""
    fd = wrapper.fileno()
    count = os.fstat(fd).st_size
    _announce_offload(ex, count)
    ex.send_head()
    if ex.transport.head_only or not count:
        # HEAD, or a response route's `break`, which dropped the body.
        return
    offload = ex.ctx.offload
    if offload and ex.transport.offloadable(count):
        # As uWSGI: the core is free while an offload thread sends the
        # file as it is (not where HTTP frames it in chunks).  The app's
        # file closes when its response does, so the thread sends from a
        # descriptor of its own.
        ex.via, ex.body_size = "offload", count
        offload.submit(ex.transport.detach(), os.dup(fd), 0, count)
        return
    _send_file(ex, fd, 0, count)


def _announce_offload(ex, count):
    """A body an offload thread will send ends with the connection's
    close (the thread cannot give it back to the core): on a keepalive
    HTTP connection the head says so, or the client would send its next
    request into the close."""
    if ex.ctx.offload and count and not ex.asked_head:
        ex.transport.close_after()


def _send_file(ex, fd, offset, count):
    """sendfile() of `count` bytes of the file from `offset` on the
    connection; the log line counts them only once they have all gone,
    as uWSGI's does."""
    ex.via = "sendfile"
    try:
        ex.transport.send_file(fd, offset, count, ex.waited)
    except OSError as e:
        raise ClientWriteError(SENDFILE, e) from None
    ex.body_size = count


def serve_static(ex, found):
    """Send a static file found (and opened) by the lookup; its descriptor
    is closed here, or by the offload thread it is handed to."""
    ex.static = True
    handed = False
    try:
        if _not_modified(ex, found):
            ex.respond("304 Not Modified", found.not_modified_headers())
            return
        ex.start_response("200 OK", found.headers())
        _take_offer(ex, found)
        handed = _send_static(ex, found, 0, found.size)
    finally:
        if not handed:
            os.close(found.fd)


def _take_offer(ex, found):
    """The router's offer taken, where it may repeat this answer."""
    if ex.offered and ex.ctx.static_offer is not None:
        ex.transport.offer = ex.ctx.static_offer.marker_for(ex, found)


def serve_static_range(ex, found):
    """serve_static under `honour-range`: the part of the file a Range
    header asks for (ranges.py reads it as uWSGI does), or 416."""
    ex.static = True
    handed = False
    try:
        if _not_modified(ex, found):
            ex.respond("304 Not Modified", found.not_modified_headers())
            return
        wanted = ranges.part(ex.vars, found.size, found.mtime, _http_date)
        if wanted is ranges.UNSATISFIABLE:
            ex.respond(RANGE_NOT_SATISFIABLE, found.unsatisfiable_headers())
        elif wanted is None:
            ex.start_response("200 OK", found.headers())
            _take_offer(ex, found)
            handed = _send_static(ex, found, 0, found.size)
        else:
            first, last = wanted
            ex.start_response(PARTIAL_CONTENT,
                              found.partial_headers(first, last))
            handed = _send_static(ex, found, first, last - first + 1)
            # uWSGI's line says 200 for the 206 it sent.
            ex.status = 200
    finally:
        if not handed:
            os.close(found.fd)


def _send_static(ex, found, offset, count):
    """The head, then `count` bytes of the file from `offset`; True when
    an offload thread took the file (and closes it)."""
    if not found.serve_header:
        _announce_offload(ex, count)
    ex.send_head(file_follows=bool(count) and not found.serve_header)
    if ex.transport.head_only or not count or found.serve_header:
        # Nothing to send (and, as in uWSGI, no "via" in the line); under
        # file-serve-mode, the server in front sends the file.
        ex.finish()
        return False
    offload = ex.ctx.offload
    if offload and ex.transport.can_offload:
        ex.via, ex.body_size = "offload", count
        offload.submit(ex.transport.detach(), found.fd, offset, count)
        return True
    _send_file(ex, found.fd, offset, count)
    ex.finish()
    return False


def _not_modified(ex, found):
    since = ex.vars.get("HTTP_IF_MODIFIED_SINCE")
    return bool(since) and int(found.mtime) <= _http_date(since)


def _http_date(text):
    """If-Modified-Since as uWSGI reads it: RFC 1123's layout, by the
    position of each field, the zone ignored; 0 (never modified since)
    for a date it cannot place, RFC 850 and asctime's among them."""
    if len(text) != 29 and text[3:4] != ",":
        return 0
    month = _month(text[8:11])
    numbers = [text[5:7], text[12:16], text[17:19], text[20:22],
               text[23:25]]
    # ASCII digits: "\xb2" is a digit to str.isdigit(), not to int().
    if not month or not all(n.isascii() and n.isdigit() for n in numbers):
        return 0
    day, year, hour, minute, second = map(int, numbers)
    try:
        import calendar     # only for a conditional request
        return calendar.timegm((year, month, day, hour, minute, second))
    except (ValueError, OverflowError):
        return 0


def _month(name):
    """The month uWSGI reads from the letters it looks at, or 0."""
    first, second, third = (name + "   ")[:3]
    if first == "J":
        if second == "a":
            return 1
        return {"n": 6, "l": 7}.get(third, 0) if second == "u" else 0
    if first == "M":
        return {"r": 3, "y": 5}.get(third, 0) if second == "a" else 0
    if first == "A":
        return {"r": 4, "g": 8}.get(third, 0)
    return {"F": 2, "S": 9, "O": 10, "N": 11, "D": 12}.get(first, 0)
