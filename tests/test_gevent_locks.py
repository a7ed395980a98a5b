"""uwsgi.lock() and the sharedarea's locks in a gevent worker: each
greenlet is an owner of its own, as each thread is in a threaded worker,
and one that waits for a lock lets the others run.  uWSGI's worker hangs
on uwsgi.lock() (the holder never runs again) and lets a second greenlet
into a sharedarea write lock (both are one thread's to pthread)."""

import textwrap
import threading
import time
import urllib.request

import pytest

from tests import support

APP = textwrap.dedent('''\
    import time

    import gevent
    import uwsgi

    HOLD = 0.5

    def application(environ, start_response):
        path = environ["PATH_INFO"]
        start = time.monotonic()
        if path == "/lock/hold":
            uwsgi.lock()
            gevent.sleep(HOLD)
            uwsgi.unlock()
        elif path == "/lock/take":
            uwsgi.lock()
            uwsgi.unlock()
        elif path == "/area/hold":
            uwsgi.sharedarea_wlock(0)
            gevent.sleep(HOLD)
            uwsgi.sharedarea_unlock(0)
        elif path == "/area/take":
            uwsgi.sharedarea_wlock(0)
            uwsgi.sharedarea_unlock(0)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%.6f %.6f" % (start, time.monotonic())]
''')


@pytest.fixture(scope="module")
def port(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gevent-locks")
    (folder / "app.py").write_text(APP)
    port = support.free_port()
    process = support.ugu(
        "--master", "--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
        "app.py", "--processes", "1", "--gevent", "10", "--sharedarea",
        "1", cwd=folder)
    try:
        process.wait_for_log(r"spawned uWSGI worker 1")
        support.wait_for_port(port)
        yield port
    finally:
        process.stop()


def _times(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                timeout=10) as r:
        return [float(t) for t in r.read().split()]


@pytest.mark.parametrize("lock", ["lock", "area"])
def test_a_greenlet_waits_for_the_one_holding_the_lock(port, lock):
    """A greenlet come while another holds the lock gets it once it is
    released; tried again where a loaded machine kept the two requests
    from meeting at the lock."""
    for _ in range(5):
        held = []
        holder = threading.Thread(
            target=lambda: held.append(_times(port, f"/{lock}/hold")))
        holder.start()
        # The holder's request goes first: its greenlet holds the lock
        # while the other's asks for it.
        time.sleep(0.2)
        take_start, take_end = _times(port, f"/{lock}/take")
        holder.join(10)
        [(hold_start, hold_end)] = held
        if hold_start < take_start < hold_end:
            break
    else:
        pytest.fail("the two requests never met at the lock")
    assert hold_end <= take_end
