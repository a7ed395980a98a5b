"""uWSGI's custom options: `declare-option` and `declare-option2`.

`declare-option = NAME=TEMPLATE` makes NAME an option.  TEMPLATE is
`KEY=VALUE` pairs joined by `;`, where `$1`, `$2`, ... stand for the
space-separated words of NAME's value: after

    declare-option = myopt=socket=$1;processes=$2

the line `myopt = :3031 4` sets `socket = :3031` and `processes = 4`.

When it acts, as uWSGI's:

- `declare-option` is immediate: a NAME line read after it acts at once,
  on its raw text (no `$(VAR)`, `@(file)` or `%(name)` pass), and what it
  sets counts before every option that is not immediate (`processes = 2`
  anywhere in the file wins over what `myopt` sets).  A NAME line read
  before it acts where it is, once the files are read, after the passes.
- `declare-option2` declares NAME once the files are read, at its place:
  NAME lines after it act there, after the passes; one before it is a
  placeholder in uWSGI, and an error here.

What a template sets is applied, never listed: `--show-config` and
`uwsgi.opt` show the NAME line, and `%(socket)` does not see the socket
it set.

Where uWSGI goes on with a bad line, ugu stops with the file and line: a
value with more or fewer words than the template uses (uWSGI leaves `$2`
as it is, or drops the extra words), a template part without `=` (uWSGI
drops it and the rest), a KEY that is no option (uWSGI skips it).
"""

import re
from dataclasses import dataclass

from ugu.options import registry
from ugu.options.errors import ConfigError
from ugu.options.ini import Entry
from ugu.options.logic import BLOCKS, END_KEYS

IMMEDIATE, CONFIGURED = "declare-option", "declare-option2"
# uWSGI gives the option a value on the command line when its template
# uses one of these (and `$4` alone, none).
_TAKES_VALUE = ("$1", "$2", "$3")
_ARG = re.compile(r"\$([1-9])")
# Templates that set each other in a circle would expand without end.
MAX_DEPTH = 100


@dataclass(frozen=True)
class Custom:
    name: str
    parts: tuple          # (KEY, VALUE) of the template, in order
    words: int            # how many words a value must have
    file: str | None
    line: int | None

    @property
    def takes_value(self):
        return any(arg in f"{k}={v}" for k, v in self.parts
                   for arg in _TAKES_VALUE)

    @property
    def where(self):
        place = self.file or "the command line"
        return f"{place}:{self.line}" if self.line else place


def declare(entry, declared):
    """The Custom a `declare-option` or `declare-option2` entry declares;
    `declared` holds those declared before it, by name."""
    name, eq, template = entry.value.partition("=")
    if not eq or not name:
        # uWSGI's words, then the fix.
        raise ConfigError(f"invalid {entry.value} syntax, must be "
                          "newoption=template (as in `myopt=socket=$1;"
                          "processes=$2`)", entry.file, entry.line,
                          entry.key)
    if name != name.strip():
        # A file's keys are stripped, so no line could use this name.
        raise ConfigError(f"the name '{name}' has a space at its end or "
                          "start, so no line can use it (uWSGI declares "
                          "it all the same): write `declare-option = "
                          f"{name.strip()}={template.strip()}`, no spaces "
                          "around the first '='", entry.file, entry.line,
                          entry.key)
    if registry.lookup(name) or registry.is_unimplemented_uwsgi_option(name):
        raise ConfigError(f"{name} is already a uWSGI option, which uWSGI "
                          "would run instead: give the new one another name",
                          entry.file, entry.line, entry.key)
    if name in declared:
        # uWSGI looks options up by name, and finds the first.
        raise ConfigError(f"{name} is declared at {declared[name].where} "
                          "already, and uWSGI would keep that one: give "
                          "this one another name, or remove it",
                          entry.file, entry.line, entry.key)
    parts = []
    for part in filter(None, template.split(";")):
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise ConfigError(f"'{part}' in the template of {name} is not "
                              "KEY=VALUE (uWSGI drops it and the parts "
                              "after it): write each part as KEY=VALUE, "
                              "joined by ';'", entry.file, entry.line,
                              entry.key)
        opt = registry.lookup(key)
        if (opt.name if opt else key) in BLOCKS or key in END_KEYS:
            raise ConfigError(f"the template of {name} opens a logic block "
                              f"({key}), which would take in the lines "
                              "after its use: write the block in the file",
                              entry.file, entry.line, entry.key)
        parts.append((key, value))
    words = max((int(n) for n in _ARG.findall(template)), default=0)
    return Custom(name, tuple(parts), words, entry.file, entry.line)


def expand(custom, use, **marks):
    """The entries the line `use` of `custom` sets, each at the use's
    file and line, with `marks` (Entry's flags)."""
    words = [word for word in use.value.split(" ") if word]
    if custom.words != len(words) and (custom.words or _false(use.value)):
        raise ConfigError(_count_error(custom, use, words), use.file,
                          use.line, use.key)
    found = []
    for key, value in custom.parts:
        # In uWSGI's order: $1 first, then $2 in what that gave...
        for number, word in enumerate(words or [""], 1):
            key = key.replace(f"${number}", word)
            value = value.replace(f"${number}", word)
        found.append(Entry(key, value, use.file, use.line, derived=True,
                           **marks))
    return found


def _false(value):
    return value.lower() in ("false", "off", "no", "0")


def _count_error(custom, use, words):
    if not custom.words:
        return (f"{custom.name} (declared at {custom.where}) takes no value, "
                "and uWSGI applies it whatever the value, `false` too: "
                "remove the line to leave it out")
    wanted = " ".join(f"VALUE{n}" for n in range(1, custom.words + 1))
    got = f"{len(words)}: {use.value!r}" if words else "none"
    return (f"{custom.name} (declared at {custom.where}) takes "
            f"{custom.words} space-separated values for $1 to "
            f"${custom.words}, got {got} (uWSGI would leave the missing "
            "$N as written, or drop the extra words): write "
            f"`{custom.name} = {wanted}`")


def check_key(custom, entry, declared):
    """A KEY the template sets must be an option (uWSGI skips any other,
    silently) or another declared option."""
    if (registry.lookup(entry.key) is None
            and not registry.is_unimplemented_uwsgi_option(entry.key)
            and entry.key not in declared):
        raise ConfigError(f"the template of {custom.name} (declared at "
                          f"{custom.where}) sets '{entry.key}', which is "
                          "not an option: fix the template",
                          entry.file, entry.line, custom.name)

