"""Finding and loading the WSGI application, with uWSGI's messages.

A load failure is not fatal unless `need-app` is set: the vassal then runs
in uWSGI's "full dynamic mode" and answers every request with an error, so
that a typo in a module name does not put the instance in a restart loop.
"""

import glob
import importlib
import importlib.util
import os
import re
import sys
import time
import traceback

from ugu import log

EXIT_NO_APP = 22


class App:
    """The loaded callable (or None), as the workers see it."""

    def __init__(self, callable_, app_id=0):
        self.callable = callable_
        self.id = app_id
        self.requests = 0


def add_pythonpath(config):
    for pattern in config["pythonpath"]:
        for path in sorted(glob.glob(pattern)) or [pattern]:
            sys.path.insert(0, path)
            log.log(f"added {path} to pythonpath.")


def load(config):
    """Load the configured app; an App whose callable may be None."""
    started = time.monotonic()
    target, name = _target(config)
    if target is None:
        return App(None)
    try:
        app = _find_callable(target(), name)
    except Exception:
        traceback.print_exc()
        app = None
    if app is None:
        log.log("unable to load app 0 (mountpoint='') (callable not found "
                "or import error)")
        return App(None)
    seconds = int(time.monotonic() - started)
    log.log(f"WSGI app 0 (mountpoint='') ready in {seconds} seconds on "
            f"interpreter {id(sys.modules['__main__']):#x} pid: {os.getpid()}"
            f" (default app)")
    return App(app)


def report_missing(config):
    """uWSGI's words when no app loaded; True if the vassal must exit."""
    if config["need-app"]:
        log.log("*** no app loaded. GAME OVER ***")
        return True
    log.log("*** no app loaded. going in full dynamic mode ***")
    return False


def _target(config):
    """(loader returning the module, callable name); (None, None) when no
    app is configured.  `module = pkg.mod:name` names the callable."""
    if config["module"]:
        module, _, attr = config["module"].partition(":")
        return (lambda: importlib.import_module(module),
                attr or config["callable"])
    if config["wsgi-file"]:
        return (lambda: _load_file(config["wsgi-file"]), config["callable"])
    return None, None


def _find_callable(module, name):
    # `name()` means: call it to get the app (an app factory).
    call = name.endswith("()")
    obj = getattr(module, name.rstrip("()"), None)
    if obj is not None and call:
        obj = obj()
    return obj if callable(obj) else None


def _load_file(path):
    if not os.path.isfile(path):
        log.log(f"failed to open python file {path}")
        raise FileNotFoundError(path)
    name = "uwsgi_file_" + re.sub(r"[^A-Za-z0-9]", "_", path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
