"""Route conditions, registered by name as uWSGI names them.

A condition is the `name:args` half of `response-route-if = name:args
action`.  Its factory is called once, when the config is read, with the
name as written and the args text, and returns a check: a function of the
request vars whose result is falsy when the rule does not apply.  A check
that matched a regexp returns the match, so that the action can use its
captures as `$0..$9`.

Two-argument conditions split their args at the first `;` before expanding
either side, as uWSGI does, so a var value with a `;` in it changes
nothing.
"""

import operator
import os
import re

from ugu import pcre
from ugu.options.errors import ConfigError
from ugu.routing.template import Template

CONDITIONS = {}

# uWSGI 2.0 conditions that ugu has not implemented: named apart from
# unknown ones, so the message says what is missing.
NOT_IMPLEMENTED = frozenset({"ipv4in", "ipv6in", "lord"})

# What C's strtoll() reads: blanks, a sign, digits; no digits reads as 0.
_LEADING_INT = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")


def condition(*names):
    """Register a condition factory under each of `names`."""
    def register(factory):
        for name in names:
            CONDITIONS[name] = factory
        return factory
    return register


def _halves(name, args):
    """The condition's two arguments, as written."""
    left, semicolon, right = args.partition(";")
    if not semicolon:
        # uWSGI reads this as always false; a rule that can never match is
        # a mistake worth stopping for.
        raise ConfigError(f'route condition "{name}" needs two arguments '
                          'separated by ";"')
    return left, right


def _split(name, args):
    left, right = _halves(name, args)
    return Template(left), Template(right)


@condition("equal", "isequal", "eq", "==")
def equal(name, args):
    return _text_test(_split(name, args), operator.eq)


@condition("startswith")
def startswith(name, args):
    return _text_test(_split(name, args), str.startswith)


@condition("endswith")
def endswith(name, args):
    return _text_test(_split(name, args), str.endswith)


@condition("contains", "contain")
def contains(name, args):
    return _text_test(_split(name, args), operator.contains)


def _text_test(sides, test):
    left, right = sides
    if left.var is not None and right.static is not None:
        # The usual case, `${VAR};text`, in as few calls as it takes.
        name, text = left.var, right.static
        return lambda v: test(v.get(name, ""), text)
    left, right = left.expand, right.expand
    return lambda v: test(left(v), right(v))


@condition("regexp", "re")
def regexp(name, args):
    subject, pattern = _halves(name, args)
    # As uWSGI: the subject is expanded, the pattern is taken as written,
    # so that no request can put a regexp of its own there.
    subject = Template(subject).expand
    compiled = compile_regexp(pattern)
    return lambda v: compiled.search(subject(v))


def compile_regexp(pattern):
    """A regexp read from the config, compiled at start-up."""
    try:
        return pcre.compile(pattern)
    except re.error as e:
        raise ConfigError(f'invalid regexp "{pattern}": {e}') from None


@condition("empty")
def empty(name, args):
    value = Template(args).expand
    return lambda v: value(v) == ""


def _path_test(args, test):
    path = Template(args).expand
    return lambda v: test(path(v))


@condition("exists")
def exists(name, args):
    return _path_test(args, os.path.exists)


@condition("isfile")
def isfile(name, args):
    return _path_test(args, os.path.isfile)


@condition("isdir")
def isdir(name, args):
    return _path_test(args, os.path.isdir)


@condition("islink")
def islink(name, args):
    return _path_test(args, os.path.islink)


@condition("isexec")
def isexec(name, args):
    return _path_test(args, lambda path: os.access(path, os.X_OK))


def leading_int(text):
    """The number C's strtoll() reads at the start of `text`."""
    m = _LEADING_INT.match(text)
    return int(m.group(1)) if m else 0


def _number_test(sides, test):
    left, right = sides[0].expand, sides[1].expand
    return lambda v: test(leading_int(left(v)), leading_int(right(v)))


@condition("ishigher", ">")
def ishigher(name, args):
    return _number_test(_split(name, args), operator.gt)


@condition("islower", "<")
def islower(name, args):
    return _number_test(_split(name, args), operator.lt)


@condition("ishigherequal", ">=")
def ishigherequal(name, args):
    return _number_test(_split(name, args), operator.ge)


@condition("islowerequal", "<=")
def islowerequal(name, args):
    return _number_test(_split(name, args), operator.le)
