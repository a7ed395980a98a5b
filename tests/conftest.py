import compileall
import subprocess
from pathlib import Path

import pytest

from tests import support


def pytest_sessionstart(session):
    """Write ugu's .pyc files once, before any test starts ugu.  Where
    PYTHONDONTWRITEBYTECODE is set, as in some CI images, each of the
    suite's thousands of ugu processes would otherwise compile its 300
    modules again; an installed ugu never does that.  The xdist workers
    leave it to the controller, which runs this before it starts them."""
    if not hasattr(session.config, "workerinput"):
        compileall.compile_dir(support.REPO / "ugu", quiet=1)


@pytest.fixture(scope="session")
def uwsgi_binary():
    """The real uWSGI, for differential tests."""
    path, missing = support.reference_uwsgi()
    if path is None:
        pytest.skip(f"no reference uWSGI for this comparison: {missing}")
    return path


@pytest.fixture(scope="session")
def uwsgi_gevent_binary(uwsgi_binary):
    """The real uWSGI, where its Python has gevent (.ci/run installs it
    there; the reference tool alone does not)."""
    python = Path(uwsgi_binary).with_name("python")
    found = python.exists() and subprocess.run(
        [python, "-c", "import gevent"], capture_output=True).returncode == 0
    if not found:
        pytest.skip(f"the reference uWSGI's Python ({python}) has no gevent: "
                    f"`{python.with_name('pip')} install gevent` adds it")
    return uwsgi_binary


@pytest.fixture
def procs():
    """Start processes with procs.ugu(...) / procs.start(argv); every one
    is stopped, with its whole process group, when the test ends."""
    started = []

    class Starter:
        def ugu(self, *args, **kw):
            p = support.ugu(*args, **kw)
            started.append(p)
            return p

        def start(self, argv, **kw):
            p = support.Process(argv, **kw)
            started.append(p)
            return p

    yield Starter()
    for p in reversed(started):
        p.stop(timeout=REFERENCE_MERCY if _is_reference(p) else 10)


# Seconds the real uWSGI is given to end at a test's end: in a dozen of
# the differential tests it did not end on a SIGINT to its process group
# within the 10 s, and each such teardown cost the suite 10 s.  ugu keeps
# the full 10 s, so that a slow end of ugu's still shows in the timings.
REFERENCE_MERCY = 2


def _is_reference(process):
    return Path(process.argv[0]).name == "uwsgi"


@pytest.fixture
def receivers():
    """receivers(path=None): a support.Receiver, UDP or unix at `path`,
    closed when the test ends."""
    made = []

    def make(path=None):
        made.append(support.Receiver(path))
        return made[-1]
    yield make
    for r in made:
        r.close()


@pytest.fixture
def start_server(procs, request):
    """start_server(server, argv, **kw): ugu ("ugu") or the real uWSGI
    ("uwsgi") started with the same options, for a test run on both."""
    def start(server, argv, **kw):
        if server == "ugu":
            return procs.ugu(*argv, **kw)
        binary = request.getfixturevalue("uwsgi_binary")
        return procs.start([binary, *argv], **kw)
    return start


def pytest_sessionfinish(session, exitstatus):
    support.stop_leftovers()
