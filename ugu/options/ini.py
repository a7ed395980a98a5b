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
from ugu.options.sources import read_source

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
    # A flag on the command line without a value (`--master`): its value
    # is "true", and uwsgi.opt shows it as True, as uWSGI does.
    bare: bool = False
    # The line of an option declared by declare-option (see custom.py):
    # not an option itself, what its template sets is.
    use: bool = False
    # Set by a declared option's template: applied, but never listed nor
    # seen by %(name), and never expanded again.
    derived: bool = False
    # Acted on as read, before every option that is not immediate (the
    # use of a declare-option's option, and what it sets).
    early: bool = False


def read_ini(path, section="uwsgi", magic=None):
    """Entries of `section` in the INI file at `path`.

    `magic` is the table of magic variables; by default, the one of `path`
    read as the first config file.
    """
    return parse_ini(read_file(path), path, section, magic)


def read_file(path):
    """The text of a config file (or `-`, or `exec://COMMAND`), or a
    ConfigError naming it."""
    try:
        return read_source(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read config file: {why(e)}",
                          file=path) from None


def why(error):
    """What an OSError (or ValueError) from reading a file says."""
    return getattr(error, "strerror", None) or str(error)


def parse_ini(text, path, section="uwsgi", magic=None, problems=None):
    """Entries of `section` in INI `text`, which was read from `path`.
    Magic variables that expand to nothing are reported to `problems`."""
    if magic is None and "%" in text:
        magic = as_first(magic_table(path))
    entries, current, found = [], "", False
    for number, line, unknown in _lines(text, magic or {}):
        line = line.strip(_BLANKS)
        if not line or line[0] in ";#":
            key = None
        elif line[0] == "[":
            # uWSGI drops the first and last characters, no inner trimming.
            current, key = line[1:-1], None
            found = found or current == section
            if not line.endswith("]") and problems is not None:
                problems.append(ConfigError(
                    f"the section header {line} has no closing ']': "
                    f"uWSGI reads it as [{current}], so the lines under "
                    f"it are not read (write {line}])", path, number))
        elif current == section:
            key, _, value = line.partition("=")
            key = key.rstrip(_BLANKS)
            entries.append(Entry(key, value.strip(_BLANKS), path, number))
        for what in unknown if problems is not None else ():
            problems.append(ConfigError(what, path, number, key))
    if not found:
        number, reason = _near_miss(text, section)
        raise ConfigError(reason or f"cannot find section [{section}] in "
                          "this INI file (name another one as "
                          "FILE:SECTION)", file=path, line=number)
    return entries


def _near_miss(text, section):
    """(line, why) for a file whose section header is there but does not
    read as one (uWSGI misses it too); (None, None) otherwise."""
    if text.startswith("\ufeff"):
        return 1, (f"the file starts with a byte order mark (BOM), which "
                   f"hides [{section}] on its first line: save the file "
                   f"as UTF-8 without BOM")
    for number, line in enumerate(text.split("\n"), 1):
        line = line.strip(_BLANKS)
        if line.startswith("[") and not line.endswith("]") and \
                line[1:].strip() == section:
            return number, (f"the section header {line} has no closing "
                            f"']'")
    return None, None


def substitute_magic(text, magic, path, problems):
    """`text` with its magic variables substituted, for the formats that
    are parsed after it."""
    lines = []
    for number, line, unknown in _lines(text, magic):
        lines.append(line)
        problems.extend(ConfigError(what, path, number) for what in unknown)
    return "\n".join(lines)


def _lines(text, magic):
    """(line number, line, problems) triples of `text` with its magic
    variables substituted.  As uWSGI substitutes over the whole text, a
    `%` just before a line break eats the break and joins the two lines,
    and an unknown letter (or a `%` ending the file) gives nothing."""
    parts, unknown, number, start, pos = [], [], 1, 1, 0
    for match in _TOKENS.finditer(text):
        parts.append(text[pos:match.start()])
        pos = match.end()
        if match.group() == "\n":
            yield start, "".join(parts), unknown
            parts, unknown, number = [], [], number + 1
            start = number
            continue
        letter = match.group(1)
        if letter not in magic:
            unknown.append(_unknown_magic(letter))
        parts.append(magic.get(letter, "") if letter else "")
        number += letter == "\n"
    parts.append(text[pos:])
    yield start, "".join(parts), unknown


def _unknown_magic(letter):
    fix = "write %% for a literal percent"
    if letter is None:
        return f"a '%' ending the file is dropped ({fix})"
    if letter in "\r\n":
        return f"a '%' ending a line joins it with the next one ({fix})"
    return f"unknown magic variable %{letter} expands to nothing ({fix})"
