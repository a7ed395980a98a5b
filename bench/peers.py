"""Finding (and installing when missing) the programs the setups run."""

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
VENV = CACHE / "ugu" / "bench" / "venv"
REFERENCE_TOOL = REPO.parent / "shared" / "tools" / "reference-uwsgi"


class Missing(Exception):
    """A peer could not be found or installed; the message says why."""


def wrk():
    return _apt_binary("wrk", "wrk")


def nginx():
    return _apt_binary("nginx", "nginx")


def _apt_binary(name, package):
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", package],
                       env=env, capture_output=True, timeout=600)
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin")
        if found:
            return found
    raise Missing(f"{name} is not installed (apt-get install -y {package})")


def uwsgi():
    """The reference uWSGI binary, built by ../shared/tools if needed."""
    explicit = os.environ.get("UGU_REFERENCE_UWSGI")
    if explicit and os.access(explicit, os.X_OK):
        return explicit
    if not REFERENCE_TOOL.exists():
        given = (f", and UGU_REFERENCE_UWSGI={explicit} is not an "
                 f"executable file" if explicit else "")
        raise Missing(f"no {REFERENCE_TOOL} to build the reference uWSGI"
                      f"{given} (set UGU_REFERENCE_UWSGI to a uwsgi binary "
                      f"built with PCRE)")
    result = subprocess.run(["bash", str(REFERENCE_TOOL)],
                            capture_output=True, text=True, timeout=900)
    lines = result.stdout.strip().splitlines()
    if result.returncode or not lines or not os.access(lines[-1], os.X_OK):
        raise Missing(f"reference-uwsgi failed: {result.stderr.strip()}")
    return lines[-1]


# What gunicorn's setups import: the server, its gevent worker, the app.
GUNICORN_NEEDS = ("gunicorn", "gevent", "flask")


def gunicorn():
    """gunicorn in this Python, or in a venv of our own with gunicorn,
    gevent and Flask from PyPI (a venv made from inside another one sees
    the base interpreter's packages, not that venv's)."""
    try:
        importlib.import_module("gunicorn")
        return [sys.executable, "-m", "gunicorn"]
    except ImportError:
        pass
    python = VENV / "bin" / "python"
    if not _has_gunicorn(python):
        _make_venv(python)
    return [str(python), "-m", "gunicorn"]


def _has_gunicorn(python):
    if not python.exists():
        return False
    result = subprocess.run(
        [str(python), "-c", "import " + ", ".join(GUNICORN_NEEDS)],
        capture_output=True)
    return result.returncode == 0


def _make_venv(python):
    steps = ([sys.executable, "-m", "venv", "--system-site-packages",
              str(VENV)],
             [str(python), "-m", "pip", "install", "-q", *GUNICORN_NEEDS])
    for argv in steps:
        result = subprocess.run(argv, capture_output=True, text=True,
                                timeout=600)
        if result.returncode:
            raise Missing(f"could not install gunicorn: "
                          f"{result.stderr.strip()[-500:]}")


def ugu_has_option(name):
    """Whether ugu registers an option (another branch may add it)."""
    from ugu.options import registry
    return registry.lookup(name) is not None
