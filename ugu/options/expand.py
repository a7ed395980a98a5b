"""The substitutions of uWSGI's config language.

Magic variables (`%d`, `%n`, ...) describe the config file and are expanded
in file text only.  After every file is read, each value goes through three
passes, in uWSGI's order: `$(ENV)`, then `@(file)`, then `%(name)`.  A
reference that cannot be resolved stays literal, as in uWSGI.
"""

import getpass
import grp
import os
import socket
import time

from ugu import UWSGI_VERSION
from ugu.options.errors import ConfigError


def _path_magic(path):
    absolute = os.path.abspath(path)
    folder = os.path.dirname(absolute)
    base = os.path.basename(absolute)
    stem, dot, ext = base.rpartition(".")
    table = {
        "o": path,
        "p": absolute,
        "s": base,
        # uWSGI's %d keeps the trailing slash: "%dapp.py" is the idiom.
        "d": folder.rstrip("/") + "/",
        "e": ext if dot else "",
        "n": stem if dot else base,
        "c": os.path.basename(folder),
    }
    parts = [p for p in folder.split("/") if p]
    for i in range(10):
        table[str(i)] = parts[i] if i < len(parts) else ""
    try:
        table["i"] = str(os.stat(absolute).st_ino)
    except OSError:
        table["i"] = "0"
    table["j"] = format(hash(absolute) & 0xFFFFFFFF, "x")
    return table


def _process_magic():
    return {
        "h": socket.gethostname(),
        "k": str(os.cpu_count() or 1),
        "v": os.getcwd(),
        "V": UWSGI_VERSION,
        "t": str(int(time.time())),
        "T": str(int(time.time() * 1_000_000)),
        "u": str(os.getuid()),
        "U": getpass.getuser(),
        "g": str(os.getgid()),
        "G": grp.getgrgid(os.getgid()).gr_name,
        "[": "\x1b",
        "%": "%",
    }


def magic_table(path, first_path, section):
    table = _process_magic()
    table.update(_path_magic(path))
    table["x"] = section if section != "uwsgi" else ""
    # Upper-case letters name the first config file loaded.
    for key, value in _path_magic(first_path).items():
        if key in "opsdencij":
            table[key.upper()] = value
    return table


def expand_magic(text, path, first_path, section, line=None):
    if "%" not in text:
        return text
    table = magic_table(path, first_path, section)
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch != "%" or i + 1 == len(text):
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "(":
            out.append("%(")  # a placeholder, resolved later
        else:
            # uWSGI expands an unknown letter to nothing.
            out.append(table.get(nxt, ""))
        i += 2
    return "".join(out)


def _references(value, opener):
    """Yield (start, end, inner) for each balanced `opener...)` in value."""
    start = value.find(opener)
    while start != -1:
        depth, i = 1, start + len(opener)
        while i < len(value) and depth:
            depth += {"(": 1, ")": -1}.get(value[i], 0)
            i += 1
        if depth:
            return
        yield start, i, value[start + len(opener):i - 1]
        start = value.find(opener, i)


def _substitute(value, opener, resolve):
    out, last = [], 0
    for start, end, inner in _references(value, opener):
        replacement = resolve(inner)
        if replacement is None:
            continue
        out.append(value[last:start])
        out.append(replacement)
        last = end
    out.append(value[last:])
    return "".join(out)


def expand_env(value):
    return _substitute(value, "$(", os.environ.get)


def expand_files(value, entry):
    def read(path):
        try:
            with open(path, encoding="utf-8") as f:
                content = f.read()
        except OSError as e:
            raise ConfigError(f"@({path}): {e.strerror}", file=entry.file,
                              line=entry.line, option=entry.key) from None
        return content[:-1] if content.endswith(("\n", "\r")) else content
    return _substitute(value, "@(", read)


def expand_placeholders(value, lookup):
    """Replace `%(name)` with lookup(name); unknown names stay literal."""
    return _substitute(value, "%(", lookup)
