"""The Expires headers of a static file (`static-expires*` options).

As in uWSGI, four subjects are looked at, each adding at most one
Expires header: the file's name (`static-expires`), PATH_INFO
(`-path-info`), REQUEST_URI (`-uri`), each by a regexp searched in it, and
the Content-Type (`-type`), matched whole.  For each subject the first
rule that matches counts, the plain rules (the request's start plus
SECONDS) before the `-mtime` ones (the file's mtime plus SECONDS).  The
type's header follows Content-Type; the others come first.
"""

import functools
import re
import time

from ugu import pcre
from ugu.options import registry
from ugu.options.errors import ConfigError

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
          "Oct", "Nov", "Dec")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# option -> (subject, from the file's mtime)
OPTIONS = {
    "static-expires": ("filename", False),
    "static-expires-mtime": ("filename", True),
    "static-expires-path-info": ("path_info", False),
    "static-expires-path-info-mtime": ("path_info", True),
    "static-expires-uri": ("uri", False),
    "static-expires-uri-mtime": ("uri", True),
    "static-expires-type": ("type", False),
    "static-expires-type-mtime": ("type", True),
}
SUBJECTS = ("filename", "path_info", "uri")


class Expires:
    def __init__(self, rules):
        # subject -> [(match, seconds, from_mtime)], plain rules first
        self.rules = rules

    @classmethod
    def from_config(cls, config):
        """The rules of the config, or None when it has none."""
        rules = {}
        for entry in config.entries:
            opt = None if entry.placeholder else registry.lookup(entry.key)
            if opt is None or opt.name not in OPTIONS:
                continue
            subject, mtime = OPTIONS[opt.name]
            rule = _rule(entry, subject, mtime)
            rules.setdefault(subject, []).append(rule)
        if not rules:
            return None
        for found in rules.values():
            found.sort(key=lambda rule: rule[2])    # stable: plain first
        return cls(rules)

    def headers(self, subjects, now, mtime):
        """The Expires headers that precede Content-Encoding."""
        return [("Expires", date) for subject in SUBJECTS
                if (date := self._date(subject, subjects[subject], now,
                                       mtime))]

    def type_header(self, content_type, now, mtime):
        """The Expires header that follows Content-Type, or None."""
        date = self._date("type", content_type, now, mtime)
        return ("Expires", date) if date else None

    def _date(self, subject, value, now, mtime):
        for match, seconds, from_mtime in self.rules.get(subject, ()):
            if match(value):
                return http_date((mtime if from_mtime else now) + seconds)
        return None


def _rule(entry, subject, mtime):
    """(match, seconds, from_mtime) of `REGEXP SECONDS`, or of
    `TYPE=SECONDS` for a type."""
    separator = "=" if subject == "type" else " "
    key, found, seconds = entry.value.partition(separator)
    if not found:
        raise ConfigError(f"invalid dictionary syntax for {entry.key}",
                          entry.file, entry.line, entry.key)
    if not (seconds.isascii() and seconds.isdigit()):
        # uWSGI reads any text as a number, and makes one of garbage.
        raise ConfigError(f"'{seconds}' is not a number of seconds",
                          entry.file, entry.line, entry.key)
    if subject == "type":
        return (lambda value: value == key), int(seconds), mtime
    try:
        pattern = pcre.compile(key)
    except re.error as e:
        raise ConfigError(f'invalid regexp "{key}": {e}', entry.file,
                          entry.line, entry.key) from None
    return pattern.search, int(seconds), mtime


def http_date(when):
    """uWSGI's HTTP date: RFC 1123, the year as wide as it needs."""
    return _http_date(int(when))


# A static file's Last-Modified is the same text request after request,
# and an Expires of `now` the same for a second: formatting it costs
# 1.7 us, a hit 0.2 us.
@functools.lru_cache(maxsize=256)
def _http_date(when):
    t = time.gmtime(when)
    return (f"{DAYS[t.tm_wday]}, {t.tm_mday:02d} {MONTHS[t.tm_mon - 1]} "
            f"{t.tm_year:4d} {t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d} GMT")
