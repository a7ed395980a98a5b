"""From argv, UWSGI_* variables and config files to one frozen Config.

Order, as in uWSGI: `UWSGI_<NAME>` environment variables first, then the
options of the command line left to right, each `--ini FILE` read in place,
then the config files named without an option (see `reader.py`).  Then the
`$(ENV)`, `@(file)` and `%(name)` passes run over the values of the entries
that are not immediate; then `inherit` files are read and their entries
appended, unexpanded; then the lines of options declared by
`declare-option` or `declare-option2` that did not act as read are
expanded in place (see `custom.py`).  Unknown keys are refused (strict)
or kept as placeholders, and each option's text becomes a typed value:
the last occurrence for a scalar, every one for a repeatable.

Some values uWSGI accepts are likely mistakes: a `%(name)` or `$(VAR)` that
stays literal, a magic variable that expands to nothing, a number with
trailing text.  Under `strict` each is an error; otherwise ugu keeps
uWSGI's reading and the Config lists a warning for it.

Every error found on the way is collected and all are raised together at
the end (ConfigErrors), each file's in line order: uWSGI stops at the
first, and a user fixing a file would restart once per problem.
"""

import dataclasses
import os
import re

from ugu import log
from ugu.options import custom, registry
from ugu.options.errors import ConfigError, ConfigExit, raise_all
from ugu.options.expand import (atoi, expand_value, placeholder,
                                read_at_file)
from ugu.options.ini import Entry
from ugu.options.reader import (ANNOUNCE, FALSE_WORDS, Reader, format_of,
                                key_errors, likely_typos, names_used,
                                suggest, to_bool)

ENV_PREFIX = "UWSGI_"
# Variables uWSGI keeps for itself and never reads as options.
ENV_INTERNAL = {"RELOADS", "VASSALS_DIR", "EMPEROR_FD", "BROODLORD_NUM",
                "EMPEROR_FD_CONFIG", "EMPEROR_PROXY", "JAIL_PID",
                "ORIGINAL_PROC_NAME"}
TRUE_WORDS = {"true", "on", "yes"}
PLAIN_NUMBER = re.compile(r"[ \t]*[+-]?[0-9]+")
# uWSGI's gevent plugin reads these in gevent mode only.
GEVENT_ONLY = ("gevent-monkey-patch", "gevent-early-monkey-patch")
# The log files that a `logger` leaves empty, and the options that act on
# them only.
LOG_FILES = ("logto", "logto2")
LOG_FILE_ONLY = ("log-reopen", "log-truncate", "touch-logreopen",
                 "touch-logrotate", "log-maxsize", "log-backupname")
# The routers' harakiri, which their master keeps.
ROUTER_HARAKIRI = ("http-harakiri", "fastrouter-harakiri",
                   "rawrouter-harakiri", "sslrouter-harakiri")
# Inherited files may inherit others; past this many, they loop.
MAX_INHERITS = 1000
# The largest numbers uWSGI's option readers hold: a C int, 64 bits.
INT_MAX = (1 << 31) - 1
INT64_MAX = (1 << 63) - 1


class Config:
    """Resolved options: typed values, plus the entries they came from."""

    def __init__(self, entries, files, warnings=(), formats=None,
                 magic=None):
        # In the order uWSGI applies them: what immediate declared options
        # set first (see custom.py), then the others.
        self.entries = tuple(
            [e for e in entries if e.derived and e.early]
            + [e for e in entries if not (e.derived and e.early)])
        # As uWSGI lists them (show-config, uwsgi.opt): without what
        # declared options set.
        self.exported = tuple(e for e in entries if not e.derived)
        self.files = tuple(files)
        # The magic variables of the last config file read, as uWSGI
        # keeps them (its Python module shows them as magic_table).
        self.magic = magic or {}
        self.warnings = tuple(warnings)
        self._formats = formats or {}
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

    def adjust(self, name, value):
        """Change a value at start-up, where uWSGI changes its own (the
        workers cut down to the process limit)."""
        self._values[registry.lookup(name).name] = value

    def parsed(self, names, parse):
        """parse(option, value) of each entry of the options `names`, in
        the config's order, for options whose lines mix several forms
        (daemons, crons); a ConfigError it raises names the entry's file
        and line."""
        found = []
        for entry in self.entries:
            opt = None if entry.placeholder else registry.lookup(entry.key)
            if opt is None or opt.name not in names:
                continue
            try:
                found.append(parse(opt.name, entry.value))
            except ConfigError as e:
                e.file, e.line = entry.file, entry.line
                raise
        return found

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
                       and not e.use and registry.lookup(e.key) is None})

    @property
    def source(self):
        """The first config file, which names a vassal."""
        return self.files[0] if self.files else None

    def announce_lines(self):
        """uWSGI's line for each config file read."""
        return [ANNOUNCE[self._formats.get(path, "ini")].format(path)
                for path in self.files]

    def reading_lines(self):
        """What follows, before chdir and the log files: uWSGI's line for
        each static root and mapping, and ugu's warnings about the
        files."""
        return self._static_lines() + self.startup_warnings()

    def _static_lines(self):
        """uWSGI's line for each static root and mapping, said while it
        reads the option, so in the order of the config."""
        lines = []
        for entry in self.entries:
            opt = None if entry.placeholder else registry.lookup(entry.key)
            if opt is None or opt.owner != registry.STATIC:
                continue
            if opt.name == "check-static":
                lines.append(f"[uwsgi-static] added check for {entry.value}")
            elif opt.kind == registry.MAPPING:
                mount, _, path = entry.value.partition("=")
                lines.append(f"[uwsgi-static] added mapping for {mount} => "
                             f"{path}")
        return lines

    def dump(self):
        """The resolved configuration in uWSGI's show-config format: every
        entry where it was read, `show-config` itself included.  Each item
        is one of uWSGI's messages (a date prefix, with logdate, goes
        before each), the first and last set apart by blank lines."""
        return ["\n;uWSGI instance configuration\n[uwsgi]",
                *(f"{entry.key} = {entry.value}"
                  for entry in self.exported),
                ";end of configuration\n"]

    def startup_warnings(self):
        """What ugu says once at start-up about this configuration."""
        lines = [f"ugu: warning: {w}" for w in self.warnings]
        lines += [f"ugu: warning: {w}" for w in self._inert()]
        if self.unknown_keys:
            lines.append("ugu: these keys are not options and serve as "
                         "placeholders only (strict = true refuses them): "
                         + ", ".join(self.unknown_keys))
        return lines

    def _inert(self):
        """Options set that do nothing here, in uWSGI too: a warning each,
        never an error, since uWSGI runs the file."""
        found = []
        for e in self.entries:
            opt = registry.lookup(e.key)
            why = opt and self[opt.name] and (
                self._why_inert(opt.name) or
                (opt.name == "logger" and self._why_unrouted(e.value)))
            if why:
                found.append(ConfigError(why, e.file, e.line, e.key))
        return found

    def _why_unrouted(self, spec):
        name, _ = log.split_logger(spec)
        if name is None or name in log.routed_names(self):
            return None
        return (f"the logger named '{name}' takes only the lines that a "
                f"log-route or log-req-route naming it sends, as in uWSGI, "
                f"and none does")

    def _why_inert(self, name):
        if name in ROUTER_HARAKIRI and not self["master"]:
            return ("does nothing without `master = true`, as in uWSGI: "
                    "the master kills a stuck router process")
        if name in GEVENT_ONLY and not self["gevent"]:
            return ("does nothing without `gevent = N`, as in uWSGI: the "
                    "standard library stays unpatched")
        if name in LOG_FILES and not log.log_file_taken(self):
            return ("does nothing beside `logger`, as in uWSGI: the logger "
                    "takes every message")
        if name in LOG_FILE_ONLY:
            files = [self[file] for file in ("logto", "logto2",
                                             "daemonize", "daemonize2")
                     if self[file]]
            if not files:
                return "does nothing without `logto = FILE`, as in uWSGI"
            if all(map(log.is_udp, files)):
                return ("does nothing where the log goes to a UDP "
                        "address, which has nothing to rotate or reopen, "
                        "as in uWSGI")
        return None


def resolve(argv, environ=None, again=False):
    """Parse argv (without the program name) into a Config.  The error
    (or the ConfigExit of an `exit` line) that ends the reading carries
    `fallback`: the fallback-config read before it, else None.  `again`:
    the config is read again (by the process optimize started)."""
    environ = os.environ if environ is None else environ
    reader = Reader(environ, again)
    try:
        return _resolve(reader, argv, environ)
    except ConfigExit as e:
        e.fallback = reader.fallback
        # The files read up to the line, which uWSGI announced as it
        # read them.
        e.announce = _announced(reader)
        # What was found wrong before the line ends the start first, as
        # uWSGI stops at the first such line.
        try:
            raise_all(reader.errors, reader.order)
        except ConfigError as error:
            error.fallback = reader.fallback
            raise error from None
        raise
    except ConfigError as e:
        e.fallback = reader.fallback
        e.announce = _announced(reader)
        raise


def _announced(reader):
    """uWSGI's line for each file read up to the reading's end, which it
    says as it opens them."""
    return [ANNOUNCE[reader.formats[path]].format(path)
            for path in reader.files]


def _resolve(reader, argv, environ):
    _add_environment(reader, environ)
    try:
        _add_argv(reader, argv)
    except ConfigError as e:
        # A word of the command line that getopt cannot read ends the
        # reading, as it ends uWSGI's: what follows may be its value.
        # Said last, after the errors read before it.
        stop = e
        raise_all([*reader.errors, stop],
                  lambda error: (error is stop, reader.order(error)))
    used = names_used(reader.entries)  # before the passes replace them
    reader.entries = _expanded(reader, environ)
    _inherit(reader)
    _apply_declared(reader)
    errors = reader.errors + key_errors(reader.entries, reader.strict)
    problems = (reader.problems + _number_problems(reader.entries)
                + _logdate_problems(reader.entries))
    if reader.strict:
        errors += problems  # its unknown keys are errors, typos or not
    problems += likely_typos(reader.entries,
                             used | names_used(reader.entries))
    # Said in the files' line order, as the errors are, whichever pass
    # found them.
    problems.sort(key=reader.order)
    config = None
    try:
        config = Config(reader.entries, reader.files,
                        [str(p) for p in problems], reader.formats,
                        reader.magic)
    except ConfigError as e:
        errors.append(e)
    raise_all(errors, reader.order)
    return config


def _add_environment(reader, environ):
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        bare = name[len(ENV_PREFIX):]
        if bare in ENV_INTERNAL:
            continue
        key = bare.lower().replace("_", "-")
        reader.add(Entry(key, value, f"environment ({name})"))


def _add_argv(reader, argv):
    """Options in order, then config files, as GNU getopt permutes them;
    `--` ends the options."""
    args, files = list(argv), []
    while args:
        arg = args.pop(0)
        if arg == "--":
            files.extend(args)
            break
        if arg.startswith("--"):
            _long_option(reader, arg[2:], args)
        elif arg.startswith("-") and len(arg) > 1:
            _short_option(reader, arg[1:], args)
        else:
            files.append(arg)
    if files and reader.first_magic is None:
        # uWSGI lets no file named this way set the upper-case magic
        # letters: they stay empty.
        reader.first_magic = {}
    for arg in files:
        if not arg.startswith("["):  # uWSGI skips these
            _load_named(reader, arg)


def _load_named(reader, arg):
    try:
        reader.load(arg, fmt=format_of(arg))
    except ConfigError as e:
        reader.errors.append(e)


def _long_option(reader, text, args):
    given, eq, value = text.partition("=")
    declared = _declared_name(given, reader.declared)
    if declared:
        _declared_option(reader, reader.declared[declared], eq, value, args)
        return
    if eq and registry.is_unimplemented_uwsgi_option(given):
        # Refused as a file's line is, at the end: its value is known, so
        # the reading can go on.
        reader.add(Entry(given, value))
        return
    opt, name = _long_name(given)
    if opt.kind == registry.FLAG and eq and not opt.optional:
        raise ConfigError(f"option '--{name}' doesn't allow an argument")
    if opt.optional and not eq and opt.next_word and args and \
            not args[0].startswith("-"):
        value, eq = args.pop(0), "="
    bare = not eq and (opt.optional or opt.kind == registry.FLAG)
    if bare:
        value = "true"
    elif not eq:
        value = _take_value(name, args)
    reader.add(Entry(name, value, bare=bare))


def _declared_option(reader, declared, eq, value, args):
    """`--NAME` of an option declared by declare-option: with a value
    when its template uses $1, $2 or $3, as uWSGI's getopt reads it."""
    name = declared.name
    if declared.takes_value:
        value = value if eq else _take_value(name, args)
    elif eq:
        raise ConfigError(f"option '--{name}' doesn't allow an argument")
    else:
        value = "true"
    reader.add(Entry(name, value, bare=not declared.takes_value))


def _short_option(reader, letters, args):
    opt = registry.BY_SHORT.get(letters[0])
    if opt is None:
        _refuse_short(letters[0])
    if opt.kind == registry.FLAG:
        reader.add(Entry(opt.name, "true", bare=True))
        if letters[1:]:
            _short_option(reader, letters[1:], args)
        return
    value = letters[1:] or _take_value(opt.name, args)
    reader.add(Entry(opt.name, value))


def _expanded(reader, environ):
    """The three passes, over the entries that are neither placeholders
    nor immediate options (those acted on their raw text already)."""
    entries = reader.entries
    values = [e.value for e in entries]

    def lookup(name):
        for entry, value in zip(entries, values):
            if entry.key == name and not entry.derived:
                return value
        return None

    def getenv(name):
        try:
            return environ.get(name)
        except UnicodeEncodeError:
            return None  # os.environ cannot hold such a name

    hooks = (("$", getenv, "no such environment variable"),
             ("@", read_at_file, None),
             ("%", lambda inner: placeholder(inner, lookup),
              "no such option or placeholder"))
    for symbol, hook, missing in hooks:
        for index, entry in enumerate(entries):
            if not _acted(entry):
                reason = None if _own_tokens(entry, symbol) else missing
                try:
                    _expand_entry(values, index, entry, symbol, hook,
                                  _Missing(reader, entry, symbol, reason))
                except ConfigError as e:
                    reader.errors.append(e)
    return [dataclasses.replace(e, value=v) for e, v in zip(entries, values)]


class _Missing:
    """Reports a reference that stays literal as a problem, once."""

    def __init__(self, reader, entry, symbol, reason):
        self.reader, self.entry = reader, entry
        self.symbol, self.reason = symbol, reason
        self.seen = set()

    def __call__(self, inner):
        if self.reason is None or " " in inner or inner in self.seen:
            return
        self.seen.add(inner)
        e = self.entry
        self.reader.problems.append(ConfigError(
            f"{self.symbol}({inner}) stays literal: {self.reason}",
            e.file, e.line, e.key))


def _expand_entry(values, index, entry, symbol, hook, missing):
    def reporting(inner):
        found = hook(inner)
        if found is None:
            missing(inner)
        return found
    try:
        expand_value(values, index, symbol, reporting)
    except ConfigError as e:
        raise ConfigError(e.reason, entry.file, entry.line,
                          entry.key) from None


def _own_tokens(entry, symbol):
    """Whether the option's value is meant to keep `SYMBOL(name)` literal:
    log-format's %(name) tokens are its own, read at each request (one
    that names an option or placeholder is still replaced, as by uWSGI)."""
    opt = registry.lookup(entry.key)
    return symbol == "%" and opt is not None and opt.name == "log-format"


def _acted(entry):
    opt = registry.lookup(entry.key)
    return (entry.placeholder or entry.derived or entry.early
            or bool(opt and opt.immediate))


def _inherit(reader):
    """Read each `inherit` file, appending its entries unexpanded, as
    uWSGI does when it applies the option; they may inherit in turn."""
    done, index = 0, 0
    while index < len(reader.entries):
        entry = reader.entries[index]
        index += 1
        if entry.key != "inherit" or entry.placeholder:
            continue
        done += 1
        if done > MAX_INHERITS:
            reader.errors.append(ConfigError(
                "recursive inherit: the files inherit each other without "
                "end", entry.file, entry.line, entry.key))
            return
        try:
            reader.load(entry.value, entry)
        except ConfigError as e:
            reader.errors.append(e)


def _apply_declared(reader):
    """Apply, once the files are read and the passes done, the lines of
    declared options not applied as read, as uWSGI's configure step does:
    each at its place, a declare-option2 declaring its option where it
    stands.  One set before its declare-option2 is refused."""
    declared, later, applied = dict(reader.declared), {}, []
    for entry in reader.entries:
        if entry.key == custom.CONFIGURED and not entry.placeholder:
            try:
                found = custom.declare(entry, reader.declared | later)
                later[found.name] = found
            except ConfigError as e:
                reader.errors.append(e)
    for entry in reader.entries:
        applied.append(entry)
        if entry.placeholder or entry.early or entry.derived:
            continue
        if entry.key == custom.CONFIGURED and entry.value.partition(
                "=")[0] in later:
            name = entry.value.partition("=")[0]
            declared[name] = later[name]
        elif entry.key in declared:
            applied[-1] = dataclasses.replace(entry, use=True)
            try:
                applied += _configured(declared[entry.key], entry,
                                       declared, 0)
            except ConfigError as e:
                reader.errors.append(e)
        elif entry.key in later:
            reader.errors.append(ConfigError(
                f"{entry.key} is declared by declare-option2 at "
                f"{later[entry.key].where}, after this line: uWSGI keeps "
                "the line as a placeholder, its template unused; move it "
                "after the declaration", entry.file, entry.line, entry.key))
    reader.entries = applied


def _configured(declared, use, names, depth):
    """The entries a declared option's line sets, once the files are
    read: those of a declared option it sets in turn included."""
    if depth >= custom.MAX_DEPTH:
        raise ConfigError("declared options set each other without end: "
                          "fix their templates", use.file, use.line,
                          use.key)
    found = []
    for entry in custom.expand(declared, use):
        custom.check_key(declared, entry, names)
        opt = registry.lookup(entry.key)
        if entry.key in names and opt is None:
            found.append(dataclasses.replace(entry, use=True))
            found += _configured(names[entry.key], entry, names, depth + 1)
        elif opt is not None and opt.immediate:
            raise ConfigError(
                f"the template of {declared.name} (declared at "
                f"{declared.where}) sets '{entry.key}', which acts while "
                "the files are read, before this line is applied: declare "
                "it with declare-option, before its use", use.file,
                use.line, use.key)
        else:
            found.append(entry)
    return found


def _number_problems(entries):
    problems = []
    for e in entries:
        opt = None if e.placeholder else registry.lookup(e.key)
        if opt is None or opt.kind not in (registry.INT, registry.TOGGLE) \
                or e.bare:
            # A bare `--opt` wrote no number: uWSGI takes its default.
            continue
        words = TRUE_WORDS | FALSE_WORDS
        if opt.kind == registry.TOGGLE and e.value.lower() in words:
            continue
        if not PLAIN_NUMBER.fullmatch(e.value):
            problems.append(ConfigError(
                f"'{e.value}' is not a number; uWSGI reads it as "
                f"{atoi(e.value)} (write a plain number)",
                e.file, e.line, e.key))
    return problems


def _logdate_problems(entries):
    """`logdate = false` (or 0, off, no) turns the date on in uWSGI too,
    with the word as its strftime format: every message starts `false -`."""
    return [ConfigError(f"'{e.value}' is taken as a strftime format, as "
                        f"uWSGI takes it: every message starts '{e.value} "
                        f"- ' (remove the line for undated messages)",
                        e.file, e.line, e.key)
            for e in entries if not e.placeholder
            and registry.lookup(e.key) is registry.lookup("logdate")
            and e.value.lower() in FALSE_WORDS | {"0"}]


def _take_value(name, args):
    if not args:
        raise ConfigError(f"option '--{name}' requires an argument")
    return args.pop(0)


def _declared_name(given, declared):
    """The declared option `--given` names: its exact name, else the only
    option of any kind that begins so, as getopt reads the options uWSGI
    rebuilds with the declared ones; None for any other option."""
    if given in declared:
        return given
    if registry.lookup(given) or given in registry.UWSGI_NAMES:
        return None
    name = _only_completion(given, declared)
    return name if name in declared else None


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
        raise ConfigError(registry.unimplemented_message(name), option=name)
    raise ConfigError(f"unrecognized option '--{given}'{suggest(given)}")


def _only_completion(prefix, declared=()):
    known = registry.BY_NAME.keys() | registry.UWSGI_NAMES | set(declared)
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


def _to_int(entry):
    number = atoi(entry.value)
    if number < 0:
        raise ConfigError("must be >= 0", entry.file, entry.line, entry.key)
    opt = registry.lookup(entry.key)
    limit = INT64_MAX if opt.wide else INT_MAX
    if opt.maximum is None and number > limit:
        # uWSGI would read the number overflowed, as garbage; Python's
        # would reach a system call or mmap and fail there.
        width = "a 64-bit number" if opt.wide else "a C int"
        raise ConfigError(f"{number} is too large: uWSGI keeps this option "
                          f"in {width}, at most {limit}",
                          entry.file, entry.line, entry.key)
    if opt.maximum is not None:
        number = min(number, opt.maximum)
    if opt.minimum is not None:
        number = max(number, opt.minimum)
    return number


def _to_toggle(entry):
    # Deviation from uWSGI, which reads `true` as the number 0.
    word = entry.value.lower()
    if word in TRUE_WORDS:
        return 1
    if word in FALSE_WORDS:
        return 0
    return _to_int(entry)


def _to_plugins(entry):
    """The names of a `plugins` line, as uWSGI splits it; each must be one
    that ugu has built in."""
    names = registry.plugin_names(entry.value)
    for name in names:
        if not registry.built_in_plugin(name):
            raise ConfigError(registry.missing_plugin(name), entry.file,
                              entry.line, entry.key)
    return names


def _to_mode(entry):
    """uWSGI's reading of a mode: three octal digits, or four whose first
    it skips (`0022`)."""
    if not re.fullmatch("[0-7]{3,4}", entry.value):
        raise ConfigError(f"invalid {entry.key}: {entry.value} (write three "
                          f"octal digits, as 022)", entry.file, entry.line,
                          entry.key)
    return int(entry.value[-3:], 8)


def _to_chmod(entry):
    """uWSGI's reading of logfile-chmod: exactly three octal digits."""
    if not re.fullmatch("[0-7]{3}", entry.value):
        raise ConfigError(f"invalid chmod value: {entry.value}", entry.file,
                          entry.line, entry.key)
    return int(entry.value, 8)


def _to_mapping(entry):
    """(MOUNT, PATH) of a static-map; uWSGI's words when there is no '='."""
    mount, eq, path = entry.value.partition("=")
    if not eq:
        raise ConfigError("invalid document root in static map, syntax "
                          "mountpoint=docroot", entry.file, entry.line,
                          entry.key)
    return mount, path


def _to_address(entry):
    """A workers' socket address: uWSGI stops at an empty one, which
    would bind a unix socket without a name."""
    if not entry.value.strip():
        raise ConfigError("invalid/empty uwsgi socket name (write "
                          "HOST:PORT, :PORT, a unix socket's path or "
                          "@NAME)", entry.file, entry.line, entry.key)
    return entry.value


CONVERTERS = {
    registry.FLAG: to_bool,
    registry.INT: _to_int,
    registry.STR: lambda entry: entry.value,
    registry.CODE: lambda entry: "" if entry.bare else entry.value,
    registry.TOGGLE: _to_toggle,
    registry.PLUGINS: _to_plugins,
    registry.MODE: _to_mode,
    registry.CHMOD: _to_chmod,
    registry.MAPPING: _to_mapping,
    registry.ADDRESS: _to_address,
}


def _typed_values(entries):
    values, errors, needs_master = {}, [], False
    for entry in entries:
        opt = None if entry.placeholder else registry.lookup(entry.key)
        if opt is None:
            continue
        try:
            value = CONVERTERS[opt.kind](entry)
            if opt.words and value not in opt.words:
                raise ConfigError(opt.refused.format(value), entry.file,
                                  entry.line, entry.key)
        except ConfigError as e:
            errors.append(e)
            continue
        if opt.repeat:
            values.setdefault(opt.name, []).append(value)
        else:
            values[opt.name] = value
        if opt.logger_kind:
            # The bare option: the logger without an argument.
            arg = "" if entry.bare else value
            values.setdefault("logger", []).append(
                f"{opt.logger_kind}:{arg}")
        # What a declared option sets turns on nothing more, in uWSGI.
        needs_master = needs_master or (opt.needs_master
                                        and not entry.derived)
    # uWSGI turns the master on as soon as such an option is read, then
    # applies an explicit `master` setting over that.
    if needs_master and "master" not in values:
        values["master"] = True
    # uWSGI's lazy mode loads the apps where lazy-apps does, whatever
    # lazy-apps says.
    if values.get("lazy"):
        values["lazy-apps"] = True
    raise_all(errors)
    return values
