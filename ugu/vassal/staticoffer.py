"""The worker's side of the router's static answers (ugu.staticanswer):
whether a static file's answer may be repeated by the router, and the
marker that says what it depends on.

Decided once per worker, the options first: the answer must depend on the
request's head and the files looked at alone, and its request line must be
the default one, written where the router writes.  Then for each file
sent, the names looked at are looked at again: every docroot before the
one that had the file must still have nothing there, and so must each
compressed variant the client would take.
"""

import os
import re

from ugu import log, staticanswer
from ugu.log import request_line
from ugu.vassal.static import accepted_variants

# Response route actions whose effect is the same for the same head.
_PURE_ACTIONS = frozenset({"addheader", "delheader", "remheader", "addvar",
                           "continue", "last", "goto"})
# What a rule may not read: the client's address and port vary within one
# head, metrics with time.  Read in its description, which holds what it
# is written with and the subject a response-route-remote-addr matches.
_VARYING = ("REMOTE_ADDR", "REMOTE_PORT", "metric[", "subject: remote_addr ")
# Conditions that look at a file: a name the router does not probe.
_FILE_CONDITION = re.compile(r" func: !?(exists|isfile|isdir|islink|isexec) ")
# Options under which the line is not the default one.
_LINE_OPTIONS = ("log-format", "log-micros", "memory-report", "vhost",
                 "vhost-host", "log-x-forwarded-for", "disable-logging")


class Offer:
    """A worker that answers the router's offers."""

    def __init__(self, static, sink, logs):
        self.static = static
        self.sink = sink
        self.logs = logs

    @classmethod
    def of_worker(cls, config, shared, log_request):
        """The worker's Offer, or None where its answers may vary."""
        static = shared.static
        if shared.request_routing.active or shared.final_routing.active:
            return None
        if not _pure(shared.routing):
            return None
        if static.expires or static.serve_header or static.index or \
                config["static-cache-paths"]:
            return None
        if log_request is None:
            return cls(static, None, False)
        if any(config[name] for name in _LINE_OPTIONS):
            return None
        sink = log.plain_request_sink()
        return None if sink is None else cls(static, sink, True)

    def marker_for(self, ex, found):
        """A function of the head's size giving the marker for a file's
        answer (None where the answer is too big for the router to keep),
        or None where it may not be repeated."""
        if found.size > staticanswer.LARGEST:
            return None
        probes = self._probes(ex, found)
        if probes is None or not staticanswer.place():
            return None

        def marker(head_size):
            if not self.logs:
                made = staticanswer.marker(probes)
            else:
                made = staticanswer.marker(
                    probes, self.sink, _line(ex, found, head_size),
                    ex.vars_size - _peer_size(ex.vars))
            if head_size + len(made) + found.size > staticanswer.LARGEST:
                return None
            return made
        return marker

    def _probes(self, ex, found):
        """[(name, signature or None)] of what the lookup looked at, as
        it is now; None where that is not what it found."""
        if ex.method != "GET":
            return None
        served = staticanswer.signature(os.fstat(found.fd))
        # The file's real path; FILE.gz's or FILE.br's is FILE's and the
        # suffix.
        real = found.path.rpartition(".")[0] if found.encoding \
            else found.path
        variants = self._variants(ex, found.encoding, real, served)
        if variants is None:
            return None
        path_info = ex.vars.get("PATH_INFO", "")
        probes = []
        for docroot in self.static.docroots:
            name = docroot.filename(path_info)
            if name is None:
                continue
            try:
                sig = staticanswer.signature(os.stat(name))
            except OSError:
                probes.append((name, None))
                continue
            if found.encoding:
                if os.path.realpath(name) != real:
                    return None
            elif sig != served:
                return None
            return [*probes, (name, sig), *variants]
        return None

    def _variants(self, ex, encoding, real, served):
        """The compressed variants of `real` the client would take, up to
        the one served (with its signature), each before it absent; None
        where one there was passed over (it may not be, next time)."""
        static = self.static
        accept_encoding = ex.vars.get("HTTP_ACCEPT_ENCODING", "")
        probes = []
        if static.wants_variant and accept_encoding and \
                static.wants_variant(real):
            for coding, suffix in accepted_variants(accept_encoding):
                name = real + suffix
                if coding == encoding:
                    return [*probes, (name, served)]
                if os.access(name, os.F_OK):
                    return None
                probes.append((name, None))
        return None if encoding else probes


def _pure(routing):
    """Whether the response routes (and error routes) do the same for
    the same head."""
    rules = list(routing.rules)
    if routing.errors is not None:
        rules += routing.errors.rules
    for rule in rules:
        if rule.label is not None:
            continue
        text = rule.description
        if any(name in text for name in _VARYING) or \
                _FILE_CONDITION.search(text):
            return False
        action = text.rpartition("action: ")[2]
        if action.partition(":")[0] not in _PURE_ACTIONS:
            return False
    return True


def _peer_size(request_vars):
    size = 0
    for key in ("REMOTE_ADDR", "REMOTE_PORT"):
        value = request_vars.get(key)
        if value is not None:
            size += 4 + len(key) + len(value)
    return size


class _Figures:
    """The request's line as the worker would write it, with each figure
    that varies as a field's name between NULs."""

    def __init__(self, ex, found, head_size):
        self.pid, self.total_requests = _field("pid"), _field("count")
        self.app_id = self.app_requests = -1
        self.remote_addr, self.remote_user = _field("addr"), ex.remote_user
        self.vars_count, self.vars_size = ex.vars_count, _field("size")
        self.start = ex.start
        self.method, self.uri = ex.method, ex.uri
        self.body_size, self.msecs = found.size, _field("msecs")
        offload = ex.ctx.offload and ex.transport.can_offload
        self.via = "offload" if offload else "sendfile"
        self.protocol, self.status = ex.protocol, 200
        self.header_count, self.header_size = ex.header_count, head_size
        self.switches, self.core = 0, ex.core


def _field(name):
    return f"\0{name}\0"


def _line(ex, found, head_size):
    """The line as a str.format template of the figures that vary (the
    date too, the router's)."""
    line = request_line(_Figures(ex, found, head_size))
    line = line.replace(f"[{log.ctime(ex.start)}]", f"[{_field('date')}]", 1)
    line = staticanswer.line_template(line)
    for name in ("pid", "count", "addr", "size", "msecs", "date"):
        line = line.replace(_field(name), "{" + name + "}")
    return line
