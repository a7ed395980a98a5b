"""The regexps of a config (routes, log routes, log-drain and log-filter,
log alarms, static-expires) are PCRE's in uWSGI; ugu compiles them with
Python's re, which reads nearly all of them the same way.

The common differences are rewritten here: PCRE's POSIX classes inside a
bracket (`[[:digit:]]`, `[^[:space:]]`), which Python reads as a set of
the letters `[:digt` followed by a `]`, matching nothing the author
meant, and warns about (each becomes the ASCII range PCRE gives it); and
PCRE's `\\Z` and `\\z`, the ends of the subject, which a log line (matched
with its newline) tells apart; and `{,N}`, which the PCRE uWSGI is built
with (10.42) reads as those characters, and Python as a repeat.  Classes
and word boundaries are ASCII's, as in a PCRE without UTF, and `\\u`,
which PCRE refuses, is refused.
"""

import re
import warnings

# PCRE's POSIX classes (without UCP: ASCII only), as Python writes their
# content inside a bracket.
_CLASSES = {
    "alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "ascii": r"\x00-\x7f",
    "blank": r" \t", "cntrl": r"\x00-\x1f\x7f", "digit": "0-9",
    "graph": r"\x21-\x7e", "lower": "a-z", "print": r"\x20-\x7e",
    "punct": r"!-/:-@\[-`{-~", "space": r"\t\n\x0b\f\r ", "upper": "A-Z",
    "word": "a-zA-Z0-9_", "xdigit": "0-9A-Fa-f",
}
# The negated ones Python can say inside a bracket.
_NEGATED = {"digit": r"\D", "space": r"\S", "word": r"\W"}
_POSIX = re.compile(r"\[:(\^?)([a-z]*):\]")
# PCRE's ends of the subject, in Python's words: its \Z also matches
# before a newline that ends the subject (Python's only at the very
# end), and its \z is Python's \Z.
_END = {"\\Z": r"(?=\n?\Z)", "\\z": r"\Z"}
# Python's escapes for a code point, which PCRE (without UTF) refuses.
_REFUSED = ("\\u", "\\U")


def compile(pattern):
    """The compiled regexp (str or bytes, as `pattern`); re.error for one
    neither PCRE nor Python can read."""
    is_bytes = isinstance(pattern, bytes)
    text = pattern.decode("latin-1") if is_bytes else pattern
    text = _rewrite(text)
    with warnings.catch_warnings():
        # "Possible nested set": a `[` in a bracket, which both read as
        # the character today.
        warnings.simplefilter("ignore", FutureWarning)
        if is_bytes:
            return re.compile(text.encode("latin-1"))
        return re.compile(text, re.ASCII)


def _rewrite(text):
    """The pattern with each POSIX class inside a bracket written out."""
    out, i, inside = [], 0, False
    while i < len(text):
        char = text[i]
        if char == "\\":
            escape = text[i:i + 2]
            if escape in _REFUSED:
                raise re.error(f"PCRE does not support {escape}: write "
                               "the character itself, or \\xHH")
            out.append(_END.get(escape, escape) if not inside else escape)
            i += 2
            continue
        if not inside and text.startswith("{,", i):
            out.append("\\{")
            i += 1
            continue
        if not inside and char == "[":
            # `[]...]` and `[^]...]`: the first `]` is a character.
            start = i + 1 + (text[i + 1:i + 2] == "^")
            start += text[start:start + 1] == "]"
            out.append(text[i:start])
            i, inside = start, True
            continue
        if inside:
            posix = _POSIX.match(text, i)
            if posix:
                out.append(_posix(*posix.groups()))
                i = posix.end()
                continue
            inside = char != "]"
        out.append(char)
        i += 1
    return "".join(out)


def _posix(negated, name):
    if name not in _CLASSES:
        raise re.error(f"unknown POSIX class name [:{negated}{name}:]")
    if not negated:
        return _CLASSES[name]
    if name not in _NEGATED:
        raise re.error(f"[:^{name}:] is not supported inside a bracket: "
                       f"write a bracket of its own, [^[:{name}:]]")
    return _NEGATED[name]
