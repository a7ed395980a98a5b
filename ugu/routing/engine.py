"""Run a routing table: the request's before the app, the error and
response ones on the response head, the final one after the response.

The worker builds one RequestRouter, one ResponseRouter (which runs the
error table too) and one FinalRouter at start-up.
Before serving a request it calls the RequestRouter's `run`, which gives
a finished `Request` (the request ends there when it is `ended`); when the
app has given its status and headers, it calls the ResponseRouter's `run`
(or `apply`, for the headers alone).  Before the response rules run,
`collect-header` and `pull-header` copy the app's headers into request
vars, as uWSGI does when it adds them; the error rules run before that,
as uWSGI runs them when the status is set, before the headers are added.
Once the response is sent and counted, the FinalRouter's `run` routes the
request again, before its log line is written.

Routing results, as in uWSGI: a rule that does not apply, or whose action
returns nothing, goes on to the next rule; `continue`/`last`/`break` end
the chain; `goto:LABEL` jumps forward to the rule after the label (with
no such label, a number names the rule to go on from).  A goto whose
label is built from vars and turns out missing or behind gets uWSGI's
treatment: a log line, then the chain ends as with `break` (the request
ends unanswered, or the response body is dropped).

`log:` lines, and the errors above, go to the `log` callable given to
`from_config`, one line per call (the worker should pass `ugu.log.log`);
by default they are printed on stderr.
"""

import re
import sys

from ugu.routing.actions import (ERROR, FINAL, REQUEST, RESPONSE, STOP,
                                 VARS_FULL, Final, Request, Response)
from ugu.routing.rules import (FixedHeaders, first_labels, fixed_headers,
                               header_copies, parse)

GOTO_BACKWARD = ('[uwsgi-route] ERROR "goto" instruction can only jump '
                 "forward (check your label !!!)")


def _stderr(line):
    print(line, file=sys.stderr, flush=True)


class _Table:
    """One routing table and the running of its rules; `name` is how
    uWSGI's start-up dump names it ("" for the request table)."""

    name = ""

    def __init__(self, rules, log=_stderr):
        self.rules = tuple(rules)
        self._log = log
        # Labels do nothing when reached, so only the other rules run.
        self._runnable = tuple(r for r in self.rules if r.label is None)
        self._targets = self._goto_targets()

    def dump(self):
        """The lines uWSGI logs about this table's rules at start-up."""
        if not self.rules:
            return []
        name = f"{self.name} " if self.name else ""
        return [f"*** dumping internal {name}routing table ***",
                *(r.dump() for r in self.rules),
                f"*** end of the internal {name}routing table ***"]

    def _run_rules(self, routed):
        rules, variables = self._runnable, routed.vars
        index, count = 0, len(rules)
        while index < count:
            rule = rules[index]
            index += 1
            result = None
            if rule.check is not None:
                result = rule.check(variables if rule.subject is None
                                    else rule.subject(routed))
                if rule.negate:
                    result = None if result else True
                if not result:
                    continue
            routed.match = result if type(result) is re.Match else None
            outcome = rule.action(routed)
            if outcome is None:
                continue
            if outcome is STOP:
                return
            index = self._jump(outcome.label, index, routed)

    def _jump(self, label, after, routed):
        """Where a goto from the rule before `after` leads, or the end."""
        target = self._targets.get(label)
        if target is None and label.isdigit():
            # No such label: uWSGI goes on from the rule of that number.
            target = self._index_of(int(label))
        if target is None or target < after:
            self._log(GOTO_BACKWARD)
            routed.abort()
            return len(self._runnable)
        return target

    def _goto_targets(self):
        """Label -> index in `_runnable` of the first rule after it."""
        return {label: self._index_of(number)
                for label, number in first_labels(self.rules).items()}

    def _index_of(self, number):
        """Index in `_runnable` of the first rule numbered `number` or
        more (labels are numbered, and skipped)."""
        return sum(1 for rule in self._runnable if rule.number < number)


class RequestRouter(_Table):
    """The request routing table of one vassal."""

    @classmethod
    def from_config(cls, config, log=_stderr):
        """Read the table from a Config; ConfigError names a bad line."""
        return cls(parse(config.entries, REQUEST), log)

    @property
    def active(self):
        """Whether requests need routing at all."""
        return bool(self.rules)

    def run(self, request_vars, room=None):
        """Route a request, into a finished `Request`: `request_vars`, a
        dict, gets the vars the rules add (within `room` bytes, when
        given, as in the request's buffer)."""
        request = Request(request_vars, self._log, room)
        self._run_rules(request)
        return request


class ResponseRouter(_Table):
    """The response routing table of one vassal, and its header copies.

    `after_requests` makes it run on every response, as it must when
    request routes may have added headers to it."""

    name = "response"

    def __init__(self, rules, copies, log=_stderr, after_requests=False,
                 fixed=None, errors=()):
        super().__init__(rules, log)
        self.copies = tuple(copies)
        self.fixed = fixed or FixedHeaders()
        # The error table, None without one: the one test a response
        # pays then.
        self.errors = ErrorTable(errors, log) if errors else None
        self.active = bool(self.rules or self.copies or after_requests
                           or self.fixed or self.errors)
        removed = self.fixed.removed
        # Header name -> the vars it is copied to.  As uWSGI: a header
        # pulled goes to the first pull-header of its name alone, and
        # one del-header removes is neither.
        self._collect = {}
        for copy in self.copies:
            name = copy.header.lower()
            if not copy.pull and name not in removed:
                self._collect.setdefault(name, []).append(copy.var)
        self._pull = {}
        for copy in self.copies:
            name = copy.header.lower()
            if copy.pull and name not in removed:
                self._pull.setdefault(name, [copy.var])
        self._collect.update(self._pull)

    @classmethod
    def from_config(cls, config, log=_stderr, after_requests=False):
        """Read the table from a Config; ConfigError names a bad line."""
        rules = parse(config.entries, RESPONSE)
        return cls(rules, header_copies(config.entries), log,
                   after_requests, fixed_headers(config.entries),
                   parse(config.entries, ERROR))

    def startup_lines(self, final=None):
        """The lines uWSGI logs about this table when it starts, with
        the error table's before them and the `final` table's after."""
        lines = self.errors.dump() if self.errors is not None else []
        lines += self.dump()
        if final is not None:
            lines += final.dump()
        lines += [c.dump() for c in self.copies if not c.pull]
        lines += [c.dump() for c in self.copies if c.pull]
        return lines

    def apply(self, request_vars, headers):
        """The headers to send; `run` also tells status and body."""
        return self.run(request_vars, headers).headers

    def run(self, request_vars, headers, room=None, copied=None,
            request=None, code=0):
        """Route a response head, into a finished `Response`.

        `request_vars` is a dict, which collected headers and `addvar`
        extend (within `room` bytes, when given, as in the request's
        buffer); `headers`, the app's (name, value) list, is left as it
        is; `copied` is what `copied_vars` gave for them, if known;
        `request` is the request routes' `Request`, if they ran; `code`
        is the response's status code, which error rules test.
        """
        response = Response(request_vars, headers, self._log, room, request,
                            code)
        if self.errors is not None:
            self.errors.run_rules(response)
        if self._collect:
            if copied is None:
                copied = self.copied_vars(headers, request)
            self._copy_headers(response, copied)
        self._run_rules(response)
        return response.finish(self.fixed.removed, self.fixed.added)

    def unrouted(self, headers):
        """The headers of a response the rules do not see (the server's
        own 500): add-header and del-header still apply, as in uWSGI."""
        if not self.fixed:
            return headers
        removed = self.fixed.removed
        return [*(h for h in headers if h[0].lower() not in removed),
                *self.fixed.added]

    def copied_vars(self, headers, request=None):
        """(var, value) for each var collect-header and pull-header make
        of `headers`, in order; none of a header that `request`, the
        request routes' `Request` if they ran, removed (`delheader`), as
        uWSGI removes it before it would copy it."""
        collect, found = self._collect, []
        removed = request.removed if request is not None else ()
        for name, value in headers:
            targets = collect.get(name.lower())
            if targets and name.lower() not in removed:
                for var in targets:
                    found.append((var, value))
        return found

    def fit(self, copied, room):
        """Whether the vars `copied` fit in `room` bytes; when not,
        uWSGI's line is logged, as uWSGI refuses the header when the app
        adds it."""
        for var, value in copied:
            room -= 4 + len(var) + len(value)
            if room < 0:
                self._log(VARS_FULL.format(var))
                return False
        return True

    def _copy_headers(self, response, copied):
        for var, value in copied:
            response.append_var(var, value)
        if self._pull:
            response.headers = [h for h in response.headers
                                if h[0].lower() not in self._pull]


class ErrorTable(_Table):
    """The error routing table, which the ResponseRouter runs first."""

    name = "error"

    def run_rules(self, response):
        self._run_rules(response)


class FinalRouter(_Table):
    """The final routing table of one vassal, run after the response."""

    name = "final"

    @classmethod
    def from_config(cls, config, log=_stderr):
        """Read the table from a Config; ConfigError names a bad line."""
        return cls(parse(config.entries, FINAL), log)

    @property
    def active(self):
        """Whether requests need final routing at all."""
        return bool(self.rules)

    def run(self, request_vars, code):
        """Route a request whose response was sent with status `code`,
        into a `Final` (its `quiet` says to write no log line)."""
        final = Final(request_vars, self._log, code)
        self._run_rules(final)
        return final
