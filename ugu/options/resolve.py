"""From argv, UWSGI_* variables and config files to one frozen Config.

Order, as in uWSGI: `UWSGI_<NAME>` environment variables first, then the
options of the command line left to right, each `--ini FILE` read in place,
then the config files named without an option.  "Immediate" options (`ini`,
`set`, `set-placeholder`, `strict`) act as they are read.  Then the
`$(ENV)`, `@(file)` and `%(name)` passes run over the other values, unknown
keys are refused (strict) or kept as placeholders, and each option's text
becomes a typed value: the last occurrence for a scalar, every one for a
repeatable.
"""

import difflib
import os

from ugu.options import registry
from ugu.options.errors import ConfigError
from ugu.options.expand import (as_first, expand_value, magic_table,
                                placeholder, read_at_file)
from ugu.options.ini import Entry, parse_ini, read_file

ENV_PREFIX = "UWSGI_"
# Variables uWSGI keeps for itself and never reads as options.
ENV_INTERNAL = {"RELOADS", "VASSALS_DIR", "EMPEROR_FD", "BROODLORD_NUM",
                "EMPEROR_FD_CONFIG", "EMPEROR_PROXY", "JAIL_PID",
                "ORIGINAL_PROC_NAME"}
FALSE_WORDS = {"false", "off", "no"}
TRUE_WORDS = {"true", "on", "yes"}
CONFIG_EXTENSIONS = (".ini",)


class Config:
    """Resolved options: typed values, plus the entries they came from."""

    def __init__(self, entries, files):
        self.entries = tuple(entries)
        self.files = tuple(files)
        self._values = _typed_values(self.entries)

    def __getitem__(self, name):
        opt = registry.lookup(name)
        if opt is None:
            raise KeyError(f"{name} is not a registered option")
        if opt.name in self._values:
            return self._values[opt.name]
        return [] if opt.repeat else opt.default

    def is_set(self, name):
        return registry.lookup(name).name in self._values

    @property
    def placeholders(self):
        """Placeholder-only entries (set-placeholder), first value kept."""
        found = {}
        for e in self.entries:
            if e.placeholder:
                found.setdefault(e.key, e.value)
        return found

    @property
    def unknown_keys(self):
        return sorted({e.key for e in self.entries if not e.placeholder
                       and registry.lookup(e.key) is None})

    @property
    def source(self):
        """The first config file, which names a vassal."""
        return self.files[0] if self.files else None


def resolve(argv, environ=None):
    """Parse argv (without the program name) into a Config."""
    environ = os.environ if environ is None else environ
    reader = _Reader()
    reader.add_environment(environ)
    reader.add_argv(argv)
    entries = _expanded(reader.entries, environ)
    _check_keys(entries, reader.strict)
    return Config(entries, reader.files)


class _Reader:
    def __init__(self):
        self.entries, self.files = [], []
        self.strict = False
        self.first_magic = None  # magic of the first file read
        self.last_file = None    # for `--ini :section`
        self.reading = []        # (file, section) being read, for loops

    def add(self, entry):
        self.entries.append(entry)
        if entry.placeholder:
            return
        opt = registry.lookup(entry.key)
        if opt is None and self.strict:
            # uWSGI checks each key as it is read, while strict is on,
            # and once more at the end.
            _check_keys([entry], strict=True)
        if opt and opt.immediate:
            self._immediate(opt, entry)

    def _immediate(self, opt, entry):
        if opt.name == "ini":
            self.load_ini(entry.value, entry)
        elif opt.name == "strict":
            self.strict = _to_bool(entry)
        elif opt.name in ("set", "set-placeholder"):
            key, value = _key_value(entry)
            is_ph = opt.name == "set-placeholder"
            if is_ph and (registry.lookup(key)
                          or registry.is_unimplemented_uwsgi_option(key)):
                raise ConfigError(f"you cannot use {key} as a placeholder, "
                                  "it is already available as an option",
                                  entry.file, entry.line, entry.key)
            self.add(Entry(key, value, entry.file, entry.line, is_ph))

    def load_ini(self, spec, origin=None):
        path, section, asked = _split_section(spec)
        name = path
        if not path:
            path, name = self.last_file, ""
        if not path:
            raise ConfigError("no INI file to read the section from",
                              *_where(origin), "ini")
        key = (os.path.abspath(path), section)
        if key in self.reading:
            raise ConfigError(f"{spec} includes itself", *_where(origin),
                              "ini")
        text = read_file(path)  # first: the magic needs a real file
        magic = magic_table(path, name, asked, self.first_magic)
        if self.first_magic is None:
            magic = as_first(magic)
            # uWSGI's %O keeps the `:section` that %o drops, once the
            # first file has been read.
            self.first_magic = {**magic, "o": spec}
        self._read(parse_ini(text, path, section, magic), path, key)

    def _read(self, entries, path, key):
        self.last_file = path
        if path not in self.files:
            self.files.append(path)
        self.reading.append(key)
        for entry in entries:
            self.add(entry)
        self.reading.pop()

    def add_environment(self, environ):
        for name, value in environ.items():
            if not name.startswith(ENV_PREFIX):
                continue
            bare = name[len(ENV_PREFIX):]
            if bare in ENV_INTERNAL:
                continue
            key = bare.lower().replace("_", "-")
            self.add(Entry(key, value, f"environment ({name})"))

    def add_argv(self, argv):
        """Options in order, then config files, as GNU getopt permutes
        them; `--` ends the options."""
        args, files = list(argv), []
        while args:
            arg = args.pop(0)
            if arg == "--":
                files.extend(args)
                break
            if arg.startswith("--"):
                self._long_option(arg[2:], args)
            elif arg.startswith("-") and len(arg) > 1:
                self._short_option(arg[1:], args)
            else:
                files.append(arg)
        if files and self.first_magic is None:
            # uWSGI lets no file named this way set the upper-case magic
            # letters: they stay empty.
            self.first_magic = {}
        for arg in files:
            self._config_file(arg)

    def _config_file(self, arg):
        if arg.startswith("["):
            return  # uWSGI skips these
        if not arg.endswith(CONFIG_EXTENSIONS):
            raise ConfigError(f"unable to load configuration from {arg} "
                              "(options start with --, config files end "
                              "in .ini)")
        self.load_ini(arg)

    def _long_option(self, text, args):
        given, eq, value = text.partition("=")
        opt, name = _long_name(given)
        if opt.optional:
            value = value if eq else "true"
        elif opt.kind == registry.FLAG:
            if eq:
                raise ConfigError(f"option '--{name}' doesn't allow an "
                                  "argument")
            value = "true"
        elif not eq:
            value = _take_value(name, args)
        self.add(Entry(name, value))

    def _short_option(self, letters, args):
        opt = registry.BY_SHORT.get(letters[0])
        if opt is None:
            _refuse_short(letters[0])
        if opt.kind == registry.FLAG:
            self.add(Entry(opt.name, "true"))
            if letters[1:]:
                self._short_option(letters[1:], args)
            return
        value = letters[1:] or _take_value(opt.name, args)
        self.add(Entry(opt.name, value))


def _where(origin):
    return (origin.file, origin.line) if origin else (None, None)


def _expanded(entries, environ):
    """The three passes, over the entries that are neither placeholders
    nor immediate options (those acted on their raw text already)."""
    values = [e.value for e in entries]

    def lookup(name):
        for entry, value in zip(entries, values):
            if entry.key == name:
                return value
        return None

    def getenv(name):
        try:
            return environ.get(name)
        except UnicodeEncodeError:
            return None  # os.environ cannot hold such a name

    hooks = (("$", getenv), ("@", read_at_file),
             ("%", lambda inner: placeholder(inner, lookup)))
    for symbol, hook in hooks:
        for index, entry in enumerate(entries):
            if _acted(entry):
                continue
            try:
                expand_value(values, index, symbol, hook)
            except ConfigError as e:
                raise ConfigError(e.reason, entry.file, entry.line,
                                  entry.key) from None
    return [Entry(e.key, v, e.file, e.line, e.placeholder)
            for e, v in zip(entries, values)]


def _acted(entry):
    opt = registry.lookup(entry.key)
    return entry.placeholder or bool(opt and opt.immediate)


def _take_value(name, args):
    if not args:
        raise ConfigError(f"option '--{name}' requires an argument")
    return args.pop(0)


def _long_name(given):
    """The option for `--given`: its exact name, else the only name that
    begins so, as GNU getopt allows.  Unimplemented uWSGI names are
    refused by name."""
    name = given
    if registry.lookup(given) is None and given not in registry.UWSGI_NAMES:
        name = _only_completion(given)
    opt = registry.lookup(name)
    if opt:
        return opt, name
    if registry.is_unimplemented_uwsgi_option(name):
        raise ConfigError("this uWSGI option is not implemented by ugu yet",
                          option=name)
    raise ConfigError(f"unrecognized option '--{given}'{_suggest(given)}")


def _only_completion(prefix):
    known = registry.BY_NAME.keys() | registry.UWSGI_NAMES
    matches = sorted(n for n in known if prefix and n.startswith(prefix))
    if len(matches) > 1:
        listed = " ".join(f"'--{m}'" for m in matches[:6])
        raise ConfigError(f"option '--{prefix}' is ambiguous; "
                          f"possibilities: {listed}")
    return matches[0] if matches else prefix


def _refuse_short(letter):
    name = registry.UWSGI_SHORT.get(letter)
    if name:
        raise ConfigError(f"this uWSGI option (-{letter}) is not "
                          "implemented by ugu yet", option=name)
    raise ConfigError(f"invalid option -- '{letter}'")


def _check_keys(entries, strict):
    for e in entries:
        if e.placeholder or registry.lookup(e.key):
            continue
        if registry.is_unimplemented_uwsgi_option(e.key):
            raise ConfigError("this uWSGI option is not implemented by ugu "
                              "yet", e.file, e.line, e.key)
        if strict:
            raise ConfigError(f"[strict-mode] unknown config directive"
                              f"{_suggest(e.key)}", e.file, e.line, e.key)


def _suggest(name):
    close = difflib.get_close_matches(name, registry.BY_NAME, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _split_section(spec):
    """`file.ini:section` -> (file, section to read, section as asked).
    The colon is the last one; in a `scheme://` URL, the last one after
    the last slash."""
    tail = spec.rfind("/") if "://" in spec else -1
    colon = spec.rfind(":")
    if colon <= tail:
        return spec, "uwsgi", ""
    asked = spec[colon + 1:]
    return spec[:colon], asked or "uwsgi", asked


def _key_value(entry):
    """`KEY=VALUE`, split at the first `=` and not trimmed, as uWSGI
    does."""
    key, eq, value = entry.value.partition("=")
    if not eq or not key:
        raise ConfigError("expected KEY=VALUE", entry.file, entry.line,
                          entry.key)
    return key, value


def _to_bool(entry):
    word = entry.value
    return not (word.lower() in FALSE_WORDS or word == "0")


def _atoi(text):
    """C's atoi: optional blanks and sign, then digits; 0 when there are
    none.  uWSGI reads numbers so, so `processes = 4 # four` means 4."""
    text = text.lstrip(" \t\n\r\f\v")
    sign = -1 if text[:1] == "-" else 1
    digits = text[1:] if text[:1] in "+-" else text
    end = 0
    while end < len(digits) and digits[end] in "0123456789":
        end += 1
    return sign * int(digits[:end] or "0")


def _to_int(entry):
    number = _atoi(entry.value)
    if number < 0:
        raise ConfigError("must be >= 0", entry.file, entry.line, entry.key)
    opt = registry.lookup(entry.key)
    if opt.maximum is not None:
        number = min(number, opt.maximum)
    return number


def _to_toggle(entry):
    # Deviation from uWSGI, which reads `true` as the number 0.
    word = entry.value.lower()
    if word in TRUE_WORDS:
        return 1
    if word in FALSE_WORDS:
        return 0
    return _to_int(entry)


CONVERTERS = {
    registry.FLAG: _to_bool,
    registry.INT: _to_int,
    registry.STR: lambda entry: entry.value,
    registry.TOGGLE: _to_toggle,
}


def _typed_values(entries):
    values, needs_master = {}, False
    for entry in entries:
        opt = None if entry.placeholder else registry.lookup(entry.key)
        if opt is None:
            continue
        value = CONVERTERS[opt.kind](entry)
        if opt.repeat:
            values.setdefault(opt.name, []).append(value)
        else:
            values[opt.name] = value
        needs_master = needs_master or opt.needs_master
    # uWSGI turns the master on as soon as such an option is read, then
    # applies an explicit `master` setting over that.
    if needs_master and "master" not in values:
        values["master"] = True
    return values
