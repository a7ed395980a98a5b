"""The substitutions of uWSGI's config language.

Magic variables (`%d`, `%n`, ...) describe the config file and are expanded
in file text only (see `ini.py`).  After every file is read, the values go
through three passes, in uWSGI's order: `$(ENV)`, then `@(file)`, then
`%(name)`.  A reference that cannot be resolved stays literal.

The passes copy uWSGI's scanner closely, quirks included, because configs
in the wild depend on them: a value is rescanned after each substitution,
so a replacement that holds a reference is expanded too, except at the very
first character of the value; and `%(name)` reads the value of the first
entry called `name` as it stands at that moment of the pass.
"""

import grp
import os
import pwd
import socket
import sys
import time

from ugu import UWSGI_VERSION
from ugu.options.errors import ConfigError
from ugu.options.sources import is_local_file, read_source

# Letters whose upper-case twin names the first config file loaded.
FIRST_FILE_LETTERS = "odspcenxij"
# A value that is still growing past these has a reference to itself
# (uWSGI loops until memory runs out); ugu stops with an error.
MAX_SUBSTITUTIONS = 10_000
MAX_VALUE_LENGTH = 1 << 20
INT64 = 1 << 64


def djb33x(data):
    """uWSGI's `djb33x_hash`, over signed chars as x86 C compilers read
    them."""
    value = 5381
    for byte in data:
        signed = byte - 256 if byte > 127 else byte
        value = ((value << 5) + value ^ signed) & 0xFFFFFFFF
    return value


def _full_path(path, cwd):
    # uWSGI resolves links in the path with realpath(), except when the
    # file itself is a link: then it only prefixes the cwd.
    if os.path.islink(path):
        return path if path.startswith("/") else f"{cwd}/{path}"
    return os.path.realpath(path)


def _path_magic(path, cwd):
    if not is_local_file(path):
        # stdin and commands have no path: uWSGI leaves these empty.
        return dict.fromkeys("psdcenji0123456789", "")
    full = _full_path(path, cwd)
    folder, _, base = full.rpartition("/")
    stem, dot, ext = base.rpartition(".")
    table = {
        "p": full,
        "s": base,
        # uWSGI's %d keeps the trailing slash: "%dapp.py" is the idiom.
        "d": folder + "/",
        "c": folder.rpartition("/")[2],
        "e": ext if dot else "",
        "n": stem if dot else base,
        "j": djb33x(os.fsencode(full)).to_bytes(4, "little").hex().upper(),
    }
    parts = [p for p in folder.split("/") if p]
    for i in range(10):
        table[str(i)] = parts[i] if i < len(parts) else ""
    try:
        table["i"] = str(os.lstat(full).st_ino)
    except (OSError, ValueError):
        table["i"] = ""
    return table


def _process_magic():
    uid, gid = os.getuid(), os.getgid()
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return {
        "h": socket.gethostname(),
        # uWSGI's binary path; ugu's binary is the interpreter running it.
        "b": sys.executable,
        "k": str(os.cpu_count() or 1),
        "v": os.getcwd(),
        "V": UWSGI_VERSION,
        "t": str(int(time.time())),
        "T": str(int(time.time() * 1_000_000)),
        "u": str(uid),
        "U": user,
        "g": str(gid),
        "G": group,
        "[": "\x1b",
        "%": "%",
        "(": "%(",  # kept for the %(name) pass
    }


def magic_table(path, name=None, section="", first=None):
    """The magic variables for the config file at `path`.

    `name` is the file as the user wrote it (`%o`), `section` the one asked
    for after a colon (`%x`), and `first` the table of the first file
    loaded, which the upper-case letters repeat; without it they are empty,
    as for config files given without `--ini`.
    """
    table = _process_magic()
    table.update(_path_magic(path, os.getcwd()))
    table["o"] = path if name is None else name
    table["x"] = section
    for letter in FIRST_FILE_LETTERS:
        table[letter.upper()] = (first or {}).get(letter, "")
    return table


def as_first(table):
    """`table` for the first config file: the upper-case letters repeat
    its own values."""
    return {**table, **{c.upper(): table[c] for c in FIRST_FILE_LETTERS}}


def expand_value(values, index, symbol, hook):
    """uWSGI's `uwsgi_apply_config_pass` on `values[index]`: replace each
    `symbol(inner)` with `hook(inner)`, or leave it when that is None.
    The list is updated after each replacement, so that a hook reading
    the values sees the current text."""
    # state: 0 outside a reference, 1 just after the symbol, then 2 plus
    # the number of characters read inside the parentheses.
    value, j, state, depth, start, count = values[index], 0, 0, 0, 0, 0
    while j < len(value):
        ch = value[j]
        if ch == symbol:
            state = 1
        elif ch == "(" and state == 1:
            state, depth, start = 2, 0, j + 1
        elif state > 1 and ch == ")" and depth == 0:
            inner = value[start:start + state - 2]
            found = hook(inner) if state > 2 else None
            state = 0
            if found is not None:
                count += 1
                value = value[:start - 2] + found + value[j + 1:]
                values[index] = value
                _check_growth(value, count)
                # uWSGI restarts at index 1, so a reference that lands
                # at the very start is left as it is.
                j = 1
                continue
        elif state > 1:
            depth += {"(": 1, ")": -1}.get(ch, 0)
            state += 1
        else:
            state = 0
        j += 1


def _check_growth(value, count):
    if count > MAX_SUBSTITUTIONS or len(value) > MAX_VALUE_LENGTH:
        raise ConfigError("the expansion of this value never ends (it "
                          "refers to itself)")


def read_at_file(path):
    """The `@(path)` replacement: the text of the file (or of
    `exec://COMMAND`'s output) less one final newline."""
    try:
        content = read_source(path)
    except (OSError, ValueError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError(f"@({path}): {reason}") from None
    return content[:-1] if content.endswith(("\n", "\r")) else content


def placeholder(inner, lookup):
    """The `%(inner)` replacement: the value of the entry `inner`, or, when
    it holds spaces, uWSGI's small expression language."""
    if " " not in inner:
        return lookup(inner)
    return _evaluate([t for t in inner.split(" ") if t], lookup)


def _evaluate(tokens, lookup):
    """Tokens are concatenated; a number stands for itself, other words
    for an entry's value ("" when there is none); `+ - * /` apply to the
    next token only; `++`/`--` step the result so far."""
    current, operator = None, None
    for token in tokens:
        if token in ("+", "-", "*", "/"):
            operator = token
            continue
        if token in ("++", "--"):
            if current is not None:
                step = 1 if token == "++" else -1
                current = _int64_str(_strtoll(current) + step)
            operator = None
            continue
        number = token.isascii() and token.isdigit()
        value = token if number else lookup(token) or ""
        current = _apply(operator, current, value)
        operator = None
    return current


def _apply(operator, left, right):
    if operator is None:
        return (left or "") + right
    a, b = _strtoll(left or ""), _strtoll(right)
    if operator == "+":
        result = a + b
    elif operator == "-":
        result = a - b
    elif operator == "*":
        result = a * b
    elif b == 0:
        result = 0  # uWSGI's guard against division by zero
    else:
        result = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
    return _int64_str(result)


def atoi(text):
    """C's atoi: optional blanks and sign, then digits; 0 when there are
    none.  uWSGI reads numbers so, so `processes = 4 # four` means 4."""
    text = text.lstrip(" \t\n\r\f\v")
    sign = -1 if text[:1] == "-" else 1
    digits = text[1:] if text[:1] in "+-" else text
    end = 0
    while end < len(digits) and digits[end] in "0123456789":
        end += 1
    return sign * int(digits[:end] or "0")


def _strtoll(text):
    """C's strtoll in base 10, clamped to 64 bits."""
    return max(-INT64 // 2, min(INT64 // 2 - 1, atoi(text)))


def _int64_str(number):
    # Signed 64-bit arithmetic wraps around, as the C code's does.
    number %= INT64
    return str(number - INT64 if number >= INT64 // 2 else number)
