"""From argv, UWSGI_* variables and config files to one frozen Config.

Order, as in uWSGI: `UWSGI_<NAME>` environment variables first, then the
command line left to right, with each `--ini FILE` read in place.  Then the
`$(ENV)`, `@(file)` and `%(name)` passes run over every value, unknown keys
are checked (strict) or kept as placeholders, and each option's text becomes
a typed value: the last occurrence for a scalar, every one for a repeatable.
"""

import difflib
import os

from ugu.options import registry
from ugu.options.errors import ConfigError
from ugu.options.expand import (expand_env, expand_files,
                                expand_placeholders)
from ugu.options.ini import Entry, read_ini

ENV_PREFIX = "UWSGI_"
# Variables uWSGI keeps for itself and never reads as options.
ENV_INTERNAL = {"RELOADS", "EMPEROR_FD", "EMPEROR_FD_CONFIG", "VASSALS_DIR",
                "ORIGINAL_PROC_NAME", "EMPEROR_PROXY"}
FALSE_WORDS = {"false", "off", "no", "0"}
TRUE_WORDS = {"true", "on", "yes"}
CONFIG_EXTENSIONS = (".ini",)


class Config:
    """Resolved options: typed values, plus the entries they came from."""

    def __init__(self, entries, placeholders, files):
        self.entries = tuple(entries)
        self.placeholders = dict(placeholders)
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
    def unknown_keys(self):
        return sorted({e.key for e in self.entries
                       if registry.lookup(e.key) is None})

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
    entries = reader.expanded()
    _check_keys(entries, reader.strict)
    return Config(entries, reader.placeholders, reader.files)


class _Reader:
    def __init__(self):
        self.entries, self.files = [], []
        self.placeholders = {}
        self.strict = False

    def add(self, entry):
        opt = registry.lookup(entry.key)
        if opt and opt.immediate:
            self._immediate(opt, entry)
        else:
            self.entries.append(entry)

    def _immediate(self, opt, entry):
        if opt.name == "ini":
            self.load_ini(entry.value, entry)
        elif opt.name == "strict":
            self.strict = self.strict or _to_bool(entry)
            self.entries.append(entry)
        elif opt.name == "set":
            key, value = _key_value(entry)
            self.add(Entry(key, value, entry.file, entry.line))
        elif opt.name == "set-placeholder":
            key, value = _key_value(entry)
            if registry.lookup(key):
                raise ConfigError(f"you cannot use {key} as a placeholder, "
                                  "it is already available as an option",
                                  entry.file, entry.line, entry.key)
            self.placeholders[key] = value

    def load_ini(self, spec, origin=None):
        path, section = _split_section(spec)
        if not path:
            raise ConfigError("--ini needs a file name", origin and
                              origin.file, origin and origin.line, "ini")
        if os.path.abspath(path) in map(os.path.abspath, self.files):
            raise ConfigError("recursive include of this file",
                              origin and origin.file, origin and origin.line,
                              "ini")
        first = self.files[0] if self.files else path
        self.files.append(path)
        for entry in read_ini(path, section, first):
            self.add(entry)

    def add_environment(self, environ):
        for name, value in environ.items():
            if not name.startswith(ENV_PREFIX):
                continue
            bare = name[len(ENV_PREFIX):]
            if bare in ENV_INTERNAL or bare.startswith("VASSAL_"):
                continue
            key = bare.lower().replace("_", "-")
            self.add(Entry(key, value, f"environment ({name})"))

    def add_argv(self, argv):
        args = list(argv)
        while args:
            arg = args.pop(0)
            if arg.startswith("--") and len(arg) > 2:
                self._long_option(arg[2:], args)
            elif arg.startswith("-") and len(arg) > 1:
                self._short_option(arg[1:], args)
            elif arg.endswith(CONFIG_EXTENSIONS):
                self.load_ini(arg)
            else:
                raise ConfigError(f"unexpected argument '{arg}' (options "
                                  "start with --, config files end in .ini)")

    def _long_option(self, text, args):
        name, eq, value = text.partition("=")
        opt = _known_or_fail(name)
        if opt.kind == registry.FLAG:
            if eq:
                raise ConfigError(f"option '--{name}' doesn't allow an "
                                  "argument", option=name)
            value = "true"
        elif opt.kind == registry.TOGGLE:
            value = value if eq else "true"
        elif not eq:
            value = _take_value(name, args)
        self.add(Entry(name, value))

    def _short_option(self, letters, args):
        opt = registry.BY_SHORT.get(letters[0])
        if opt is None:
            raise ConfigError(f"unrecognized option '-{letters[0]}'")
        if opt.kind == registry.FLAG:
            self.add(Entry(opt.name, "true"))
            if letters[1:]:
                self._short_option(letters[1:], args)
            return
        value = letters[1:] or _take_value(opt.name, args)
        self.add(Entry(opt.name, value))

    def expanded(self):
        entries = [_expand_entry(e) for e in self.entries]
        first = {}
        for e in entries:
            first.setdefault(e.key, e.value)
        lookup = {**first, **self.placeholders}
        return [Entry(e.key, expand_placeholders(e.value, lookup.get),
                      e.file, e.line) for e in entries]


def _expand_entry(entry):
    value = expand_files(expand_env(entry.value), entry)
    return Entry(entry.key, value, entry.file, entry.line)


def _take_value(name, args):
    if not args:
        raise ConfigError(f"option '--{name}' requires an argument",
                          option=name)
    return args.pop(0)


def _known_or_fail(name):
    opt = registry.lookup(name)
    if opt:
        return opt
    if registry.is_unimplemented_uwsgi_option(name):
        raise ConfigError("this uWSGI option is not implemented by ugu yet",
                          option=name)
    raise ConfigError(f"unrecognized option '--{name}'{_suggest(name)}")


def _check_keys(entries, strict):
    for e in entries:
        if registry.lookup(e.key):
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
    """`file.ini:section` -> (file, section); the colon must follow the
    last slash, so that paths and URLs keep theirs."""
    slash = spec.rfind("/")
    colon = spec.rfind(":")
    if colon > slash:
        return spec[:colon], spec[colon + 1:] or "uwsgi"
    return spec, "uwsgi"


def _key_value(entry):
    key, eq, value = entry.value.partition("=")
    if not eq or not key:
        raise ConfigError("expected KEY=VALUE", entry.file, entry.line,
                          entry.key)
    return key.strip(), value.strip()


def _to_bool(entry):
    return entry.value.strip().lower() not in FALSE_WORDS


def _to_int(entry):
    try:
        number = int(entry.value.strip())
    except ValueError:
        raise ConfigError(f"expected a whole number, got '{entry.value}'",
                          entry.file, entry.line, entry.key) from None
    if number < 0:
        raise ConfigError("must be >= 0", entry.file, entry.line, entry.key)
    return number


def _to_toggle(entry):
    word = entry.value.strip().lower()
    if word in TRUE_WORDS or word == "":
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
    values = {}
    for entry in entries:
        opt = registry.lookup(entry.key)
        if opt is None or opt.immediate and opt.name != "strict":
            continue
        value = CONVERTERS[opt.kind](entry)
        if opt.repeat:
            values.setdefault(opt.name, []).append(value)
        else:
            values[opt.name] = value
    for opt in registry.OPTIONS:
        if opt.needs_master and opt.name in values and values[opt.name]:
            values["master"] = True
    return values
