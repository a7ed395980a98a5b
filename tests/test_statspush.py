"""stats-push (socket, statsd, file) and stats-pusher-default-freq: what
a receiver the test binds gets, on ugu and, for the socket pusher (the
one the reference uWSGI builds in), on the real uWSGI too."""

import json
import re
import subprocess
import textwrap

import pytest

from tests import support

APP = textwrap.dedent('''
    import uwsgi

    def application(environ, start_response):
        uwsgi.metric_inc("mycount", 5)
        start_response("200 OK", [])
        return [b"ok"]
''')
SERVERS = ["ugu", "uwsgi"]


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


@pytest.fixture
def receiver(receivers):
    return receivers()


def serve(start_server, server, site, *pairs):
    port = support.free_port()
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", site / "app.py"), ("master", "true"),
        ("metric", "name=mycount,reset_after_push=1"), *pairs])
    p = start_server(server, ["--ini", "app.ini"], cwd=site)
    support.wait_for_port(port)
    return p, port


@pytest.mark.parametrize("server", SERVERS)
def test_socket_pusher_sends_each_metric(start_server, site, receiver,
                                         server):
    """`PREFIX.NAME TYPE VALUE`, every metric in the order the stats
    list them; reset_after_push takes the value back once pushed."""
    p, port = serve(start_server, server, site,
                    ("stats-push", f"socket:{receiver.address},pfx"),
                    ("stats-pusher-default-freq", "1"))
    first = receiver.wait_for_packet(b"pfx.mycount 0 0")
    assert support.http10_get(port, "/").endswith(b"ok")
    pushed = receiver.wait_for_packet(b"pfx.mycount 0 5", first)
    receiver.wait_for_packet(b"pfx.mycount 0 0", pushed)
    p.stop()
    got = receiver.got
    names = [d.split(b" ")[0]
             for d in got[:got.index(b"pfx.mycount 0 0") + 1]]
    assert names[:3] == [b"pfx.core.routed_signals",
                         b"pfx.core.unrouted_signals",
                         b"pfx.core.busy_workers"]
    assert b"pfx.rss_size" in names and names[-1] == b"pfx.mycount"
    assert all(re.fullmatch(rb"pfx\.[\w.]+ [0-3] -?\d+", d) for d in got)
    assert b"pfx.worker.1.requests 0 1" in got
    assert "metrics collector thread started" in p.output()


def test_statsd_pusher_sends_gauges_and_counters(start_server, site,
                                                 receiver):
    p, port = serve(start_server, "ugu", site,
                    ("stats-push", f"statsd:{receiver.address}"),
                    ("stats-pusher-default-freq", "1"))
    first = receiver.wait_for_packet(b"uwsgi.mycount:0|c")
    support.http10_get(port, "/")
    receiver.wait_for_packet(b"uwsgi.mycount:5|c", first)
    p.stop()
    assert b"uwsgi.core.busy_workers:0|g" in receiver.got
    assert all(re.fullmatch(rb"uwsgi\.[\w.]+:-?\d+\|[gc]", d)
               for d in receiver.got)


def test_file_pusher_appends_the_stats_json(start_server, site):
    p, port = serve(start_server, "ugu", site,
                    ("stats-push", "file:path=stats.out,separator=@@,"
                                   "freq=1"),
                    ("stats-minified", "true"))
    path = site / "stats.out"
    support.wait_until(lambda: path.exists() and
                       path.read_text().count("@@") >= 2,
                       what="two documents in stats.out")
    p.stop()
    documents = path.read_text().split("@@")
    doc = json.loads(documents[0])
    assert doc["workers"][0]["id"] == 1
    assert doc["metrics"]["mycount"] == {"type": 0, "oid": "",
                                         "value": 0}


@pytest.mark.parametrize("spec, message", [
    ("carbon:127.0.0.1:9", "ugu has the stats pushers uWSGI 2.0 ships "
                           "without extra libraries: socket, statsd, file"),
    ("socket:127.0.0.1", "invalid socket address '127.0.0.1'"),
    ("statsd:no.such.host.invalid:9", "cannot resolve"),
    ("file:where=x", "'where=x' is not one of path=PATH")])
def test_a_pusher_ugu_cannot_run_is_refused(site, spec, message):
    done = subprocess.run(
        [*support.UGU, "--http-socket", "127.0.0.1:0", "--stats-push",
         spec], cwd=site, timeout=30, capture_output=True, text=True,
        stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert f"option 'stats-push': '{spec}'" in done.stderr
    assert message in done.stderr
