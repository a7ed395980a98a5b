"""The ordered list of entries, built as uWSGI builds it.

Entries arrive from the environment, the command line and config files.
"Immediate" options act as they arrive: `ini`, `include` and the format
options read a file in place; `set` and `set-placeholder` add an entry;
`strict` turns checking on; the logic options open a block (see
`logic.py`).  `inherit` is not immediate: its files are read after the
expansion passes and their entries appended at the end (see `resolve.py`).

A file that includes itself, directly or through others, is an error that
shows the chain of files (uWSGI recurses until it crashes).

An entry that is an error (an unknown key under strict, a file that cannot
be read, a `set` without `=`) is noted and reading goes on, where uWSGI
exits at the first: the user sees every problem of the files in one run.
"""

import dataclasses
import os
import re
import sys

from ugu.options import custom, registry
from ugu.options.errors import ConfigError, ConfigExit
from ugu.options.expand import as_first, magic_table
from ugu.options.formats import read_json, read_xml, read_yaml
from ugu.options.ini import (Entry, parse_ini, read_file, substitute_magic,
                              why)
from ugu.options.logic import BLOCKS, END_KEYS, Block
from ugu.options.sources import is_local_file, read_source

INI, YAML, XML, JSON = "ini", "yaml", "xml", "json"
# Formats by file extension, for config files named without an option.
EXTENSIONS = {".ini": INI, ".xml": XML, ".yaml": YAML, ".yml": YAML,
              ".json": JSON, ".js": JSON}
PARSERS = {YAML: read_yaml, XML: read_xml, JSON: read_json}
FORMAT_OPTIONS = {"ini": INI, "yaml": YAML, "xmlconfig": XML, "json": JSON,
                  # A PasteDeploy file's [uwsgi] section, read as uWSGI
                  # reads it (the app is loaded from the file later).
                  "ini-paste": INI, "ini-paste-logged": INI}
# Acted on as the line is read, by ugu/vassal/privileges.py.
PRIVILEGED = ("immediate-uid", "immediate-gid", "flock", "flock-wait",
              "early-envdir")
# uWSGI's start-up line for each format.
ANNOUNCE = {INI: "[uWSGI] getting INI configuration from {}",
            YAML: "[uWSGI] getting YAML configuration from {}",
            XML: "[uWSGI] parsing config file {}",
            JSON: "[uWSGI] getting JSON configuration from {}"}


class Reader:
    def __init__(self, environ, again=False):
        self.environ = environ
        # Read again by the process optimize started: what iprint said
        # as the first reading read it is not said twice.
        self.again = again
        self.entries, self.files = [], []
        self.formats = {}        # file -> format, for the start-up lines
        self.strict = False
        self.first_magic = None  # magic of the first file read
        self.magic = None        # ... and of the last
        self.last_file = None    # for `--ini :section`
        self.reading = []        # (file, section) being read, for loops
        self.opened = []         # every file, in the order it was opened
        self.block = None        # the open logic block
        self.in_block = False    # adding the keys of a block
        self.declared = {}       # name -> Custom, by declare-option
        self.depth = 0           # declared options expanding others
        # Values uWSGI accepts but that are likely mistakes: errors under
        # strict, warnings otherwise.
        self.problems = []
        self.errors = []         # what stops the start, said at the end
        self.fallback = None     # fallback-config, as soon as it is read
        # inject-before and inject-after: the text files put around each
        # config file read after them, as the lines naming them were read.
        self.inject = {"inject-before": [], "inject-after": []}

    def order(self, error):
        """Where an error sorts: its file in the order the files were
        opened (the environment and the command line first), then its
        line, then its entry's place (JSON and XML entries have no
        line)."""
        rank = (self.opened.index(error.file) if error.file in self.opened
                else -1)
        return rank, error.line or 0, self._place(error)

    def _place(self, error):
        for index, entry in enumerate(self.entries):
            if (entry.file, entry.key) == (error.file, error.option):
                return index
        return -1

    def add(self, entry):
        try:
            self._add(entry)
        except ConfigError as e:
            if e.file is None:
                # A block's test (for-readline) knows no line: the entry
                # that ran it does.
                e.file, e.line = entry.file, entry.line
                e.option = e.option or entry.key
            self.errors.append(e)

    def _add(self, entry):
        if entry.key in END_KEYS and not self.in_block:
            self.block = None
        elif self.block and not self.in_block:
            self._add_in_block(entry)
            return
        if self._use(entry):
            return
        self.entries.append(entry)
        if entry.placeholder:
            return
        opt = registry.lookup(entry.key)
        if opt is None and self.strict:
            # uWSGI checks each key as it is read, while strict is on,
            # and once more at the end.
            self.errors += self._strict_errors(entry)
        if opt and opt.immediate:
            self._immediate(opt, entry)
        elif opt and opt.name == "need-plugins":
            self._need_plugins(entry)

    def _strict_errors(self, entry):
        found = key_errors([entry], strict=True)
        if found and any(e.key == custom.CONFIGURED and
                         e.value.partition("=")[0] == entry.key
                         for e in self.entries):
            found = [ConfigError(
                f"[strict-mode] unknown config directive: {entry.key} "
                "(declare-option2 declares it once the files are read, so "
                "strict refuses it in uWSGI too: declare it with "
                "declare-option)", entry.file, entry.line, entry.key)]
        return found

    def _add_in_block(self, entry):
        values = self.block.values(entry.value, self.environ, self.lookup)
        self.in_block = True
        try:
            for value in values:
                self.add(Entry(entry.key, value, entry.file, entry.line))
        finally:
            self.in_block = False

    def _use(self, entry):
        """Apply a line of an option that declare-option declared, as
        uWSGI does: at once, on its raw text.  False for any other."""
        declared = None if entry.placeholder else self.declared.get(
            entry.key)
        if declared is None:
            return False
        self.entries.append(dataclasses.replace(entry, use=True,
                                                early=True))
        if re.search(r"[$@%]\(", entry.value):
            self.problems.append(ConfigError(
                "declare-option's options act on the line as written, as "
                "in uWSGI: its $(...), @(...) and %(...) stay literal "
                "(declare it with declare-option2 to have them replaced)",
                entry.file, entry.line, entry.key))
        if self.depth >= custom.MAX_DEPTH:
            raise ConfigError("declared options set each other without "
                              "end: fix their templates", entry.file,
                              entry.line, entry.key)
        self.depth += 1
        try:
            for derived in custom.expand(declared, entry, early=True):
                custom.check_key(declared, derived, self.declared)
                self.add(derived)
        finally:
            self.depth -= 1
        return True

    def lookup(self, key):
        """The raw value of the first entry called `key`, else None (what
        a declared option's template set is not seen, as in uWSGI)."""
        for entry in self.entries:
            if entry.key == key and not entry.derived:
                return entry.value
        return None

    def _immediate(self, opt, entry):
        if opt.name in BLOCKS:
            self._open_block(opt, entry)
        elif opt.name in FORMAT_OPTIONS:
            self.load(entry.value, entry, FORMAT_OPTIONS[opt.name])
        elif opt.name == "include":
            self.load(entry.value, entry)
        elif opt.name == "strict":
            self.strict = to_bool(entry)
        elif opt.name in ("set", "set-placeholder"):
            self._set(opt, entry)
        elif opt.name == "resolve":
            self._resolve(entry)
        elif opt.name == custom.IMMEDIATE:
            declared = custom.declare(entry, self.declared)
            self.declared[declared.name] = declared
        elif opt.name == "iprint" and not self.again:
            print(entry.value)
            sys.stdout.flush()
        elif opt.name == "fallback-config":
            self.fallback = entry.value
        elif opt.name in self.inject:
            self.inject[opt.name].append(entry)
        elif opt.name == "exit":
            raise ConfigExit(exit_status(entry))
        elif opt.name == "python-version" and to_bool(entry):
            # As the line is read, as uWSGI prints it: the version alone.
            import platform
            print(platform.python_version())
            sys.stdout.flush()
            raise ConfigExit(0)
        elif opt.name in PRIVILEGED and not self.again:
            # Read again by optimize's process: done already, in the
            # process it replaced.
            from ugu.vassal import privileges
            privileges.immediate(opt.name, entry.value)

    def _need_plugins(self, entry):
        """uWSGI loads a needed plugin as the line is read: one missing
        ends the start there, before an `exit` after it.  A value still
        to expand is checked once it is, with the others."""
        if re.search(r"[%$@]\(", entry.value):
            return
        for name in registry.plugin_names(entry.value):
            if not registry.built_in_plugin(name):
                raise ConfigError(registry.missing_plugin(name),
                                  entry.file, entry.line, entry.key)

    def _open_block(self, opt, entry):
        if self.block:
            raise ConfigError("recursive logic in options is not supported "
                              f"(a {self.block.name} block is open)",
                              entry.file, entry.line, entry.key)
        self.block = Block(opt.name, entry.value)
        self.block.check()

    def _set(self, opt, entry):
        key, value = key_value(entry)
        is_ph = opt.name == "set-placeholder"
        if is_ph and (registry.lookup(key)
                      or registry.is_unimplemented_uwsgi_option(key)):
            raise ConfigError(f"you cannot use {key} as a placeholder, "
                              "it is already available as an option",
                              entry.file, entry.line, entry.key)
        self.add(Entry(key, value, entry.file, entry.line, is_ph))

    def _resolve(self, entry):
        """`resolve = PLACEHOLDER=NAME`: the placeholder is NAME's IPv4
        address, looked up as the line is read (uWSGI's gethostbyname)."""
        key, eq, name = entry.value.partition("=")
        if not eq:
            raise ConfigError("invalid resolve syntax, must be "
                              "placeholder=domain", entry.file, entry.line,
                              entry.key)
        import socket
        try:
            address = socket.gethostbyname(name)
        except (OSError, UnicodeError) as e:
            reason = getattr(e, "strerror", None) or str(e)
            raise ConfigError(f"unable to resolve name {name} ({reason}): "
                              f"name a host the resolver knows, or set the "
                              f"placeholder with set-placeholder",
                              entry.file, entry.line, entry.key) from None
        self.add(Entry(key, address, entry.file, entry.line, True))

    def load(self, spec, origin=None, fmt=None):
        """Read the config `spec` (FILE[:SECTION]) in the format `fmt`, or
        by its extension."""
        option = origin.key if origin else None
        fmt = fmt or format_of(spec, origin)
        path, section, asked = split_section(spec, fmt)
        name = path
        if not path and fmt == INI:
            path, name = self.last_file, ""
        if not path:
            raise ConfigError("no config file to read the section from",
                              *where(origin), option)
        key = (os.path.abspath(path), section)
        if path not in self.opened:
            self.opened.append(path)
        if key in self.reading:
            raise ConfigError(self._loop(key, spec), *where(origin), option)
        text = _text(path, origin)  # first: the magic needs a real file
        if path not in self.files:
            # Announced once open, as uWSGI's are, whatever its text.
            self.files.append(path)
            self.formats[path] = fmt
        text, parts = self._injected(text, path)
        magic = self._magic(path, name, asked, spec)
        entries = self._parse(fmt, text, path, section, magic)
        self._read(_placed(entries, parts) if len(parts) > 1 else entries,
                   path, key)

    def _injected(self, text, path):
        """The text of a config file with the inject-before files' texts
        before it and the inject-after files' after it, joined as they
        are, as uWSGI joins them before it replaces the magic; and the
        parts, (file, lines), in that order."""
        before, after = (self.inject["inject-before"],
                         self.inject["inject-after"])
        texts = ([(e.value, _injected_text(e)) for e in before]
                 + [(path, text)]
                 + [(e.value, _injected_text(e)) for e in after])
        return ("".join(t for _, t in texts),
                [(name, t.count("\n")) for name, t in texts])

    def _loop(self, key, spec):
        start = self.reading.index(key)
        chain = [path for path, _ in self.reading[start:]]
        return "recursive include: " + " -> ".join(
            [os.path.relpath(p) for p in chain] + [spec])

    def _magic(self, path, name, asked, spec):
        magic = magic_table(path, name, asked, self.first_magic)
        if self.first_magic is None and is_local_file(path):
            magic = as_first(magic)
            # uWSGI's %O keeps the `:section` that %o drops, once the
            # first file has been read.
            self.first_magic = {**magic, "o": spec}
        self.magic = magic
        return magic

    def _parse(self, fmt, text, path, section, magic):
        if fmt == INI:
            return parse_ini(text, path, section, magic, self.problems)
        text = substitute_magic(text, magic, path, self.problems)
        return PARSERS[fmt](text, path, section)

    def _read(self, entries, path, key):
        self.last_file = path
        self.reading.append(key)
        try:
            for entry in entries:
                self.add(entry)
        finally:
            self.reading.pop()


def _placed(entries, parts):
    """The entries of a config file read with injected texts, each
    said at its line of the file its text came from."""
    for entry in entries:
        line = entry.line
        if line is not None:
            for name, count in parts:
                if line <= count or name == parts[-1][0]:
                    entry = dataclasses.replace(entry, file=name, line=line)
                    break
                line -= count
        yield entry


def _injected_text(entry):
    try:
        return read_source(entry.value)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read {entry.value}: {why(e)} (it is put "
                          "around each config file read after it)",
                          entry.file, entry.line, entry.key) from None


def _text(path, origin):
    """The text of a config file; one named in another file that cannot
    be read is an error at the line that names it, saying where it was
    looked for."""
    if origin is None or origin.file is None:
        return read_file(path)
    try:
        return read_source(path)
    except (OSError, ValueError) as e:
        raise ConfigError(f"cannot read config file {path}: {why(e)}"
                          f"{_relative_hint(path, origin)}", origin.file,
                          origin.line, origin.key) from None


def _relative_hint(path, origin):
    """A relative path is read from the current directory, as uWSGI reads
    it, not from the folder of the file that names it: say where it was
    looked for and, when the file is beside the one that names it, how to
    write that."""
    if not is_local_file(path) or os.path.isabs(path):
        return ""
    hint = (" (a relative path is read from the current directory, "
            f"{os.getcwd()}")
    beside = os.path.join(os.path.dirname(origin.file), path)
    if os.path.dirname(origin.file) and os.path.exists(beside):
        hint += (f"; for {beside}, beside {origin.file}, write "
                 f"`{origin.key} = %d{path}`")
    return hint + ")"


def format_of(spec, origin=None):
    """The format of a config file named without an option."""
    for extension, fmt in EXTENSIONS.items():
        if spec.endswith(extension):
            return fmt
    raise ConfigError(f"unable to load configuration from {spec} (config "
                      "files end in .ini, .yaml, .yml, .xml, .json or .js)",
                      *where(origin), origin.key if origin else None)


def split_section(spec, fmt=INI):
    """`file.ini:section` -> (file, section to read, section as asked).
    The colon is the last one; in a `scheme://` URL, the last one after
    the last slash.  An XML file without one reads any `<uwsgi>`."""
    default = "" if fmt == XML else "uwsgi"
    tail = spec.rfind("/") if "://" in spec else -1
    colon = spec.rfind(":")
    if colon <= tail:
        return spec, default, ""
    asked = spec[colon + 1:]
    return spec[:colon], asked or default, asked


def where(origin):
    return (origin.file, origin.line) if origin else (None, None)


def key_value(entry):
    """`KEY=VALUE`, split at the first `=` and not trimmed, as uWSGI
    does."""
    key, eq, value = entry.value.partition("=")
    if not eq or not key:
        raise ConfigError("expected KEY=VALUE", entry.file, entry.line,
                          entry.key)
    return key, value


FALSE_WORDS = {"false", "off", "no"}


def exit_status(entry):
    """The status of an `exit` line: 1 when bare on the command line, its
    number otherwise (an empty value: 0, as uWSGI's atoi reads it)."""
    if entry.bare:
        return 1
    value = entry.value.strip()
    if not re.fullmatch(r"[+-]?[0-9]*", value):
        raise ConfigError(f"'{entry.value}' is not an exit status (write "
                          "a number, as exit = 2)", entry.file, entry.line,
                          entry.key)
    return int(value) & 0xFF if value.strip("+-") else 0


def to_bool(entry):
    word = entry.value
    return not (word.lower() in FALSE_WORDS or word == "0")


def key_errors(entries, strict):
    """An error for each key uWSGI has but ugu refuses, and under strict
    for each key that is no option."""
    found = []
    for e in entries:
        if e.placeholder or e.use or registry.lookup(e.key):
            continue
        if registry.is_unimplemented_uwsgi_option(e.key):
            # The line names the declared option, not this one.
            origin = (" (set by the template of the declared option used "
                      "here)") if e.derived else ""
            found.append(ConfigError(registry.unimplemented_message(e.key)
                                     + origin, e.file, e.line, e.key))
        elif strict:
            # uWSGI's words, which log watchers grep, then ugu's hint.
            found.append(ConfigError(
                f"[strict-mode] unknown config directive: "
                f"{e.key}{suggest(e.key, e.value)}", e.file, e.line, e.key))
    return found


# How close to an option name a key must be for a warning without
# `strict`, where keys may be placeholders on purpose.
TYPO_CUTOFF = 0.8
# `http-socket 127.0.0.1:8000` or `module: app`: a key, then its value,
# whose own leading `:` (`socket :3031`) stays in it.
_WITHOUT_EQUALS = re.compile(r"([A-Za-z0-9_.-]+)(?:[ \t]*:)?[ \t]+(\S.*)|"
                             r"([A-Za-z0-9_.-]+):(\S.*)")


def names_used(entries):
    """The names the values refer to as `%(name)`."""
    return {name for e in entries
            for name in re.findall(r"%\(([^)]*)\)", e.value)}


def likely_typos(entries, used):
    """Warnings for keys that are not options and look like one misspelt
    or written without its `=`: uWSGI keeps them as placeholders without
    a word.  A key `used` as `%(key)` is a placeholder on purpose and is
    left alone."""
    seen, found = set(), []
    for e in entries:
        if (e.placeholder or e.use or e.key in seen or e.key in used
                or registry.lookup(e.key)
                or registry.is_unimplemented_uwsgi_option(e.key)):
            continue
        seen.add(e.key)
        hint = suggest(e.key, e.value, cutoff=TYPO_CUTOFF)
        if hint:
            found.append(ConfigError("not an option, so kept as a "
                                     f"placeholder only{hint}", e.file,
                                     e.line, e.key))
    return found


# The names a misspelt key may be meant as.  The logic keywords only for a
# key that starts as they do: `foo` is no misspelt `for` (and a block
# opened by mistake would swallow the lines after it), `if-envv` is one of
# `if-env`.
_LOGIC = sorted(BLOCKS.keys() | END_KEYS)
_OPTIONS = sorted(registry.BY_NAME.keys() - set(_LOGIC))
_LOGIC_PREFIXES = ("if-", "for-", "end")


def suggest(name, value=None, cutoff=0.6):
    """` (did you mean ...?)` for a key that is not an option, or ''.
    A line without `=` (value '') whose first word is an option gets the
    line as it should be written."""
    match = _WITHOUT_EQUALS.fullmatch(name) if value == "" else None
    if match:
        key = match.group(1) or match.group(3)
        rest = match.group(2) or match.group(4)
        if registry.lookup(key) or registry.is_unimplemented_uwsgi_option(
                key):
            return f" (the line has no '=': did you mean `{key} = {rest}`?)"
    names = _OPTIONS + (_LOGIC if name.startswith(_LOGIC_PREFIXES) else [])
    import difflib     # only when a name is wrong
    close = difflib.get_close_matches(name, names, n=1, cutoff=cutoff)
    return f" (did you mean '{close[0]}'?)" if close else ""
