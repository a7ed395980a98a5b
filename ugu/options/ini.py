"""uWSGI's INI dialect, read into an ordered list of entries.

What differs from configparser, on purpose: a key may repeat and every
occurrence is kept in order; only lines that *start* with `;` or `#` are
comments (`k = a ; b` keeps `a ; b`); quotes are kept; a line without `=`
is a key with an empty value; `[ uwsgi ]` is a section named " uwsgi "; a
section may appear several times and all of its blocks are used.  Magic
variables (`%d`, `%n`, ...) are expanded over the raw text before it is
split into lines, as uWSGI does.

One choice of ugu's own: a file without the section asked for is an error
naming the file, where uWSGI warns and starts without that file's options.
"""

import re
from dataclasses import dataclass

from ugu.options.errors import ConfigError
from ugu.options.expand import as_first, magic_table

# A magic variable (`%` and the character after it), a `%` that ends the
# text, or a line break.
_TOKENS = re.compile(r"%(.)|%\Z|\n", re.DOTALL)
_BLANKS = " \t\r"


@dataclass(frozen=True)
class Entry:
    key: str
    value: str
    file: str | None = None
    line: int | None = None
    # Set by set-placeholder: usable as %(key), never read as an option.
    placeholder: bool = False


def read_ini(path, section="uwsgi", magic=None):
    """Entries of `section` in the INI file at `path`.

    `magic` is the table of magic variables; by default, the one of `path`
    read as the first config file.
    """
    return parse_ini(read_file(path), path, section, magic)


def read_file(path):
    """The text of a config file, or a ConfigError naming it."""
    try:
        # newline="": a CR stays in the text, where a `%` may eat it.
        with open(path, encoding="utf-8", errors="surrogateescape",
                  newline="") as f:
            return f.read()
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError(f"cannot read config file: {reason}",
                          file=path) from None


def parse_ini(text, path, section="uwsgi", magic=None):
    """Entries of `section` in INI `text`, which was read from `path`."""
    if magic is None and "%" in text:
        magic = as_first(magic_table(path))
    entries, current, found = [], "", False
    for number, line in _lines(text, magic or {}):
        line = line.strip(_BLANKS)
        if not line or line[0] in ";#":
            continue
        if line[0] == "[":
            # uWSGI drops the first and last characters, no inner trimming.
            current = line[1:-1]
            found = found or current == section
        elif current == section:
            key, _, value = line.partition("=")
            entries.append(Entry(key.rstrip(_BLANKS),
                                 value.strip(_BLANKS), path, number))
    if not found:
        raise ConfigError(f"cannot find section [{section}] in this INI "
                          "file (name another one as FILE:SECTION)",
                          file=path)
    return entries


def _lines(text, magic):
    """(line number, line) pairs of `text` with its magic variables
    substituted.  As uWSGI substitutes over the whole text, a `%` just
    before a line break eats the break and joins the two lines, and an
    unknown letter (or a `%` ending the file) gives nothing."""
    parts, number, start, pos = [], 1, 1, 0
    for match in _TOKENS.finditer(text):
        parts.append(text[pos:match.start()])
        pos = match.end()
        if match.group() == "\n":
            yield start, "".join(parts)
            parts, number = [], number + 1
            start = number
            continue
        letter = match.group(1)
        parts.append(magic.get(letter, "") if letter else "")
        number += letter == "\n"
    parts.append(text[pos:])
    yield start, "".join(parts)
