import pytest

from tests import support


@pytest.fixture(scope="session")
def uwsgi_binary():
    """The real uWSGI, for differential tests."""
    path = support.reference_uwsgi()
    if path is None:
        pytest.skip("the reference uWSGI could not be installed here "
                    "(../shared/tools/reference-uwsgi failed)")
    return path


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
        p.stop()


def pytest_sessionfinish(session, exitstatus):
    support.stop_leftovers()
