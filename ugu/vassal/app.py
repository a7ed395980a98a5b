"""Finding and loading the WSGI applications, with uWSGI's messages.

App 0 is the one named by `module` or `wsgi-file`; each `mount = /mp=target`
adds one more, in order, with the ids uWSGI gives them.  A request goes to
the app whose mountpoint equals its SCRIPT_NAME (or UWSGI_APPID), else to
the default app (none under `no-default-app`): the first one loaded,
wherever it is mounted (uWSGI's Python plugin means '' or '/' and tests
any mountpoint starting with '/'; a mount = /app=... alone takes every
request not for /app).  With
`manage-script-name` the longest mountpoint that prefixes PATH_INFO on a
'/' boundary becomes SCRIPT_NAME first.

uWSGI gives each mount its own sub-interpreter; ugu loads every app in the
one interpreter, as uWSGI's `single-interpreter` does.

A load failure is not fatal unless `need-app` is set: the vassal then runs
in uWSGI's "full dynamic mode", so that a typo in a module name does not
put the instance in a restart loop.

Dynamic apps: a request no app is mounted for that carries UWSGI_SCRIPT,
UWSGI_MODULE (and UWSGI_CALLABLE) or UWSGI_FILE, as nginx's uwsgi_param
sends them, has its worker load that app there and then, on the request's
UWSGI_APPID or SCRIPT_NAME, for that worker's later requests; up to
`max-apps` apps in a worker.  uWSGI 2.0 always loads them: whoever can
reach the socket names the module.  With `vhost` the key is
"HOST|SCRIPT_NAME" (HTTP_HOST, else SERVER_NAME), added to the request
as UWSGI_APPID.
"""

import ctypes
import glob
import importlib
import importlib.util
import os
import re
import site
import sys
import threading
import time
import types

from ugu import log
from ugu.options.errors import ConfigError

EXIT_NO_APP = 22
FILE_SUFFIXES = (".py", ".wsgi")


class App:
    """A loaded callable and where it is mounted, as the workers see it."""

    def __init__(self, callable_, app_id=0, mountpoint="", startup_time=0,
                 chdir=""):
        self.callable = callable_
        self.id = app_id
        self.mountpoint = mountpoint
        self.startup_time = startup_time    # whole seconds its load took
        self.chdir = chdir      # a dynamic app's UWSGI_CHDIR, for each request
        self.requests = 0


class Apps:
    """The loaded apps, and the choice of one for each request."""

    def __init__(self, loaded, config):
        self.loaded = [app for app in loaded if app.callable is not None]
        self.config = config
        self.manage_script_name = config["manage-script-name"]
        self.vhost = config["vhost"] or config["vhost-host"]
        # ignore-script-name: the key is UWSGI_APPID or nothing, which
        # names the app mounted at "" (else the default), as in uWSGI
        # (vhost's key still takes SCRIPT_NAME).
        self.by_script_name = not config["ignore-script-name"]
        self.no_default = config["no-default-app"]
        self.default = None
        if not self.no_default:
            self.default = next((app for app in self.loaded
                                 if _may_be_default(app.mountpoint)), None)
        self._loading = None
        self._on_load = None

    def __bool__(self):
        return bool(self.loaded)

    def serve_in_worker(self, on_load):
        """Ready the apps for a worker's requests, where dynamic apps load:
        `on_load(app)` is told of each.  Its threads (or greenlets, made
        after gevent's patch, hence here) load one app at a time, as in
        uWSGI."""
        self._loading = threading.Lock()
        self._on_load = on_load

    def select(self, request_vars):
        """With manage-script-name, rewrites SCRIPT_NAME and PATH_INFO in
        `request_vars` and answers the app now mounted there, else None:
        done as the request arrives, before its routes and static files."""
        if self.manage_script_name:
            app = self._manage_script_name(request_vars)
            return app if self.by_script_name else None
        return None

    def choose(self, request_vars):
        """The app for a request about to be served, or None: the one its
        key names (UWSGI_APPID, else SCRIPT_NAME, or HOST|SCRIPT_NAME
        under vhost), else a dynamic app the request asks for, else the
        default.  Answers (app, vars added to the request)."""
        added = []
        key = request_vars.get("UWSGI_APPID")
        if not key:
            script_name = request_vars.get("SCRIPT_NAME", "")
            key = script_name if self.by_script_name else ""
            if self.vhost:
                from ugu.routing.rules import request_host
                key = f"{request_host(request_vars)}|{script_name}"
                request_vars["UWSGI_APPID"] = key
                added.append(("UWSGI_APPID", key))
        app = self.find(key)
        if app is None and self._loading and \
                _DYNAMIC_KEYS.intersection(request_vars):
            with self._loading:
                app = self.find(key) or self._load_dynamic(key, request_vars)
        return app or self.default, added

    def find(self, key):
        for app in self.loaded:
            if app.mountpoint == key:
                return app
        return None

    def _load_dynamic(self, key, request_vars):
        """The app the request's UWSGI_* vars name, loaded in this worker
        on `key`, or None (logged why)."""
        if len(self.loaded) >= self.config["max-apps"]:
            log.log(f"ERROR: you cannot load more than "
                    f"{self.config['max-apps']} apps in a worker")
            return None
        app_id = len(self.loaded)
        chdir = request_vars.get("UWSGI_CHDIR", "")
        if chdir:
            change_folder(chdir, "plugins/python/pyloader.c line 111")
        target = _dynamic_target(request_vars, self.config["callable"])
        app = _load(app_id, key, target, self._may_default(key))
        if app.callable is None:
            return None
        app.chdir = chdir
        self.loaded.append(app)
        if self.default is None and self._may_default(key):
            self.default = app
        self._on_load(app)
        return app

    def _may_default(self, mountpoint):
        return (not self.no_default and self.default is None and
                _may_be_default(mountpoint))

    def _manage_script_name(self, request_vars):
        """The app whose mountpoint now is SCRIPT_NAME, or None."""
        path = request_vars.get("PATH_INFO", "")
        if len(path) <= 1:
            return None
        best = _longest_mount(self.loaded, path)
        if best is None:
            # uWSGI gives a longer path a SCRIPT_NAME, empty if need be.
            request_vars.setdefault("SCRIPT_NAME", "")
            return None
        mountpoint = best.mountpoint
        if path == mountpoint.rstrip("/"):
            # `mount = /blog/` and a request for /blog: uWSGI reads past
            # the end of PATH_INFO; ugu gives SCRIPT_NAME /blog and an
            # empty PATH_INFO (DEVIATIONS 16).
            mountpoint = path
        request_vars["SCRIPT_NAME"] = mountpoint
        request_vars["PATH_INFO"] = path[len(mountpoint):]
        return best


# The request vars that ask for a dynamic app (UWSGI_CALLABLE alone asks,
# and loads nothing, as in uWSGI).
_DYNAMIC_KEYS = frozenset({"UWSGI_SCRIPT", "UWSGI_MODULE", "UWSGI_CALLABLE",
                           "UWSGI_FILE"})


def _dynamic_target(request_vars, default_name):
    """The loader of the app a request's UWSGI_* vars name, in uWSGI's
    order: UWSGI_SCRIPT, UWSGI_MODULE (with UWSGI_CALLABLE), UWSGI_FILE."""
    home = request_vars.get("UWSGI_PYHOME") or request_vars.get("UWSGI_HOME")
    if home and not _is_running_home(home):
        return lambda: _refuse_home(home)
    script = request_vars.get("UWSGI_SCRIPT")
    module = request_vars.get("UWSGI_MODULE")
    name = request_vars.get("UWSGI_CALLABLE")
    if script:
        return _module_target(script, default_name)
    if module:
        return _module_target(module, name or default_name)
    if request_vars.get("UWSGI_FILE"):
        return _file_target(request_vars["UWSGI_FILE"], default_name)
    return lambda: None


def _is_running_home(home):
    return os.path.realpath(home) == os.path.realpath(sys.prefix)


def _refuse_home(home):
    """uWSGI gives a dynamic app with UWSGI_PYHOME an interpreter of its
    own on that virtualenv; ugu's apps share the worker's one
    interpreter, where another app's packages would then be shadowed."""
    log.log(f"ugu cannot load an app on UWSGI_PYHOME {home}: a worker's "
            f"apps share one Python, which runs on {sys.prefix}; drop that "
            f"uwsgi_param, or run an instance with home = {home}")
    raise _Reported()


def change_folder(path, where):
    """chdir to a dynamic app's UWSGI_CHDIR; a failure is logged as
    uWSGI logs it, with its source line `where`, and the request goes on
    in the current folder."""
    try:
        os.chdir(path)
    except OSError as e:
        log.log(f"chdir(): {e.strerror} [{where}]")


def _may_be_default(mountpoint):
    return mountpoint == "" or mountpoint.startswith("/")


def _longest_mount(apps, path):
    """The app whose mountpoint (less a trailing '/') prefixes `path` on
    a '/' boundary, the longest such; never one on '' or '/'."""
    best, best_len = None, 0
    for app in apps:
        prefix = app.mountpoint.removesuffix("/")
        if len(prefix) <= best_len or not path.startswith(prefix):
            continue
        if len(path) > len(prefix) and path[len(prefix)] != "/":
            continue
        best, best_len = app, len(prefix)
    return best


def prepare(config, start_cwd=None):
    """What uWSGI sets up before loading apps: the Python home, the
    app's sys.argv and sys.executable, the current folder, the
    pythonpath, then the module aliases.  `start_cwd`: the folder ugu
    started in, which a relative ini-paste is read from."""
    global _START_CWD
    _START_CWD = start_cwd or os.getcwd()
    if config["home"]:
        use_home(config["home"])
    set_argv(config)
    if config["py-executable"]:
        sys.executable = config["py-executable"]
    prints_to_the_log()
    current_folder_first()
    add_pythonpath(config)
    alias_modules(config["pymodule-alias"], "pymodule-alias")


# The folder ugu started in (uWSGI's cwd, which ini-paste's path is
# relative to, whatever chdir says).
_START_CWD = None


def set_argv(config):
    """The app's sys.argv, as uWSGI's Python has it: "uwsgi" (or the
    pyrun script) and pyargv's words, split at spaces and tabs; never
    ugu's own options (an app that parses sys.argv at import would take
    them for its own)."""
    words = [w for w in re.split(r"[ \t]", config["pyargv"] or "") if w]
    sys.argv[:] = [config["pyrun"] or "uwsgi", *words]


def alias_modules(specs, option):
    """pymodule-alias and post-pymodule-alias: ALIAS=MODULE imports the
    module and puts it in sys.modules under the alias too; ALIAS=PATH
    (a value with a '/') runs the file as the module ALIAS.  A failed
    import ends the process (1) after its traceback, as in uWSGI."""
    for spec in specs:
        alias, eq, target = spec.partition("=")
        if not eq or not alias or not target:
            raise ConfigError(f"invalid {option} syntax: {spec} (write "
                              f"ALIAS=MODULE or ALIAS=/path/file.py)",
                              option=option)
        try:
            if "/" in target:
                _load_file(target, alias)
            else:
                sys.modules[alias] = importlib.import_module(target)
        except _Reported:
            raise ImportFailed() from None
        except Exception:
            log.app_traceback()
            raise ImportFailed() from None
        log.log(f'mapped virtual pymodule "{alias}" to real pymodule '
                f'"{target}"')


def prints_to_the_log():
    """As uWSGI's Python: unless stdin is a terminal, sys.stdout and
    sys.stderr are one line-buffered stream on fd 2, so that an app's
    print() lands in the log beside the request lines."""
    if os.isatty(0):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    stream = open(2, "w", buffering=1, errors="backslashreplace",
                  closefd=False)
    sys.stdout = sys.__stdout__ = sys.stderr = sys.__stderr__ = stream


def current_folder_first():
    """uWSGI's interpreter starts with `.` and `` first on sys.path, so
    that `module = mysite.wsgi` imports from the folder of `chdir`, as
    Django's deployment guide has it, without a pythonpath."""
    sys.path[:] = [".", ""] + [p for p in sys.path if p not in (".", "")]


def use_home(home):
    """uWSGI sets PYTHONHOME before the interpreter starts, so that the
    environment's site-packages is on sys.path.  ugu's interpreter is
    running already: it puts that site-packages (and its .pth files)
    first on sys.path, ahead of the packages ugu itself runs from."""
    if os.path.isfile(os.path.join(home, "pyvenv.cfg")):
        log.log(f"PEP 405 virtualenv detected: {home}")
    log.log(f"Set PythonHome to {home}")
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    packages = os.path.join(os.path.abspath(home), "lib", version,
                            "site-packages")
    if not os.path.isdir(packages):
        raise ConfigError(f"{home} has no lib/{version}/site-packages: it "
                          "is not an environment of this Python",
                          option="home")
    before = list(sys.path)
    site.addsitedir(packages)
    added = [p for p in sys.path if p not in before]
    sys.path[:] = added + before
    sys.prefix = sys.exec_prefix = os.path.abspath(home)


def add_pythonpath(config):
    for pattern in config["pythonpath"]:
        for path in _glob_marked(pattern):
            sys.path.insert(0, path)
            log.log(f"added {path} to pythonpath.")


def _glob_marked(pattern):
    """uWSGI's glob: folders get a trailing slash, and a pattern that
    matches nothing stands for itself."""
    found = sorted(glob.glob(pattern))
    return [p + "/" if os.path.isdir(p) and not p.endswith("/") else p
            for p in found] or [pattern]


def capacity(config):
    """How many apps a worker can hold: `max-apps` (dynamic apps may
    come), at least one for the scoreboard's sake."""
    return max(1, config["max-apps"])


def init_all(config, hooks, on_fatal=None):
    """uWSGI's app initialisation, in the master or in a lazy worker:
    the pre-app hooks, the `import` modules, the apps, the post-app
    hooks.  The Apps; raises NoApp where the process must exit.  A fatal
    hook calls `on_fatal` (hooks.py)."""
    hooks.run("pre-app", on_fatal)
    import_all(config["import"])
    alias_modules(config["post-pymodule-alias"], "post-pymodule-alias")
    loaded = load_all(config)
    # pyrun's command mode wants no app (uWSGI says nothing of one).
    if not loaded and not config["pyrun"] and report_missing(config):
        raise NoApp()
    hooks.run("post-app", on_fatal)
    return loaded


def import_all(names):
    """`import` and `shared-import`: a module by name, or a file (a name
    with a '/' or ending in .py) run as a module named after its path.
    A failure is logged and the start goes on, as in uWSGI."""
    for name in names:
        try:
            if "/" in name or name.endswith(".py"):
                _load_file(name, _pythonized(name))
            else:
                importlib.import_module(name)
        except _Reported:
            pass
        except Exception:
            log.app_traceback()


def load_all(config):
    """Apps of `module`/`wsgi-file` and of every `mount`, as Apps.  A
    failed load takes no id: the next app gets it, as in uWSGI."""
    loaded = []
    reload_env = config["reload-os-env"]
    for target in _targets(config):
        if any(app.mountpoint == "" for app in loaded):
            # uWSGI's words: app 0's loaders after the first that loaded
            # do not run.
            log.log("mountpoint  already configured. skip.")
            continue
        if reload_env:
            reload_os_environ()
        _load_into(loaded, "", target, config)
    for spec in config["mount"]:
        mountpoint, target, fatal = _mount_target(spec, config)
        log.log(f"mounting {spec.partition('=')[2]} on {mountpoint}")
        if reload_env:
            reload_os_environ()
        if not _load_into(loaded, mountpoint, target, config, fatal) \
                and fatal:
            raise MountFailed(spec)
    return Apps(loaded, config)


def _load_into(loaded, mountpoint, target, config, fatal=False):
    """Loads one configured app at the end of `loaded`; True if it did."""
    if len(loaded) >= config["max-apps"]:
        log.log(f"ERROR: you cannot load more than {config['max-apps']} "
                f"apps in a worker")
        return False
    first = not config["no-default-app"] and _may_be_default(mountpoint) \
        and not any(_may_be_default(app.mountpoint) for app in loaded)
    app = _load(len(loaded), mountpoint, target, first, fatal)
    if app.callable is None:
        return False
    loaded.append(app)
    return True


def reload_os_environ():
    """reload-os-env, before each app loads, as uWSGI's Python does:
    every variable of the C library's environment into os.environ, so
    that one set there past Python (by a C extension's setenv(), say)
    is seen; none is removed."""
    entries = ctypes.POINTER(ctypes.c_char_p).in_dll(ctypes.pythonapi,
                                                     "environ")
    found = {}
    index = 0
    while entries[index] is not None:
        name, eq, value = entries[index].partition(b"=")
        if eq:
            found[os.fsdecode(name)] = os.fsdecode(value)
        index += 1
    os.environ.update(found)


class NoApp(Exception):
    """The process exits for want of its apps (EXIT_NO_APP): none loaded
    and need-app wants one."""

    exit_code = EXIT_NO_APP


class ImportFailed(NoApp):
    """A module alias did not import: uWSGI's process exits 1."""

    exit_code = 1


class MountFailed(NoApp):
    """A mounted file did not load: uWSGI's process exits (EXIT_NO_APP)
    then, need-app or not."""


class _Reported(Exception):
    """A load that failed and has logged why, in uWSGI's words."""


def _load(app_id, mountpoint, target, default=False, fatal=False):
    """App `app_id`: its target called for the callable (None if it
    failed, which it or the traceback logged; a `fatal` failure ends
    the process, unsaid here).  `default`: it is the default app."""
    started = time.monotonic()
    try:
        app = target()
    except NoApp:
        raise
    except _Reported:
        app = None
    except Exception:
        log.app_traceback()
        app = None
    if app is None:
        if not fatal:
            log.log(f"unable to load app {app_id} (mountpoint="
                    f"'{mountpoint}') (callable not found or import "
                    f"error)")
        return App(None, app_id, mountpoint)
    seconds = int(time.monotonic() - started)
    log.log(f"WSGI app {app_id} (mountpoint='{mountpoint}') ready in "
            f"{seconds} seconds on interpreter "
            f"{id(sys.modules['__main__']):#x} pid: {os.getpid()}"
            f"{' (default app)' if default else ''}")
    return App(app, app_id, mountpoint, seconds)


def report_missing(config):
    """uWSGI's words when no app loaded; True if the vassal must exit."""
    if config["need-app"]:
        # uWSGI's lazy mode ends the worker without a word.
        if not config["lazy"]:
            log.log("*** no app loaded. GAME OVER ***")
        return True
    log.log("*** no app loaded. going in full dynamic mode ***")
    return False


def _targets(config):
    """The loaders of app 0's callable, in uWSGI's order: module
    (`pkg.mod:name` names the callable), wsgi-file, pecan, paste (or
    ini-paste), eval.  The first that loads is app 0."""
    name = config["callable"]
    if config["module"]:
        yield _module_target(config["module"], name)
    if config["wsgi-file"]:
        yield _file_target(config["wsgi-file"], name)
    if config["pecan"]:
        yield _pecan_target(config["pecan"])
    paste, logged = _paste_uri(config)
    if paste:
        yield _paste_target(paste, logged)
    if config["eval"] is not None:
        yield _eval_target(config["eval"], name)


def _fatal(load):
    """A loader whose failure ends the process (EXIT_NO_APP) after its
    traceback, as uWSGI's paste, pecan and eval loaders exit."""
    def fatal_load():
        try:
            return load()
        except _Reported:
            raise NoApp() from None
        except Exception:
            log.app_traceback()
            raise NoApp() from None
    return fatal_load


def _paste_uri(config):
    """The PasteDeploy URI of app 0 (the last of paste, ini-paste and
    ini-paste-logged, as uWSGI sets one value from each) and whether
    logging is configured from it."""
    uri = None
    logged = config["paste-logger"]
    for entry in config.entries:
        if entry.placeholder:
            continue
        if entry.key == "paste":
            uri = entry.value
        elif entry.key in ("ini-paste", "ini-paste-logged"):
            path = os.path.join(_START_CWD or os.getcwd(), entry.value)
            uri = "config:" + (entry.value if entry.value.startswith("/")
                               else path)
            logged = logged or entry.key == "ini-paste-logged"
    return uri, logged


def _paste_target(uri, logged):
    """Loader of a PasteDeploy app, as uWSGI's: logging configured from
    the file first (paste-logger: the URI less its `config:`), then
    paste.deploy.loadapp(URI).  A failure ends the process."""
    @_fatal
    def load():
        log.log(f"Loading paste environment: {uri}")
        if logged:
            import logging.config
            try:
                logging.config.fileConfig(uri[len("config:"):])
            except Exception:
                log.app_traceback()
        import paste.deploy
        return paste.deploy.loadapp(uri)
    return load


def _pecan_target(path):
    """Loader of a Pecan app: pecan.deploy.deploy(config file), as
    uWSGI's.  A failure ends the process."""
    @_fatal
    def load():
        log.log(f"Loading pecan environment: {path}")
        import pecan.deploy
        return pecan.deploy.deploy(path)
    return load


EVAL_MODULE = "uwsgi_eval_config"


def _eval_target(code, name):
    """Loader of the callable of `eval`'s code, run as the module
    uwsgi_eval_config, as uWSGI's: a failure to compile or run it, or a
    callable that is not one, ends the process; none of that name is a
    failed load."""
    @_fatal
    def load():
        try:
            compiled = compile(code, EVAL_MODULE, "exec")
        except (SyntaxError, ValueError):
            log.app_traceback()
            log.log("failed to compile eval code")
            raise _Reported() from None
        module = types.ModuleType(EVAL_MODULE)
        module.__file__ = EVAL_MODULE
        sys.modules[EVAL_MODULE] = module
        try:
            exec(compiled, module.__dict__)
        except BaseException:
            del sys.modules[EVAL_MODULE]
            raise
        obj = getattr(module, name, None)
        if obj is not None and not callable(obj):
            log.log("you must define a callable object in your code")
            raise _Reported()
        return obj
    return load


def _module_target(spec, default_name):
    module, _, attr = spec.partition(":")
    return lambda: _find_callable(importlib.import_module(module),
                                  attr or default_name)


def _mount_target(spec, config):
    """`/mp=target` -> (mountpoint, loader of its callable, whether its
    failure is fatal).  The target is a .py/.wsgi file or
    module:callable, as uWSGI's Python plugin takes."""
    mountpoint, eq, target = spec.partition("=")
    if not eq:
        raise ConfigError(f"invalid mountpoint: {spec}", option="mount")
    if target.endswith(FILE_SUFFIXES):
        # uWSGI's process exits when a mounted file fails to load.
        return mountpoint, _file_target(target, config["callable"]), True
    if target.endswith(".ini"):
        # A PasteDeploy URI, as uWSGI's mount loader reads one
        # (config:/path/app.ini); its failure ends the process.
        return (mountpoint, _paste_target(target, _paste_uri(config)[1]),
                True)
    if ":" in target:
        return (mountpoint, _module_target(target, config["callable"]),
                False)
    raise ConfigError(f"cannot mount {target}: name a .py or .wsgi file or "
                      "module:callable", option="mount")


def _find_callable(module, name):
    # `name()` means: call it to get the app (an app factory).
    call = name.endswith("()")
    obj = getattr(module, name.removesuffix("()"), None)
    if obj is not None and call:
        obj = obj()
    return obj if callable(obj) else None


def _file_target(path, name):
    """Loader of the callable of a file, as uWSGI's file loader: the
    attribute as named, which must be callable (no factory call)."""
    def load():
        module = _load_file(path, "uwsgi_file_" + _pythonized(path))
        obj = getattr(module, name, None)
        if obj is None:
            # uWSGI's words, "application" whatever the callable's name.
            log.log(f'unable to find "application" callable in file '
                    f'{path}')
            raise _Reported()
        if not callable(obj):
            log.log(f'"application" must be a callable object in file '
                    f'{path}')
            raise _Reported()
        return obj
    return load


def _load_file(path, name):
    """Module `name` run from a file as uWSGI's Python runs it, whatever
    its extension (app.wsgi, or none): compiled under the path as given,
    which its __file__ and tracebacks then show; a folder is a package
    whose __init__.py runs."""
    source = path
    if os.path.isdir(path):
        source = os.path.join(path, "__init__.py")
    try:
        with open(source, "rb") as f:
            text = f.read()
    except OSError as e:
        log.log(f"failed to open python file {path}" if source == path
                else f'open("{source}"): {e.strerror}')
        raise _Reported() from None
    if name in sys.modules:
        return sys.modules[name]  # mounted twice: one module
    try:
        code = compile(text, source, "exec")
    except (SyntaxError, ValueError):
        log.app_traceback()
        log.log(f"failed to compile {source}")
        raise _Reported() from None
    module = types.ModuleType(name)
    module.__file__ = source
    if source != path:
        module.__path__ = [path]
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _pythonized(path):
    """uWSGI's module name for a file: dots and slashes as underscores,
    less a final `.py`."""
    name = path.replace(".", "_").replace("/", "_")
    return name[:-3] if name.endswith("_py") else name
