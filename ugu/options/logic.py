"""uWSGI's option logic: `for ... endfor` and `if-* ... endif` blocks.

A block option opens a block; every key read until an end key (`endfor`,
`endif`, their dashed twins, or `end`) is added once per value of the
block, with `%(_)` in its value replaced by that value.  A `for` yields one
value per word, glob match, number or line; an `if-*` yields the value it
tested once when the test holds (None when it tested that something is
unset), none otherwise.  As in uWSGI the test runs
again for each key of the block, and any end key closes any block.
"""

import glob
import os
import re
import socket

from ugu.options.errors import ConfigError

END_KEYS = frozenset({"end", "endfor", "end-for", "endif", "end-if"})
CURRENT = "%(_)"


def _words(arg, env, lookup):
    return arg.split()


def _glob(arg, env, lookup):
    # uWSGI marks folders with a slash and keeps a pattern that matches
    # nothing as the only value.
    found = sorted(glob.glob(arg))
    return [p + "/" if os.path.isdir(p) else p for p in found] or [arg]


def _times(arg, env, lookup):
    return [str(n) for n in range(1, _leading_int(arg) + 1)]


def _lines(arg, env, lookup):
    try:
        with open(arg, encoding="utf-8", errors="surrogateescape") as f:
            return [line.rstrip("\r\n") for line in f]
    except OSError as e:
        raise ConfigError(f"for-readline: cannot read {arg}: "
                          f"{e.strerror}") from None


def _leading_int(text):
    text = text.lstrip()
    sign = -1 if text[:1] == "-" else 1
    digits = text[1:] if text[:1] in "+-" else text
    end = 0
    while end < len(digits) and digits[end].isdigit():
        end += 1
    return sign * int(digits[:end] or "0")


def _matching(value, arg):
    """`NAME=VALUE` tests the value too; `NAME` only that it is set."""
    _, eq, wanted = arg.partition("=")
    return value is not None and (not eq or value == wanted)


def _env(arg, env, lookup):
    value = env.get(arg.partition("=")[0])
    return [value] if _matching(value, arg) else []


def _not_env(arg, env, lookup):
    value = env.get(arg.partition("=")[0])
    return [] if _matching(value, arg) else [value]


def _opt(arg, env, lookup):
    value = lookup(arg.partition("=")[0])
    return [value] if _matching(value, arg) else []


def _not_opt(arg, env, lookup):
    value = lookup(arg.partition("=")[0])
    return [] if _matching(value, arg) else [value]


def _path_test(test, wanted):
    def check(arg, env, lookup):
        return [arg] if test(arg) == wanted else []
    return check


def _hostname(wanted):
    def check(arg, env, lookup):
        return [arg] if (socket.gethostname() == arg) == wanted else []
    return check


def _hostname_regexp(arg):
    """The pattern of an if-hostname-match; ConfigError for one that is
    no regexp."""
    from ugu import pcre
    try:
        return pcre.compile(arg)
    except re.error as e:
        raise ConfigError(f"'{arg}' is no regular expression ({e}): fix "
                          "the pattern") from None


def _hostname_match(wanted):
    def check(arg, env, lookup):
        # uWSGI searches the hostname with the pattern, as PCRE does (see
        # README: its 2.0 built on PCRE2 finds no match).  A pattern that
        # is no regexp was refused as the block opened: its keys are
        # dropped whichever the test.
        try:
            regexp = _hostname_regexp(arg)
        except ConfigError:
            return []
        found = regexp.search(socket.gethostname()) is not None
        return [arg] if found == wanted else []
    return check


def _plugin(wanted):
    def check(arg, env, lookup):
        from ugu import inventory
        return [arg] if inventory.has_plugin(arg) == wanted else []
    return check


def _reload(wanted):
    def check(arg, env, lookup):
        # The master counts its reloads in UWSGI_RELOADS.
        reloaded = int(env.get("UWSGI_RELOADS", "0") or "0") > 0
        return [None] if reloaded == wanted else []
    return check


BLOCKS = {
    "for": _words,
    "for-glob": _glob,
    "for-times": _times,
    "for-readline": _lines,
    "if-env": _env,
    "if-not-env": _not_env,
    "if-opt": _opt,
    "if-not-opt": _not_opt,
    "if-exists": _path_test(os.path.exists, True),
    "if-not-exists": _path_test(os.path.exists, False),
    "if-file": _path_test(os.path.isfile, True),
    "if-not-file": _path_test(os.path.isfile, False),
    "if-dir": _path_test(os.path.isdir, True),
    "if-not-dir": _path_test(os.path.isdir, False),
    "if-hostname": _hostname(True),
    "if-not-hostname": _hostname(False),
    "if-hostname-match": _hostname_match(True),
    "if-not-hostname-match": _hostname_match(False),
    "if-plugin": _plugin(True),
    "if-not-plugin": _plugin(False),
    "if-reload": _reload(True),
    "if-not-reload": _reload(False),
}


class Block:
    """An open block: the option that opened it and its argument."""

    def __init__(self, name, arg):
        self.name, self.arg = name, arg

    def check(self):
        """ConfigError for an argument the test cannot read."""
        if self.name.endswith("hostname-match"):
            _hostname_regexp(self.arg)

    def values(self, value, env, lookup):
        """The values `value` takes inside the block, one per repetition.
        A test of something unset has no value: `%(_)` stays as it is."""
        return [value if item is None else value.replace(CURRENT, item)
                for item in BLOCKS[self.name](self.arg, env, lookup)]
