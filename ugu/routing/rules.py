"""Route options, read once into Rule objects.

Request routes (`route*`), response routes (`response-route*`), error
routes (`error-route*`) and final routes (`final-route*`) make four
tables.  Every option of a table adds one rule to it, in the order the
options were read, whatever their kind; a label is a rule too, so rule
numbers match uWSGI's start-up dump.  A rule's text is split at its first
space into a condition and an action (so a condition cannot contain a
space), and the action at its first colon into a name and args, which the
action's factory for that table's phase reads at once.  Any mistake stops
the start-up with the file and line of the option.

`collect-header` and `pull-header` are read here too: they are how a
response header reaches the response rules, as a request var.  So are
`add-header` and `del-header`, which change every response after (and
outside) the rules.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass

from ugu.options import registry
from ugu.options.errors import ConfigError
from ugu.options.sources import as_sent, as_written
from ugu.routing import actions, conditions
from ugu.routing.template import Template

# Each table's options: this prefix, then one of the suffixes below.
PREFIXES = {actions.REQUEST: "route", actions.RESPONSE: "response-route",
            actions.ERROR: "error-route", actions.FINAL: "final-route"}


def _var(name):
    return lambda variables: variables.get(name, "")


def request_host(variables):
    """The request's host as uWSGI's parser keeps it (route-host's
    subject, log-format's %(host)): each HTTP_HOST, even empty, sets it,
    and SERVER_NAME only while it is empty; so SERVER_NAME without an
    HTTP_HOST, or after an empty one."""
    host = variables.get("HTTP_HOST")
    if host:
        return host
    server_name = variables.get("SERVER_NAME", "")
    if host is None:
        return server_name
    # An empty HTTP_HOST, rare: which of the two came last.
    for name in variables:
        if name == "SERVER_NAME":
            return ""
        if name == "HTTP_HOST":
            return server_name
    return ""


# Regexp rules: what each suffix matches in the request vars, and the
# name uWSGI prints for it in the table.
REGEXP_SUBJECTS = {
    "": (_var("PATH_INFO"), "path_info"),
    "-host": (request_host, "http_host"),
    "-uri": (_var("REQUEST_URI"), "request_uri"),
    "-qs": (_var("QUERY_STRING"), "query_string"),
    "-remote-addr": (_var("REMOTE_ADDR"), "remote_addr"),
    "-user-agent": (_var("HTTP_USER_AGENT"), "user_agent"),
    "-referer": (_var("HTTP_REFERER"), "referer"),
    "-remote-user": (_var("REMOTE_USER"), "remote_user"),
}
# Condition rules: whether each suffix negates its condition.
CONDITION_SUFFIXES = {"-if": False, "-if-not": True}
RUN, LABEL = "-run", "-label"
# A rule on the response's status code, which only the error, response
# and final tables have (the request table runs before there is one).
STATUS = "-status"
STATUS_PHASES = frozenset({actions.ERROR, actions.RESPONSE, actions.FINAL})
HEADER_OPTIONS = {"collect-header": "collect", "pull-header": "pull"}


@dataclass(frozen=True)
class Rule:
    """One line of the table.

    `check` takes the request vars, or what `subject` gives of the
    routed request (the vars it arrived with, for a regexp rule; the
    status code, for a status rule); a falsy result skips the rule (the
    other way round when `negate`), a regexp match feeds `$N` captures.
    A label has no action.  `goto` is the label of a goto action whose
    label is fixed text, so that it can be checked at start-up.
    """

    number: int
    description: str
    entry: object  # the config Entry, to name its file and line
    check: Callable | None = None
    negate: bool = False
    subject: Callable | None = None
    action: Callable | None = None
    label: str | None = None
    goto: str | None = None

    def dump(self):
        return f"[rule: {self.number}] {self.description}"


@dataclass(frozen=True)
class HeaderCopy:
    """A `collect-header` (or `pull-header`, which also removes it)."""

    header: str
    var: str
    pull: bool

    def dump(self):
        verb = "pulling" if self.pull else "collecting"
        return f"{verb} header {self.header} to var {self.var}"


def parse(entries, phase):
    """The rules of `phase`'s table among config entries, in order."""
    prefix, rules = PREFIXES[phase], []
    for entry in entries:
        opt = registry.lookup(entry.key)
        if opt is None or not opt.name.startswith(prefix):
            continue
        suffix = opt.name[len(prefix):]
        if suffix in REGEXP_SUBJECTS or suffix in CONDITION_SUFFIXES or \
                suffix in (RUN, LABEL) or \
                (suffix == STATUS and phase in STATUS_PHASES):
            try:
                rules.append(_rule(suffix, phase, entry, len(rules)))
            except ConfigError as e:
                raise _located(e.reason, entry) from None
    _check_gotos(rules)
    return rules


def header_copies(entries):
    """The collect-header and pull-header entries, in order."""
    copies = []
    for entry in entries:
        opt = registry.lookup(entry.key)
        if opt is not None and opt.name in HEADER_OPTIONS:
            try:
                copies.append(_header_copy(opt.name, entry.value))
            except ConfigError as e:
                raise _located(e.reason, entry) from None
    return copies


@dataclass(frozen=True)
class FixedHeaders:
    """What every response gets, as uWSGI sends it: `removed`, the
    (lower-case) names del-header takes out of the response's own headers
    (the app's, a static file's, a route's answer), and `added`, the
    (name, value) pairs add-header puts after them, past the response
    rules (so that no rule sees or removes them)."""

    removed: frozenset = frozenset()
    added: tuple = ()

    def __bool__(self):
        return bool(self.removed or self.added)


# A header name, as HTTP has it (RFC 9110's token).
_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")


def fixed_headers(entries):
    """The add-header and del-header entries, read into FixedHeaders."""
    removed, added = set(), []
    for entry in entries:
        opt = registry.lookup(entry.key)
        if opt is None:
            continue
        if opt.name == "del-header":
            removed.add(entry.value.lower())
        elif opt.name == "add-header":
            added.append(_added_header(entry))
    return FixedHeaders(frozenset(removed), tuple(added))


def _added_header(entry):
    """An add-header line's (name, value).  uWSGI sends the line as it
    is written; one that is not `Name: value` would break the head, so
    it is refused here."""
    name, colon, value = entry.value.partition(":")
    value = value.strip(" \t")
    if not colon or not _TOKEN.fullmatch(name) or "\r" in value or \
            "\n" in value:
        raise _located("add-header takes a whole header line, "
                       f"Name: value (not {entry.value!r})", entry)
    return name, as_sent(value)


def _located(reason, entry):
    return ConfigError(reason, entry.file, entry.line, entry.key)


def _header_copy(option, value):
    header, space, var = value.partition(" ")
    if not space:
        raise ConfigError(f"invalid {HEADER_OPTIONS[option]} header "
                          "syntax, must be <header> <var>")
    return HeaderCopy(header, var, option == "pull-header")


def _rule(suffix, phase, entry, number):
    # Matched and sent as the bytes written in the file, as uWSGI's
    # rules are: a request var is the latin-1 str of its bytes, and so
    # is the rule from here on (its description in the dump goes back).
    value = as_sent(entry.value)
    if suffix == LABEL:
        return Rule(number, f"label: {entry.value}", entry, label=value)
    condition, action = None, value
    if suffix != RUN:
        condition, space, action = value.partition(" ")
        if not space:
            raise ConfigError("invalid route syntax (expected a condition, "
                              "one space, then the action)")
    check, negate, described = _condition(suffix, condition)
    name, colon, args = action.partition(":")
    if not colon:
        raise ConfigError("invalid route syntax (an action is name:args, "
                          f'e.g. "{name}:")')
    goto = Template(args).static if name == "goto" else None
    return Rule(number, as_written(f"{described}action: {action}"), entry,
                check, negate, _SUBJECTS.get(suffix),
                _action(name, args, entry.value, phase), goto=goto)


def _status_code(routed):
    return routed.code


# What a rule's check takes, by suffix, when not the request vars.
_SUBJECTS = {**dict.fromkeys(REGEXP_SUBJECTS, actions.Routed.arrival_vars),
             STATUS: _status_code}


def _action(name, args, value, phase):
    factory = actions.ACTIONS[phase].get(name)
    if factory is None:
        reason = f'unable to register route "{value}"'
        if phase == actions.FINAL and name in actions.ACTIONS[actions.ERROR]:
            reason += (f': final routes run once the response is sent, '
                       f'where "{name}" can change nothing (uWSGI accepts '
                       "it and does nothing); remove the rule, or make it an "
                       "error-route one")
        elif actions.not_implemented(name, phase):
            reason += (f': action "{name}" is not implemented by ugu in '
                       f"{PREFIXES[phase]}* rules yet; remove the rule, or "
                       "do its work in the app")
        else:
            known = ", ".join(sorted(actions.ACTIONS[phase]))
            reason += (f' (ugu has no action "{name}" in '
                       f"{PREFIXES[phase]}* rules; it has {known})")
        raise ConfigError(reason)
    return factory(args)


def _condition(suffix, text):
    """(check, negate, its description in the dump) for a rule's
    condition text, None for a `-run` rule."""
    if text is None:
        return None, False, ""
    if suffix in REGEXP_SUBJECTS:
        return _regexp_check(suffix, text)
    if suffix == STATUS:
        return _status_check(text)
    return _condition_check(text, CONDITION_SUFFIXES[suffix])


def _regexp_check(suffix, pattern):
    subject, shown = REGEXP_SUBJECTS[suffix]
    compiled = conditions.compile_regexp(pattern)
    described = f"subject: {shown} regexp: {pattern} "
    return (lambda v: compiled.search(subject(v))), False, described


def _status_check(text):
    """A `-status` rule: the status code equals the number (as uWSGI
    reads it, with atoi: leading digits, 0 for none)."""
    code = conditions.leading_int(text)
    described = f"subject: {text} func: {text} "
    return (lambda status: status == code), False, described


def _condition_check(text, negate):
    name, colon, args = text.partition(":")
    if not colon:
        raise ConfigError("invalid route condition syntax (expected "
                          "name:args)")
    factory = conditions.CONDITIONS.get(name)
    if factory is None:
        reason = f'unable to find "{name}" route condition'
        if name in conditions.NOT_IMPLEMENTED:
            reason += " (not implemented by ugu yet)"
        raise ConfigError(reason)
    bang = "!" if negate else ""
    described = f"subject: {args} func: {bang}{name} "
    return factory(name, args), negate, described


def _check_gotos(rules):
    """A goto to a fixed label must find it after itself.

    uWSGI finds out on a request, logs an error and drops the response;
    a table that cannot work is better refused at start-up.
    """
    labels = first_labels(rules)
    for rule in rules:
        if rule.goto is None:
            continue
        target = labels.get(rule.goto)
        if target is None and rule.goto.isdigit():
            # No such label: uWSGI jumps to the rule of that number.
            target = int(rule.goto)
        if target is None:
            raise _located(f'"goto" to an unknown label "{rule.goto}" (a '
                           f'number jumps to that rule)', rule.entry)
        if target < rule.number:
            raise _located(f'"goto" can only jump forward, and label '
                           f'"{rule.goto}" is rule {target}, before this '
                           "one", rule.entry)


def first_labels(rules):
    """Label -> rule number; a goto finds the first label of its name."""
    labels = {}
    for rule in rules:
        if rule.label is not None:
            labels.setdefault(rule.label, rule.number)
    return labels
