"""Route argument text with `$N` captures and `${VAR}` request vars.

A template is split once, when the config is read, and expanded on every
request.  uWSGI expands in two passes: captures first, then `${VAR}` over
the result.  We keep its reading of the text (`$` followed by a digit is a
capture, any other `$x` pair is literal, so `$$1` stays `$$1`; `$10` is
capture 1 then `0`) but expand in a single pass: a capture whose text
contains `${VAR}` is not expanded again, so a client cannot pull server
vars into a header through its request path, as it can with uWSGI.

`${qs[KEY]}` and `${cookie[NAME]}` are uWSGI's computed vars of those
names: the first such item of QUERY_STRING or of HTTP_COOKIE, as written;
`${metric[NAME]}` is an apps' metric's value (router_metrics').
Unknown vars and missing captures expand to the empty string.
"""

import re

from ugu.options.errors import ConfigError
from ugu.routing import backends

_PAIR = re.compile(r"\$(.)", re.DOTALL)
_DIGITS = frozenset("0123456789")
_VAR = re.compile(r"\$\{([^}]*)\}")


class Template:
    """Text to expand: `static` is the text when nothing varies, `var`
    the name when the text is one `${VAR}` alone."""

    def __init__(self, text):
        self.text = text
        parts = _parts(text)
        # What the text is, when it is that simple: callers that run on
        # every request use these to skip a call.
        self.static = self.var = None
        if not parts:
            self.static = ""
        elif len(parts) == 1 and isinstance(parts[0], _Var):
            self.var = str(parts[0])
        elif len(parts) == 1 and isinstance(parts[0], str):
            self.static = parts[0]
        # An instance attribute, chosen once, so that a request pays only
        # for what this text needs.
        self.expand = _expander(parts)

    def __repr__(self):
        return f"Template({self.text!r})"


class _Var(str):
    """The name of a request var, as opposed to literal text."""


def _parts(text):
    parts = []
    for piece in _capture_pass(text):
        if isinstance(piece, int):
            parts.append(piece)
        else:
            parts.extend(_var_pass(piece))
    return _merge_literals(parts)


def _capture_pass(text):
    """Literal runs and capture numbers, read the way uWSGI reads them:
    pairs from left to right, so the second `$` of `$$1` is taken."""
    pieces, last = [], 0
    for m in _PAIR.finditer(text):
        if m.group(1) in _DIGITS:
            pieces += [text[last:m.start()], int(m.group(1))]
            last = m.end()
    pieces.append(text[last:])
    return pieces


def _var_pass(literal):
    parts, last = [], 0
    for m in _VAR.finditer(literal):
        parts += [literal[last:m.start()], _var(m.group(1))]
        last = m.end()
    parts.append(literal[last:])
    return parts


def _var(name):
    """A `${...}` part: a request var, or `${name[key]}`, uWSGI's syntax
    for a computed one."""
    if "[" not in name:
        return _Var(name)
    kind, _, key = name.partition("[")
    if kind in _COMPUTED and key.endswith("]"):
        return _Computed(_COMPUTED[kind], key[:-1])
    if kind == "cache":
        raise ConfigError(f"route var ${{{name}}}: uWSGI 2.0 has no cache "
                          "route var (it expands it to nothing); put the "
                          "item in a var first with "
                          "`cachevar:key=KEY,var=VAR`, then write ${VAR}")
    # The others (uwsgi, time, httptime, mime, base64, hex): expanding
    # one to "" would hide the gap.
    raise ConfigError(f"route var ${{{name}}} is not implemented by ugu yet "
                      "(plain request vars, qs[...], cookie[...] and "
                      "metric[...] are)")


class _Computed:
    """`${qs[key]}` or `${cookie[key]}`: a value found in a var."""

    __slots__ = ("find", "key")

    def __init__(self, find, key):
        self.find, self.key = find, key

    def __call__(self, variables):
        return self.find(variables, self.key)


def _qs(variables, key):
    """The value of the first `key=` of the query string, as it is
    written; "" when it is missing or empty."""
    for item in variables.get("QUERY_STRING", "").split("&"):
        name, equal, value = item.partition("=")
        if equal and name == key:
            return value
    return ""


def _cookie(variables, key):
    """The value of the first `key=` cookie, as uWSGI finds it: each
    `;`-separated item stripped of blanks, the value as it is written."""
    for item in variables.get("HTTP_COOKIE", "").split(";"):
        name, equal, value = item.strip(_BLANKS).partition("=")
        if equal and name == key:
            return value
    return ""


def _metric(variables, key):
    """An apps' metric's value, in digits (0 for none)."""
    return str(backends.metric_get(key))


_COMPUTED = {"qs": _qs, "cookie": _cookie, "metric": _metric}
# What C's isspace() takes for a blank.
_BLANKS = " \t\n\v\f\r"


def _merge_literals(parts):
    merged = []
    for part in parts:
        plain = type(part) is str
        if plain and not part:
            continue
        if plain and merged and type(merged[-1]) is str:
            merged[-1] += part
        else:
            merged.append(part)
    return merged


def group(match, number):
    """Capture `number` of `match`, or "" when there is no such group."""
    if match is None or number > match.re.groups:
        return ""
    return match.group(number) or ""


def _expander(parts):
    if not parts:
        return lambda variables, match=None: ""
    if len(parts) == 1:
        return _single(parts[0])
    return _joiner(tuple(parts))


def _single(part):
    if isinstance(part, _Var):
        name = str(part)
        return lambda variables, match=None: variables.get(name, "")
    if isinstance(part, _Computed):
        return lambda variables, match=None: part(variables)
    if isinstance(part, int):
        return lambda variables, match=None: group(match, part)
    return lambda variables, match=None: part


def _joiner(parts):
    def expand(variables, match=None):
        out = []
        for part in parts:
            if type(part) is str:
                out.append(part)
            elif type(part) is int:
                out.append(group(match, part))
            elif type(part) is _Computed:
                out.append(part(variables))
            else:
                out.append(variables.get(part, ""))
        return "".join(out)
    return expand
