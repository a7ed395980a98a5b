"""Run the response routing table on one response head.

The worker builds one ResponseRouter at start-up and, when the app has
given its status and headers, calls `run` (or `apply`, for the headers
alone).  Before the rules run, `collect-header` and `pull-header` copy the
app's headers into request vars, as uWSGI does when it adds them.

Routing results, as in uWSGI: a rule that does not apply, or whose action
returns nothing, goes on to the next rule; `continue`/`last`/`break` end
the chain; `goto:LABEL` jumps forward to the rule after the label (with
no such label, a number names the rule to go on from).  A goto whose
label is built from vars and turns out missing or behind gets uWSGI's
treatment: a log line, then the chain ends and the body is dropped, as
with `break`.

`log:` lines, and the errors above, go to the `log` callable given to
`from_config`, one line per call (the worker should pass `ugu.log.log`);
by default they are printed on stderr.
"""

import re
import sys

from ugu.routing.actions import STOP, VARS_FULL, Response
from ugu.routing.rules import first_labels, parse

TABLE_START = "*** dumping internal response routing table ***"
TABLE_END = "*** end of the internal response routing table ***"
GOTO_BACKWARD = ('[uwsgi-route] ERROR "goto" instruction can only jump '
                 "forward (check your label !!!)")


def _stderr(line):
    print(line, file=sys.stderr, flush=True)


class ResponseRouter:
    """The response routing table of one vassal."""

    def __init__(self, rules, copies, log=_stderr):
        self.rules = tuple(rules)
        self.copies = tuple(copies)
        self._log = log
        # Labels do nothing when reached, so only the other rules run.
        self._runnable = tuple(r for r in self.rules if r.label is None)
        self._targets = self._goto_targets()
        # Header name -> the vars it is copied to.  As uWSGI: a header
        # pulled goes to the first pull-header of its name alone.
        self._collect = {}
        for copy in self.copies:
            if not copy.pull:
                self._collect.setdefault(copy.header.lower(), []).append(
                    copy.var)
        self._pull = {}
        for copy in self.copies:
            if copy.pull:
                self._pull.setdefault(copy.header.lower(), [copy.var])
        self._collect.update(self._pull)

    @classmethod
    def from_config(cls, config, log=_stderr):
        """Read the table from a Config; ConfigError names a bad line."""
        rules, copies = parse(config.entries)
        return cls(rules, copies, log)

    @property
    def active(self):
        """Whether responses need routing at all."""
        return bool(self.rules or self.copies)

    def startup_lines(self):
        """The lines uWSGI logs about this table when it starts."""
        lines = []
        if self.rules:
            lines += [TABLE_START, *(r.dump() for r in self.rules),
                      TABLE_END]
        lines += [c.dump() for c in self.copies if not c.pull]
        lines += [c.dump() for c in self.copies if c.pull]
        return lines

    def apply(self, request_vars, headers):
        """The headers to send; `run` also tells status and body."""
        return self.run(request_vars, headers).headers

    def run(self, request_vars, headers, room=None, copied=None):
        """Route a response head, into a finished `Response`.

        `request_vars` is a dict, which collected headers and `addvar`
        extend (within `room` bytes, when given, as in the request's
        buffer); `headers`, the app's (name, value) list, is left as it
        is; `copied` is what `copied_vars` gave for them, if known.
        """
        response = Response(request_vars, headers, self._log, room)
        if self._collect:
            if copied is None:
                copied = self.copied_vars(headers)
            self._copy_headers(response, copied)
        self._run_rules(response)
        return response.finish()

    def copied_vars(self, headers):
        """(var, value) for each var collect-header and pull-header make
        of `headers`, in order."""
        collect, found = self._collect, []
        for name, value in headers:
            targets = collect.get(name.lower())
            if targets:
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

    def _run_rules(self, response):
        rules, variables = self._runnable, response.vars
        index, count = 0, len(rules)
        while index < count:
            rule = rules[index]
            index += 1
            result = None
            if rule.check is not None:
                result = rule.check(response.arrival_vars()
                                    if rule.on_arrival else variables)
                if rule.negate:
                    result = None if result else True
                if not result:
                    continue
            response.match = result if type(result) is re.Match else None
            outcome = rule.action(response)
            if outcome is None:
                continue
            if outcome is STOP:
                return
            index = self._jump(outcome.label, index, response)

    def _jump(self, label, after, response):
        """Where a goto from the rule before `after` leads, or the end."""
        target = self._targets.get(label)
        if target is None and label.isdigit():
            # No such label: uWSGI goes on from the rule of that number.
            target = self._index_of(int(label))
        if target is None or target < after:
            self._log(GOTO_BACKWARD)
            response.abort()
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
