"""uWSGI's INI dialect, read into an ordered list of entries.

What differs from configparser, on purpose: a key may repeat and every
occurrence is kept in order; only lines that *start* with `;` or `#` are
comments (`k = a ; b` keeps `a ; b`); quotes are kept; a line without `=`
is a key with an empty value; a section may appear several times and all
of its blocks are used.  Magic variables (`%d`, `%n`, ...) are expanded on
the raw text before the line is split, as uWSGI does.
"""

from dataclasses import dataclass

from ugu.options.errors import ConfigError
from ugu.options.expand import expand_magic


@dataclass(frozen=True)
class Entry:
    key: str
    value: str
    file: str | None = None
    line: int | None = None


def read_ini(path, section="uwsgi", first_path=None):
    """Entries of `section` in the INI file at `path`, magic expanded."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read config file: {e.strerror}",
                          file=path) from None
    return parse_ini(text, path, section, first_path or path)


def parse_ini(text, path, section="uwsgi", first_path=None):
    entries, current, found = [], None, False
    for number, raw in enumerate(text.split("\n"), start=1):
        line = expand_magic(raw, path, first_path or path, section,
                            number).strip(" \t\r")
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            # uWSGI drops the first and last characters, no inner trimming.
            current = line[1:-1]
            found = found or current == section
            continue
        if current != section:
            continue
        key, _, value = line.partition("=")
        entries.append(Entry(key.strip(" \t"), value.strip(" \t"), path,
                             number))
    if not found:
        raise ConfigError(f'no section "[{section}]" in this file',
                          file=path)
    return entries
