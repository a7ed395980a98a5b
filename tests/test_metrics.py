"""The metrics (`enable-metrics`, `metric`, `metric-threshold`,
`metrics-dir`) and carbon (`carbon`): real instances, their stats server
and a carbon server of the test's own, compared with uWSGI's on the same
config."""

import json
import re
import socket
import textwrap
import threading

import pytest

from tests.support import (free_port, get_body, wait_for_port, wait_until,
                           write_ini)
from tests.test_stats import ENABLED, read_stats

APP = textwrap.dedent('''\
    import uwsgi

    def application(environ, start_response):
        # /CALL/ARGS: uwsgi.CALL(*ARGS), the answer its repr.
        _, call, *args = environ["PATH_INFO"].split("/")
        args = [int(a) if a.lstrip("-").isdigit() else a for a in args]
        if call == "boom":
            raise RuntimeError("boom")
        try:
            found = repr(getattr(uwsgi, call)(*args)) if call else "hi"
        except Exception as e:
            found = f"{type(e).__name__}: {e}"
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [found.encode()]
''')


def start(start_server, server, tmp_path, *pairs):
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    ini = write_ini(tmp_path / f"{server}.ini", uwsgi=[
        ("master", "true"), ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", "app.py"), *pairs])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    wait_for_port(port)
    return p, port


def call(port, *parts):
    return get_body(port, "/" + "/".join(map(str, parts))).decode()


def metrics_of(stats_port):
    return json.loads(read_stats(stats_port))["metrics"]


def test_the_metrics_are_uwsgis(start_server, tmp_path):
    """Names, order, types and oids as uWSGI's; the values its collector
    takes a second later, shared by every worker."""
    docs = {}
    for server in ("ugu", "uwsgi"):
        stats_port = free_port()
        p, port = start(start_server, server, tmp_path,
                        ("processes", "2"), ("threads", "2"),
                        ("stats", f"127.0.0.1:{stats_port}"),
                        ("metric", "name=app.hits,type=gauge,oid=100.1"),
                        ("metric", "name=doubled,collector=multiplier,"
                         "children=app.hits,arg1n=2"))
        p.wait_for_log(ENABLED.format(f"127.0.0.1:{stats_port}"))
        assert [call(port, "metric_inc", "app.hits") for _ in range(3)] == \
            ["True"] * 3
        assert call(port, "metric_get", "app.hits") == "3"
        docs[server] = wait_until(
            lambda: (m := metrics_of(stats_port))["doubled"]["value"] == 6
            and m["worker.0.requests"]["value"] == 4 and m,
            what=f"{server}'s collector")
        assert "metrics collector thread started" in p.output()
        assert "initialized 70 metrics" in p.output()
        p.stop()
    ugu, uwsgi = docs["ugu"], docs["uwsgi"]
    assert list(ugu) == list(uwsgi)
    assert [(m["type"], m["oid"]) for m in ugu.values()] == \
        [(m["type"], m["oid"]) for m in uwsgi.values()]
    for doc in (ugu, uwsgi):
        assert doc["app.hits"] == {"type": 1, "oid": "100.1", "value": 3}
        workers = [doc[f"worker.{w}.requests"]["value"] for w in (1, 2)]
        assert sum(workers) == 4
        assert doc["worker.1.respawns"]["value"] == 1
        assert doc["core.idle_workers"]["value"] == 2
        assert doc["core.total_tx"]["value"] == sum(
            doc[f"worker.{w}.total_tx"]["value"] for w in (1, 2)) > 0
        assert doc["rss_size"]["oid"] == "5.101"


def test_the_apps_functions_answer_as_uwsgis(start_server, tmp_path):
    answers = {}
    calls = [("metric_set", "m", 10), ("metric_mul", "m", -3),
             ("metric_div", "m", 4), ("metric_get", "m"),
             ("metric_div", "m", 0), ("metric_dec", "m"),
             ("metric_set_max", "m", 5), ("metric_set_min", "m", -1),
             ("metric_set_min", "m", 1), ("metric_get", "m"),
             ("metric_inc", "nope"), ("metric_get", "nope"),
             ("metric_set", "worker.1.requests", 5),
             ("metric_set", "rss_size", 5), ("metric_inc", "m", "x"),
             ("metric_get", "m", 1)]
    for server in ("ugu", "uwsgi"):
        p, port = start(start_server, server, tmp_path, ("metric", "m"))
        answers[server] = [call(port, *args) for args in calls]
        p.stop()
    assert answers["ugu"] == answers["uwsgi"]
    assert answers["ugu"][3] == "-7"       # C's division, toward zero
    assert answers["ugu"][9] == "1"


def test_without_metrics_the_functions_do_nothing(procs, tmp_path):
    p, port = start(lambda s, a, **kw: procs.ugu(*a, **kw), "ugu", tmp_path)
    assert call(port, "metric_inc", "m") == "None"
    assert call(port, "metric_get", "m") == "0"


def test_a_threshold_raises_its_alarm_and_resets(procs, tmp_path):
    p, port = start(
        lambda s, a, **kw: procs.ugu(*a, **kw), "ugu", tmp_path,
        ("alarm", "crossed log:over"), ("metric", "m"),
        ("metric-threshold", "key=m,value=3,reset=1,alarm=crossed"),
        ("alarm-metric", "key=m,value=100,alarm=crossed,msg=far over"))
    p.wait_for_log(r"added threshold for metric m \(value: 3\)\n"
                   r"added threshold for metric m \(value: 100\)\n"
                   r"initialized 39 metrics")
    call(port, "metric_set", "m", 200)
    p.wait_for_log(r"ALARM: over m\n")
    p.wait_for_log(r"ALARM: over far over\n")
    wait_until(lambda: call(port, "metric_get", "m") == "1",
               what="the threshold's reset")


def test_metrics_dir_keeps_the_values_for_the_next_start(procs, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    pairs = [("metric", "m"), ("metrics-dir", str(folder)),
             ("metrics-dir-restore", "true"), ("metrics-no-cores", "true")]
    p, port = start(lambda s, a, **kw: procs.ugu(*a, **kw), "ugu", tmp_path,
                    *pairs)
    p.wait_for_log("memory allocated for metrics storage: 131072 bytes "
                   r"\(0 MB\)")
    call(port, "metric_set", "m", 42)
    page = wait_until(lambda: (folder / "m").read_bytes().startswith(b"42")
                      and (folder / "m").read_bytes())
    assert page == b"42\n" + bytes(4093)
    served = wait_until(lambda: _number(folder / "worker.1.requests"))
    assert not (folder / "worker.1.core.0.requests").exists()
    p.stop()
    p, port = start(lambda s, a, **kw: procs.ugu(*a, **kw), "ugu", tmp_path,
                    *pairs)
    assert call(port, "metric_get", "m") == "42"
    # The collected ones go on from theirs.
    wait_until(lambda: _number(folder / "worker.1.requests") > served)


def _number(path):
    return int(path.read_bytes().split(b"\0")[0] or b"0")


@pytest.mark.parametrize("value, reason", [
    ("name=m,collector=ptr", "reads a C pointer"),
    ("name=m,collector=func,arg1=f", "calls the C function"),
    ("name=m,collector=nope", 'unable to find metric collector "nope"'),
    ("name=m,colector=file", "'colector=file' is not a metric KEY=VALUE"),
    ("name=m,collector=file", "collector=file reads the file named by "
     "arg1"),
    ("name=m!", "invalid metric name: m!"),
    ("name=m,type=alias", 'metric alias "m" requires a mapping'),
    ("name=m,children=x", 'unable to find metric "x"'),
    ("oid=1.2", "you need to specify a metric name"),
])
def test_a_metric_uwsgi_cannot_run_stops_the_start(procs, tmp_path, value,
                                                   reason):
    ini = write_ini(tmp_path / "bad.ini", uwsgi=[
        ("master", "true"), ("http-socket", f"127.0.0.1:{free_port()}"),
        ("metric", value)])
    p = procs.ugu("--ini", str(ini))
    assert p.wait() == 1
    assert re.search(rf"bad\.ini:4: option .metric.: .*{re.escape(reason)}",
                     p.output()), p.output()


@pytest.mark.parametrize("pairs, reason", [
    ([("metric-threshold", "key=m,value=1,alarm=a")],
     'no alarm is named "a"'),
    ([("metric-threshold", "key=x,value=1")], "unable to find metric x"),
    ([("metric-threshold", "key=m")], "requires a key and a value"),
    ([("carbon", "127.0.0.1")], "invalid carbon server address"),
    ([("carbon", "127.0.0.1:1"), ("carbon-idle-avg", "avg")],
     'invalid value for carbon-idle-avg: "avg"'),
    ([("carbon", "127.0.0.1:1"), ("carbon-use-metrics", "true"),
      ("stats-no-metrics", "true")], "add enable-metrics"),
])
def test_a_threshold_or_carbon_uwsgi_ignores_stops_the_start(
        procs, tmp_path, pairs, reason):
    metric = [] if pairs[0][0] == "carbon" else [("metric", "m")]
    ini = write_ini(tmp_path / "bad.ini", uwsgi=[
        ("master", "true"), ("http-socket", f"127.0.0.1:{free_port()}"),
        *metric, *pairs])
    p = procs.ugu("--ini", str(ini))
    assert p.wait() == 1
    assert reason in p.output(), p.output()


class CarbonServer:
    """A carbon server of the test's: each connection's text, in turn."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", free_port()))
        self.port = self.sock.getsockname()[1]
        self.pushes = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            with client:
                self.pushes.append(client.makefile("rb").read().decode())

    def close(self):
        self.sock.close()


@pytest.fixture
def carbon_server():
    server = CarbonServer()
    yield server
    server.close()


def _shape(push, carbon_id):
    """A push's names, the id made ID, each value and time checked."""
    names = []
    for line in push.splitlines():
        name, value, when = line.split(" ")
        assert value.isdigit() and when.isdigit(), line
        names.append(name.replace(carbon_id, "ID"))
    return names


def test_carbon_pushes_uwsgis_lines(start_server, tmp_path, carbon_server):
    """The same lines as uWSGI's to the same kind of server, a push a
    second after the start, every carbon-freq seconds, and the last as
    the instance ends."""
    found = {}
    for server in ("ugu", "uwsgi"):
        carbon_server.pushes.clear()
        p, port = start(start_server, server, tmp_path,
                        ("processes", "2"), ("memory-report", "true"),
                        ("carbon", f"127.0.0.1:{carbon_server.port}"),
                        ("carbon-freq", "2"), ("carbon-root", "ugutest"),
                        ("carbon-hostname-dots", "_"), ("cheaper", "1"))
        p.wait_for_log(r"\[carbon\] carbon plugin started, 2s frequency, "
                       r"3s timeout, max retries 0, retry delay 7s")
        assert f"[carbon] added server 127.0.0.1:{carbon_server.port}" in \
            p.output()
        call(port)
        wait_until(lambda: len(carbon_server.pushes) >= 2)
        p.stop()
        wait_until(lambda: len(carbon_server.pushes) >= 3)
        carbon_id = f"127_0_0_1:{port}"
        found[server] = [_shape(push, carbon_id)
                         for push in carbon_server.pushes]
        last = carbon_server.pushes[-1]
        assert re.search(r"^ugutest\.[^.]+\.127_0_0_1:\d+\.requests 1 ",
                         last, re.M), last
    assert found["ugu"][1] == found["uwsgi"][1]
    host = found["ugu"][1][0].split(".")[1]
    assert found["ugu"][1][:2] == [f"ugutest.{host}.ID.requests",
                                   f"ugutest.{host}.ID.worker1.requests"]
    assert f"ugutest.{host}.ID.cheaped_workers" in found["ugu"][1]


def test_carbon_use_metrics_pushes_every_metric(procs, tmp_path,
                                                carbon_server):
    p, port = start(lambda s, a, **kw: procs.ugu(*a, **kw), "ugu", tmp_path,
                    ("carbon", f"127.0.0.1:{carbon_server.port}"),
                    ("carbon-use-metrics", "true"),
                    ("carbon-id", "app"), ("carbon-root", ""),
                    ("metric", "name=hits,reset_after_push=1"),
                    ("carbon-freq", "1"))
    call(port, "metric_set", "hits", 7)
    push = wait_until(lambda: next(
        (push for push in carbon_server.pushes if " 7 " in push), None))
    names = [line.split(" ")[0].split(".", 2)[2]
             for line in push.splitlines()]
    assert names[0] == "core.routed_signals" and names[-1] == "hits"
    assert len(names) == 39
    assert re.search(r"^[^.]+\.app\.hits 7 \d+$", push, re.M)
    # Reset once pushed.
    wait_until(lambda: call(port, "metric_get", "hits") == "0")


def test_reset_after_push_waits_for_a_server_to_have_it(procs, tmp_path):
    """With the carbon server down, the metric keeps its value, as
    uWSGI's does (ugu reset it at each push that went nowhere)."""
    dead = free_port()
    p, port = start(lambda s, a, **kw: procs.ugu(*a, **kw), "ugu", tmp_path,
                    ("carbon", f"127.0.0.1:{dead}"),
                    ("carbon-use-metrics", "true"), ("carbon-freq", "1"),
                    ("metric", "name=hits,reset_after_push=1"))
    call(port, "metric_set", "hits", 7)
    p.wait_for_log(r"maximum number of retries was reached", count=2)
    assert call(port, "metric_inc", "hits") == "True"
    assert call(port, "metric_get", "hits") == "8"


def test_a_failed_push_is_retried_as_uwsgi_says(procs, tmp_path):
    dead = free_port()
    p, port = start(lambda s, a, **kw: procs.ugu(*a, **kw), "ugu", tmp_path,
                    ("carbon", f"127.0.0.1:{dead}"),
                    ("carbon-max-retry", "1"), ("carbon-retry-delay", "1"))
    p.wait_for_log(
        rf"\[carbon\] Could not connect to carbon server at "
        rf"127\.0\.0\.1:{dead}\n\[uwsgi-stats-pusher\] carbon failed \(0\), "
        rf"retry in 1s\n")
    p.wait_for_log(
        rf"\[carbon\] Retrying failed server at 127\.0\.0\.1 \(1\)\n"
        rf"\[carbon\] Could not connect to carbon server at "
        rf"127\.0\.0\.1:{dead}\n\[uwsgi-stats-pusher\] carbon failed and "
        rf"maximum number of retries was reached \(1\)\n")


def test_log_format_shows_a_metric(procs, tmp_path):
    p, port = start(lambda s, a, **kw: procs.ugu(*a, **kw), "ugu", tmp_path,
                    ("metric", "m"),
                    ("log-format", "m=%(metric.m) x=%(metric.nope)"))
    call(port, "metric_set", "m", 5)
    p.wait_for_log(r"\nm=5 x=0\n")
