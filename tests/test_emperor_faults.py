"""The Emperor under load and faults, with real vassals: many at once,
kill -9 of vassals and of the Emperor, broken configs.  Each test prints
the figures it measures (run with -s to see them)."""

import json
import os
import re
import signal
import socket
import textwrap
import time
from pathlib import Path

import pytest
import requests

from tests.support import (children_of, free_port, group_members,
                           uwsgi_request, wait_for_port, wait_until,
                           write_ini)
from tests.test_tutorial import copy_examples

# The keys of uWSGI 2.0.31's emperor stats (checked against the binary).
STATS_KEYS = {"version", "pid", "uid", "gid", "cwd", "emperor",
              "emperor_tyrant", "throttle_level", "vassals", "blacklist"}
VASSAL_KEYS = {"id", "pid", "born", "last_mod", "last_heartbeat", "loyal",
               "ready", "accepting", "last_loyal", "last_ready",
               "last_accepting", "first_run", "last_run", "cursed", "zerg",
               "on_demand", "uid", "gid", "monitor", "respawns"}
CONFIG_FLAGS = (b"--ini", b"--json", b"--yaml", b"--xml")
APP = textwrap.dedent('''\
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"vassal says hi"]
''')


def small_vassal(directory, name, port, **extra):
    """A one-worker vassal serving uwsgi on `port`."""
    (directory / "app.py").write_text(APP)
    pairs = [("master", "true"), ("processes", "1"),
             ("socket", f"127.0.0.1:{port}"), ("chdir", "%d"),
             ("wsgi-file", "app.py"), *extra.items()]
    return write_ini(directory / name, uwsgi=pairs)


def serving(port):
    try:
        return b"vassal says hi" in uwsgi_request(port)
    except OSError:
        return False


def masters_by_name(emperor_pid):
    """{vassal file name: pid} of the Emperor's children."""
    found = {}
    for pid in children_of(emperor_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        flag = next(a for a in argv if a in CONFIG_FLAGS)
        found[argv[argv.index(flag) + 1].decode()] = pid
    return found


def gone(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]
    except OSError:
        return True
    return state.split()[0] == "Z"


def test_fifty_vassals_start_stop_and_reload_alone(procs, tmp_path):
    court = tmp_path / "court"
    court.mkdir()
    ports = {f"v{i:02d}.ini": free_port() for i in range(50)}
    for name, port in ports.items():
        small_vassal(court, name, port)
    started = time.monotonic()
    emperor = procs.ugu("--emperor", "court/*.ini", cwd=tmp_path)
    for port in ports.values():
        wait_until(lambda: serving(port), 60, what=f"port {port}")
    print(f"\n50 vassals serving after {time.monotonic() - started:.2f} s")
    masters = wait_until(lambda: len(m := masters_by_name(emperor.pid)) == 50
                         and m, 30, what="50 vassal masters")
    doomed = sorted(ports)[::2]
    began = time.monotonic()
    for name in doomed:
        (court / name).unlink()
    doomed_pids = [masters[f"court/{n}"] for n in doomed]
    # The time is printed; the bound only catches a hang, since a loaded
    # machine (the rest of the suite beside) may take seconds.
    wait_until(lambda: all(gone(p) for p in doomed_pids), 15,
               what="the 25 removed vassals to stop")
    print(f"25 removed vassals stopped in {time.monotonic() - began:.2f} s")
    kept = [n for n in ports if n not in doomed]
    assert all(not gone(masters[f"court/{n}"]) for n in kept)
    # Each answers (a loaded machine may make one slow to, not deaf).
    for name in kept:
        wait_until(lambda: serving(ports[name]), 10, what=f"{name} serving")
    touched = court / kept[0]
    later = touched.stat().st_mtime + 10
    os.utime(touched, (later, later))
    emperor.wait_for_log(rf"reload the uwsgi instance court/{kept[0]}\n")
    emperor.wait_for_log(r"gracefully \(RE\)spawned uWSGI master process "
                         rf"\(pid: {masters['court/' + kept[0]]}\)")
    wait_until(lambda: serving(ports[kept[0]]), 10, what="the reloaded one")
    assert len(re.findall(r"reload the uwsgi instance",
                          emperor.output())) == 1
    now = masters_by_name(emperor.pid)
    expected = {f"court/{n}": masters[f"court/{n}"] for n in kept}
    # What the Emperor said about any vassal that changed, to tell a fault
    # of ugu from a port taken by another process meanwhile.
    changed = {name for name in expected if now.get(name) != expected[name]}
    said = [line for line in emperor.output().splitlines()
            if any(name in line for name in changed)]
    assert now == expected, "\n".join(said)


@pytest.fixture
def tutorial(tmp_path, procs):
    """The tutorial's two vassals under a plain Emperor."""
    http_port, worker_port = free_port(), free_port()
    site = copy_examples(tmp_path / "site", http_port, worker_port)
    emperor = procs.ugu("--emperor", "*.ini", cwd=site)
    emperor.wait_for_log(r"vassal uwsgi\.ini is ready to accept requests")
    emperor.wait_for_log(r"vassal http\.ini has been spawned")
    wait_for_port(http_port)
    emperor.url = f"http://127.0.0.1:{http_port}/"
    assert requests.get(emperor.url, timeout=5).status_code == 200
    return emperor


def get_status(url):
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


def time_to_200(url, old_pids, deadline):
    """Seconds until GET `url` answers 200 from none of `old_pids`,
    polling every 10 ms."""
    began = time.monotonic()
    while not all(gone(p) for p in old_pids) or get_status(url) != 200:
        assert time.monotonic() - began < deadline, "not serving again"
        time.sleep(0.01)
    return time.monotonic() - began


@pytest.mark.parametrize("vassal", ["uwsgi.ini", "http.ini"])
def test_kill_9_of_a_vassal_master_seen_through_the_router(tutorial,
                                                           vassal):
    master = masters_by_name(tutorial.pid)[vassal]
    old = [master, *children_of(master)]
    os.kill(master, signal.SIGKILL)
    # Serving again, with a new master, well within 5 s: how soon (the
    # issue's 1 s) is the benchmark's lifecycle figure, not a timed test,
    # which a loaded machine makes fail.
    elapsed = time_to_200(tutorial.url, old, 5)
    print(f"\nkill -9 of {vassal}'s master: 200 again after "
          f"{elapsed:.3f} s")
    assert masters_by_name(tutorial.pid)[vassal] != master


def test_kill_9_of_the_emperor_leaves_no_orphan(tutorial):
    before = group_members(tutorial.pgid)
    # The emperor, two masters, a router, and the worker(s).
    assert len(before) >= 5
    tutorial.send_signal(signal.SIGKILL)
    began = time.monotonic()
    wait_until(lambda: all(gone(pid) for pid in before), 2,
               what="every vassal and worker to exit")
    print(f"\nkill -9 of the Emperor: {len(before) - 1} processes gone "
          f"after {time.monotonic() - began:.3f} s")
    assert group_members(tutorial.pgid) == []


def test_broken_vassals_are_reported_and_the_others_serve(procs,
                                                          tmp_path):
    court = tmp_path / "court"
    court.mkdir()
    good_port = free_port()
    small_vassal(court, "good.ini", good_port)
    (court / "syntax.ini").write_text("[uwsgi\nmaster = true\n")
    (court / "strict.ini").write_text("[uwsgi]\nstrict = true\nmodul = app\n"
                                      "processes = lots\n")
    small_vassal(court, "noapp.ini", free_port(), **{
        "wsgi-file": "missing.py", "need-app": "true"})
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        small_vassal(court, "busy.ini", taken.getsockname()[1])
        emperor = procs.ugu("--emperor", str(court),
                            "--emperor-throttle", "200", cwd=tmp_path)
        wait_until(lambda: serving(good_port), 20, what="good.ini")
        for name in ("syntax", "strict", "noapp", "busy"):
            emperor.wait_for_log(rf"removed uwsgi instance {name}\.ini",
                                 count=3)
            assert serving(good_port)
    log = emperor.output()
    assert "ugu: syntax.ini:1: the section header [uwsgi has no closing ']'" \
        in log
    assert re.search(r"ugu: strict\.ini:3: option 'modul': \[strict-mode\] "
                     r"unknown config directive: modul.*\n(?:.*\n)*?"
                     r"ugu: strict\.ini:4: option 'processes': 'lots' is "
                     r"not a number", log)
    assert "*** no app loaded. GAME OVER ***" in log
    assert re.search(r"getting INI configuration from noapp\.ini\n"
                     r"(.*\n)*?failed to open python file missing\.py", log)
    assert re.search(r"busy\.ini:\d+: option 'socket': cannot bind "
                     r"127\.0\.0\.1:\d+: Address already in use \(another "
                     r"process holds this address: stop it, or choose "
                     r"another one\)\n", log)
    for name in ("syntax", "strict", "noapp", "busy"):
        assert f"unloyal bad behaving vassal found: {name}.ini" in log
    assert "curse the uwsgi instance good.ini" not in log


def test_stats_pidfile_and_heartbeat_of_a_real_vassal(procs, tmp_path):
    court = tmp_path / "court"
    court.mkdir()
    port = free_port()
    small_vassal(court, "beat.ini", port, heartbeat="1")
    stats_path = tmp_path / "stats.sock"
    emperor = procs.ugu("--emperor", str(court), "--emperor-stats",
                        str(stats_path), "--emperor-pidfile",
                        str(tmp_path / "emperor.pid"),
                        "--emperor-required-heartbeat", "2", cwd=tmp_path)
    wait_until(lambda: serving(port), 20, what="the vassal")
    assert (tmp_path / "emperor.pid").read_text() == f"{emperor.pid}\n"

    def vassal_stats():
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(stats_path))
            doc = json.loads(s.makefile("rb").read())
        assert set(doc) == STATS_KEYS
        assert all(set(v) == VASSAL_KEYS for v in doc["vassals"])
        return doc["vassals"][0] if doc["vassals"] else None
    first = wait_until(lambda: (v := vassal_stats()) and
                       v["last_heartbeat"] and v, 5, what="a heartbeat")
    assert (first["id"], first["loyal"], first["respawns"]) == (
        "beat.ini", 1, 0)
    # A master that beats is left alone past the required interval...
    wait_until(lambda: vassal_stats()["last_heartbeat"]
               >= first["last_heartbeat"] + 3, 10,
               what="beats for longer than the required 2 seconds")
    assert "sent no heartbeat" not in emperor.output()
    # ...and a frozen one is respawned.
    os.kill(first["pid"], signal.SIGSTOP)
    emperor.wait_for_log(r"\[emperor\] vassal beat\.ini sent no heartbeat "
                         r"in last 2 seconds, brutally respawning it\.\.\.")
    wait_until(lambda: (v := vassal_stats()) and v["pid"] != first["pid"],
               10, what="a new vassal")
    wait_until(lambda: serving(port), 10, what="the respawned vassal")


def test_a_reloaded_vassal_is_loyal_anew_as_in_uwsgi(procs, tmp_path):
    """Each run of a vassal announces its loyalty after its first request
    and the Emperor logs it each time; the stats say when it last ran,
    written as uWSGI writes them (`"key":value`)."""
    court = tmp_path / "court"
    court.mkdir()
    port = free_port()
    ini = small_vassal(court, "a.ini", port)
    stats_path = tmp_path / "stats.sock"
    emperor = procs.ugu("--emperor", str(court), "--emperor-stats",
                        str(stats_path), cwd=tmp_path)
    loyal = r"\[emperor\] vassal a\.ini is now loyal"
    wait_until(lambda: serving(port), 20, what="the vassal")
    emperor.wait_for_log(loyal)
    [before] = json.loads(_stats(stats_path))["vassals"]
    # The stamps are whole seconds: reload in a later one than the start.
    wait_until(lambda: time.time() >= before["first_run"] + 1, 5,
               what="the next second")
    os.utime(ini, (time.time() + 5, time.time() + 5))
    emperor.wait_for_log(r"\[emperor\] reload the uwsgi instance a\.ini")
    emperor.wait_for_log(r"vassal a\.ini is ready to accept requests",
                         count=2)
    wait_until(lambda: serving(port), 20, what="the reloaded vassal")
    emperor.wait_for_log(loyal, count=2)
    raw = _stats(stats_path)
    assert b'"loyal":1,' in raw
    [vassal] = json.loads(raw)["vassals"]
    assert vassal["respawns"] == 1
    assert vassal["first_run"] == before["first_run"]
    assert vassal["last_run"] > vassal["first_run"]


def _stats(path):
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        return s.makefile("rb").read()


def test_the_emperor_stats_heed_stats_http_and_minified(procs, tmp_path):
    """As uWSGI's Emperor: an HTTP request is answered with a head, and
    the document is written without newlines."""
    court = tmp_path / "court"
    court.mkdir()
    stats_path = tmp_path / "stats.sock"
    emperor = procs.ugu("--emperor", str(court), "--emperor-stats",
                        str(stats_path), "--stats-minified", "--stats-http",
                        cwd=tmp_path)
    emperor.wait_for_log(r"\*\*\* Emperor stats server enabled")
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(stats_path))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        answer = s.makefile("rb").read()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"HTTP/1.0 200 OK", b"Connection: close",
        b"Access-Control-Allow-Origin: *", b"Content-Type: application/json"]
    assert b"\n" not in body
    assert set(json.loads(body)) == STATS_KEYS


def test_templates_and_other_formats_reach_real_vassals(procs, tmp_path):
    """`vassals-inherit`/`vassals-include` override the vassal's own
    scalars (uWSGI observed: a template's processes=3 beats the vassal's
    1); a .json vassal is run with --json."""
    court = tmp_path / "court"
    court.mkdir()
    ini_port, json_port = free_port(), free_port()
    small_vassal(court, "a.ini", ini_port)
    (court / "b.json").write_text(json.dumps({"uwsgi": {
        "master": True, "processes": 1, "socket": f"127.0.0.1:{json_port}",
        "chdir": "%d", "wsgi-file": "app.py"}}))
    write_ini(tmp_path / "inherit.ini", uwsgi=[("processes", "3")])
    write_ini(tmp_path / "include.ini", uwsgi=[("threads", "2")])
    emperor = procs.ugu("--emperor", str(court), "--vassals-inherit",
                        str(tmp_path / "inherit.ini"), "--vassals-include",
                        str(tmp_path / "include.ini"), cwd=tmp_path)
    for port in (ini_port, json_port):
        wait_until(lambda: serving(port), 20, what=f"port {port}")
    masters = masters_by_name(emperor.pid)
    assert set(masters) == {"a.ini", "b.json"}
    for master in masters.values():
        wait_until(lambda: len(children_of(master)) == 3, 10,
                   what="3 workers")
    # A worker can exist before its master's line about it is read.
    spawned = r"spawned uWSGI worker \d \(pid: \d+, cores: 2\)"
    emperor.wait_for_log(spawned, count=6)
    assert len(re.findall(spawned, emperor.output())) == 6
