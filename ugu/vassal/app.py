"""Finding and loading the WSGI applications, with uWSGI's messages.

App 0 is the one named by `module` or `wsgi-file`; each `mount = /mp=target`
adds one more, in order, with the ids uWSGI gives them.  A request goes to
the app whose mountpoint equals its SCRIPT_NAME (or UWSGI_APPID), else to
the default app: the first one loaded, wherever it is mounted (uWSGI's
Python plugin means '' or '/' and tests any mountpoint starting with '/';
a mount = /app=... alone takes every request not for /app).  With
`manage-script-name` the longest mountpoint that prefixes PATH_INFO on a
'/' boundary becomes SCRIPT_NAME first.

uWSGI gives each mount its own sub-interpreter; ugu loads every app in the
one interpreter, as uWSGI's `single-interpreter` does.

A load failure is not fatal unless `need-app` is set: the vassal then runs
in uWSGI's "full dynamic mode" and answers every request with an error, so
that a typo in a module name does not put the instance in a restart loop.
"""

import ctypes
import glob
import importlib
import importlib.util
import os
import site
import sys
import time
import types

from ugu import log
from ugu.options.errors import ConfigError

EXIT_NO_APP = 22
FILE_SUFFIXES = (".py", ".wsgi")


class App:
    """A loaded callable and where it is mounted, as the workers see it."""

    def __init__(self, callable_, app_id=0, mountpoint="", startup_time=0):
        self.callable = callable_
        self.id = app_id
        self.mountpoint = mountpoint
        self.startup_time = startup_time    # whole seconds its load took
        self.requests = 0


class Apps:
    """The loaded apps, and the choice of one for each request."""

    def __init__(self, loaded=(), manage_script_name=False):
        self.loaded = [app for app in loaded if app.callable is not None]
        self.manage_script_name = manage_script_name
        self.default = next((app for app in self.loaded
                             if _may_be_default(app.mountpoint)), None)

    def __bool__(self):
        return bool(self.loaded)

    def select(self, request_vars):
        """The app for a request, or None; with manage-script-name, first
        rewrites SCRIPT_NAME and PATH_INFO in `request_vars`."""
        if self.manage_script_name:
            managed = self._manage_script_name(request_vars)
            if managed:
                return managed
        return self.lookup(request_vars)

    def lookup(self, request_vars):
        """The app UWSGI_APPID or SCRIPT_NAME names, or the default: how
        uWSGI chooses again after a request route set one of them."""
        wanted = request_vars.get("UWSGI_APPID") or \
            request_vars.get("SCRIPT_NAME", "")
        for app in self.loaded:
            if app.mountpoint == wanted:
                return app
        return self.default

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


def prepare(config):
    """What uWSGI sets up before loading apps: the Python home, the
    current folder, then the pythonpath."""
    if config["home"]:
        use_home(config["home"])
    prints_to_the_log()
    current_folder_first()
    add_pythonpath(config)


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
    """How many apps the config can load: app 0 and one per mount."""
    return 1 + len(config["mount"])


def init_all(config, hooks, on_fatal=None):
    """uWSGI's app initialisation, in the master or in a lazy worker:
    the pre-app hooks, the `import` modules, the apps, the post-app
    hooks.  The Apps; raises NoApp where the process must exit.  A fatal
    hook calls `on_fatal` (hooks.py)."""
    hooks.run("pre-app", on_fatal)
    import_all(config["import"])
    loaded = load_all(config)
    if not loaded and report_missing(config):
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
    """Apps of `module`/`wsgi-file` and of every `mount`, as Apps."""
    loaded = []
    reload_env = config["reload-os-env"]
    target = _target(config)
    if target is not None:
        if reload_env:
            reload_os_environ()
        loaded.append(_load(0, "", target, loaded))
    for spec in config["mount"]:
        mountpoint, target, fatal = _mount_target(spec, config)
        log.log(f"mounting {spec.partition('=')[2]} on {mountpoint}")
        if reload_env:
            reload_os_environ()
        app = _load(len(loaded), mountpoint, target, loaded, fatal)
        if app.callable is None and fatal:
            raise MountFailed(spec)
        loaded.append(app)
    return Apps(loaded, config["manage-script-name"])


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


class MountFailed(NoApp):
    """A mounted file did not load: uWSGI's process exits (EXIT_NO_APP)
    then, need-app or not."""


class _Reported(Exception):
    """A load that failed and has logged why, in uWSGI's words."""


def _load(app_id, mountpoint, target, loaded, fatal=False):
    """App `app_id`: its target called for the callable (None if it
    failed, which it or the traceback logged; a `fatal` failure ends
    the process, unsaid here)."""
    started = time.monotonic()
    try:
        app = target()
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
    default = ""
    if _may_be_default(mountpoint) and not Apps(loaded).default:
        default = " (default app)"
    log.log(f"WSGI app {app_id} (mountpoint='{mountpoint}') ready in "
            f"{seconds} seconds on interpreter "
            f"{id(sys.modules['__main__']):#x} pid: {os.getpid()}{default}")
    return App(app, app_id, mountpoint, seconds)


def report_missing(config):
    """uWSGI's words when no app loaded; True if the vassal must exit."""
    if config["need-app"]:
        log.log("*** no app loaded. GAME OVER ***")
        return True
    log.log("*** no app loaded. going in full dynamic mode ***")
    return False


def _target(config):
    """The loader of app 0's callable, or None when no app is configured.
    `module = pkg.mod:name` names the callable."""
    if config["module"]:
        return _module_target(config["module"], config["callable"])
    if config["wsgi-file"]:
        return _file_target(config["wsgi-file"], config["callable"])
    return None


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
