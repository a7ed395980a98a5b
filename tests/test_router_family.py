"""The HTTP router's options that its corerouter siblings share in uWSGI:
several router processes (http-processes), their subscriptions passed
between them, the router's stats server (http-stats), and the node
mappers (http-use-base, http-use-pattern, http-use-socket).

Real routers (ugu's and the real uWSGI's, where cheap) route real
requests to real workers; their log lines and answers are compared.
"""

import json
import os
import re
import signal
import socket
import textwrap
import time

import pytest
import requests

from tests import support
from tests.test_subscriptions import free_udp_port, send
from ugu import subscription
from ugu.subscription import SUBSCRIBE, Announce

APP = textwrap.dedent('''
    import os

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%s %s" % (environ.get("HTTP_HOST", "-").encode(),
                            environ.get("SERVER_NAME", "-").encode())]
''')


@pytest.fixture
def app(tmp_path):
    path = tmp_path / "app.py"
    path.write_text(APP)
    return path


def _get(port, host="a.example", path="/"):
    return requests.get(f"http://127.0.0.1:{port}{path}",
                        headers={"Host": host, "Connection": "close"},
                        timeout=10)


def _stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        return json.loads(support.read_to_eof(s))


# http-processes

@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_processes_share_the_socket_and_the_subscriptions(start_server,
                                                          app, server):
    front, udp = support.free_port(), free_udp_port()
    router = start_server(server, [
        "--master", "--http", f"127.0.0.1:{front}", "--http-workers", "3",
        "--http-subscription-server", f"127.0.0.1:{udp}"])
    for index in (1, 2, 3):
        router.wait_for_log(rf"spawned uWSGI http {index} \(pid: \d+\)")
    support.wait_for_port(front)
    back = support.free_port()
    start_server(server, [
        "--master", "--socket", f"127.0.0.1:{back}", "--wsgi-file",
        str(app), "--subscribe-to", f"127.0.0.1:{udp}:a.example"])
    # The one process the kernel gave the announce to passed it on.
    router.wait_for_log(r"a.example => new node: ", count=3)
    lines = re.findall(r"\[uwsgi-subscription for pid (\d+)\] a.example "
                       r"=> new node: 127.0.0.1:(\d+)", router.output())
    assert sorted(port for _, port in lines) == [str(back)] * 3
    assert len({pid for pid, _ in lines}) == 3
    # Each new connection may land on any process: every one knows.
    for _ in range(12):
        reply = _get(front)
        assert reply.status_code == 200 and \
            reply.text.startswith("a.example ")
    router.stop()
    for index in (1, 2, 3):
        assert re.search(rf'gateway "uWSGI http {index}" has been buried',
                         router.output())


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_reload_buries_the_routers_before_it_tells_the_workers(
        start_server, app, server):
    front, back = support.free_port(), support.free_port()
    instance = start_server(server, [
        "--master", "--http", f"127.0.0.1:{front}", "--http-processes",
        "2", "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app)])
    instance.wait_for_log(r"spawned uWSGI worker 1 ")
    instance.wait_for_log(r"spawned uWSGI http 2 ")
    instance.send_signal(signal.SIGHUP)
    instance.wait_for_log(r"\.\.\.gracefully killing workers\.\.\.")
    assert re.search(r'gateway "uWSGI http 1" has been buried \(pid: \d+\)\n'
                     r'gateway "uWSGI http 2" has been buried \(pid: \d+\)\n'
                     r"\.\.\.gracefully killing workers\.\.\.\n",
                     instance.output())


def test_processes_are_respawned_and_refused_below_one(procs, app):
    front, back = support.free_port(), support.free_port()
    router = procs.ugu("--master", "--http", f"127.0.0.1:{front}",
                       "--http-processes", "2", "--socket",
                       f"127.0.0.1:{back}", "--wsgi-file", str(app))
    router.wait_for_log(r"spawned uWSGI http 2 \(pid: (\d+)\)")
    pid = int(re.search(r"spawned uWSGI http 2 \(pid: (\d+)\)",
                        router.output()).group(1))
    support.wait_for_port(front)
    os.kill(pid, signal.SIGKILL)
    router.wait_for_log(r"respawned uWSGI http 2 \(pid: \d+\)")
    assert _get(front).status_code == 200
    bad = procs.ugu("--master", "--http", f"127.0.0.1:{support.free_port()}",
                    "--http-processes", "0", "--socket",
                    f"127.0.0.1:{support.free_port()}", "--wsgi-file",
                    str(app))
    assert bad.wait() != 0
    assert "http-processes" in bad.output() and \
        "write 1 or more" in bad.output()


def test_a_full_inbox_is_said_once_not_per_announce(procs):
    """A router process that reads nothing for a while (stopped here)
    has its inbox fill; its peers used to log a line for every announce
    they could not pass on, and a flood of announces to the
    subscription server, which vassals must reach, flooded the log."""
    front, udp = support.free_port(), free_udp_port()
    router = procs.ugu("--master", "--http", f"127.0.0.1:{front}",
                       "--http-processes", "2",
                       "--http-subscription-server", f"127.0.0.1:{udp}")
    router.wait_for_log(r"spawned uWSGI http 2 \(pid: (\d+)\)")
    pid = int(re.search(r"spawned uWSGI http 2 \(pid: (\d+)\)",
                        router.output()).group(1))
    support.wait_for_port(front)
    # Both processes read announces before one is stopped.
    send(udp, Announce(SUBSCRIBE, b"early.example", b"127.0.0.1:2998"))
    router.wait_for_log(r"early.example => new node", count=2)
    os.kill(pid, signal.SIGSTOP)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            # Paced, so that process 1 reads them rather than the
            # kernel drop them: more than the inbox of process 2 holds.
            for i in range(4000):
                s.sendto(subscription.encode(Announce(
                    SUBSCRIBE, b"k%d.example" % (i % 50),
                    b"127.0.0.1:%d" % (2000 + i % 7))), ("127.0.0.1", udp))
                if i % 100 == 99:
                    time.sleep(0.01)
        router.wait_for_log(r"cannot pass a subscription to another "
                            r"process: Resource temporarily unavailable")
    finally:
        os.kill(pid, signal.SIGCONT)
    # Both pass announces on again (sent till both have it, as a vassal
    # announces every few seconds: the flood may still fill the
    # server's queue, which then drops one).
    def both_know_late():
        send(udp, Announce(SUBSCRIBE, b"late.example", b"127.0.0.1:2999"))
        return len(set(re.findall(r"pid (\d+)\] late.example => new node",
                                  router.output()))) == 2
    support.wait_until(both_know_late, interval=0.3, what="late.example")
    assert router.output().count("cannot pass a subscription") == 1
    assert "unavailable (said once until one passes)" in router.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_fastrouter_processes_pass_subscriptions_on(start_server, server):
    front, udp = support.free_port(), free_udp_port()
    router = start_server(server, [
        "--master", "--fastrouter", f"127.0.0.1:{front}",
        "--fastrouter-processes", "2",
        "--fastrouter-subscription-server", f"127.0.0.1:{udp}"])
    router.wait_for_log(r"spawned uWSGI fastrouter 2 \(pid")
    support.wait_for_port(front)
    send(udp, Announce(SUBSCRIBE, b"b.example", b"127.0.0.1:9"))
    router.wait_for_log(r"b.example => new node: 127.0.0.1:9", count=2)
    pids = re.findall(r"\[uwsgi-subscription for pid (\d+)\] b.example "
                      r"=> new node", router.output())
    assert len(set(pids)) == 2


# http-stats

@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_stats_server_lists_sockets_nodes_and_sessions(start_server, app,
                                                       server):
    front, stats, back = (support.free_port() for _ in range(3))
    dead = support.free_port()
    router = start_server(server, [
        "--master", "--http", f"127.0.0.1:{front}",
        "--http-stats-server", f"127.0.0.1:{stats}",
        "--http-to", f"127.0.0.1:{dead}", "--http-to", f"127.0.0.1:{back}",
        "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app)])
    router.wait_for_log(rf"\*\*\* http stats server enabled on "
                        rf"127.0.0.1:{stats} fd: \d+ \*\*\*")
    support.wait_for_port(front)
    support.wait_for_port(stats)
    for _ in range(2):
        assert _get(front).status_code == 200
    with socket.create_connection(("127.0.0.1", front), timeout=10) as s:
        # A head begun: a session open in the process that took it.
        s.sendall(b"GET / HTTP/1.1\r\n")
        doc = support.wait_until(
            lambda: (d := _stats(stats))["active_sessions"] and d,
            timeout=10)
    assert list(doc) == ["version", "pid", "uid", "gid", "cwd",
                         "active_sessions", "http", "static_nodes", "cheap"]
    assert doc["http"] == [f"127.0.0.1:{front}"]
    assert doc["active_sessions"] == 1 and doc["cheap"] == 0
    assert [n["name"] for n in doc["static_nodes"]] == [
        f"127.0.0.1:{dead}", f"127.0.0.1:{back}"]
    assert all(set(n) == {"name", "hits", "grace"}
               for n in doc["static_nodes"])
    assert doc["static_nodes"][0]["hits"] == 0


# The node mappers: http-use-pattern, http-use-base, http-use-socket;
# and http-server-name-as-http-host.

@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_use_pattern_maps_the_host_to_a_socket(start_server, app, server,
                                               tmp_path):
    front = support.free_port()
    router = start_server(server, [
        "--master", "--http", f"127.0.0.1:{front}",
        "--http-use-pattern", f"{tmp_path}/%s.sock",
        "--http-server-name-as-http-host=1",
        "--socket", f"{tmp_path}/a.example.sock", "--wsgi-file", str(app)])
    router.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    reply = _get(front, "a.example")
    assert (reply.status_code, reply.text) == (200, "a.example a.example")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_server_name_as_http_host_takes_hosts_place(start_server, server,
                                                    tmp_path):
    app = tmp_path / "order.py"
    app.write_text(textwrap.dedent('''
        def application(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            names = [k for k in environ if k.isupper()
                     and (not k.startswith("UWSGI_") or k == "UWSGI_ROUTER")]
            return [" ".join(names).encode(), b"|",
                    environ.get("SERVER_NAME", "-").encode()]
    '''))
    front, back = support.free_port(), support.free_port()
    router = start_server(server, [
        "--master", "--http", f"127.0.0.1:{front}",
        "--http-server-name-as-http-host=true",
        "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app)])
    router.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    names, name = _get(front, "h.example").text.split("|")
    assert name == "h.example"
    names = names.split()
    # Once, where the Host header is, as uWSGI's router puts it.
    assert names.count("SERVER_NAME") == 1
    assert names[names.index("SERVER_NAME") + 1] == "HTTP_HOST"
    assert names.index("SERVER_NAME") > names.index("REMOTE_PORT")
    raw = support.http10_get(front)
    assert raw.endswith(b"|-")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_use_socket_picks_the_instances_socket(start_server, app, server):
    front, http, back = (support.free_port() for _ in range(3))
    router = start_server(server, [
        "--master", "--http", f"127.0.0.1:{front}", "--http-use-socket=1",
        "--http-socket", f"127.0.0.1:{http}",
        "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app)])
    router.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    reply = _get(front, "s.example")
    assert (reply.status_code, reply.text) == (200, "s.example " +
                                               socket.gethostname())


def test_a_hosts_node_named_by_a_name_is_looked_up_once(procs, app):
    """A pattern that makes a host name of the Host (uWSGI's router
    takes only numbers there, and leaves the client waiting): the name is
    looked up at its first request, by the greenlet code, then kept; one
    that is no name gets 502 and the connect's line."""
    front, back = support.free_port(), support.free_port()
    router = procs.ugu("--master", "--http", f"127.0.0.1:{front}",
                       "--http-use-pattern", f"%s:{back}",
                       "--socket", f"127.0.0.1:{back}", "--wsgi-file",
                       str(app))
    router.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    for _ in range(2):
        reply = _get(front, "localhost")
        assert reply.status_code == 200
        assert reply.text.startswith("localhost ")
    assert _get(front, "nosuch.invalid").status_code == 502
    router.wait_for_log(r'\[uwsgi-http\] unable to connect\(\) to node '
                        rf'"nosuch.invalid:{back}" \(0 retries\): ')


def test_the_loop_leaves_a_names_lookup_to_a_greenlet():
    """The fast path runs in the loop's callbacks, where a lookup would
    hold up every connection of the router: a node that is a name not
    looked up yet is left to the greenlet code (NameToLookUp), and only
    a node looked up goes on in the loop."""
    from ugu.http import plain
    from ugu.http.vars import RequestVars
    from ugu.options.resolve import resolve
    from ugu.router.backends import NameToLookUp, Node
    from ugu.router.mapped import MappedNodes
    from ugu.router.settings import Settings

    with socket.create_server(("127.0.0.1", 0)) as backend:
        port = backend.getsockname()[1]
        settings = Settings.from_config(
            resolve(["--http-use-pattern", f"%s:{port}"], {}))
        nodes = MappedNodes(settings)

        def head(host):
            return RequestVars(plain.parse_request(
                b"GET / HTTP/1.1\r\nHost: " + host))
        with pytest.raises(NameToLookUp):
            nodes.start_connect(head(b"localhost"))
        nodes.connect(head(b"localhost"))[1].close()
        for host in (b"localhost", b"127.0.0.1"):
            nodes.start_connect(head(host))[1].close()
    unknown = Node(("nosuch.invalid", 1))
    with pytest.raises(NameToLookUp):
        unknown.start_connect_in_loop()


def test_a_host_out_of_the_base_or_without_a_node(procs, app, tmp_path):
    front = support.free_port()
    (tmp_path / "sub").mkdir()
    router = procs.ugu("--master", "--http", f"127.0.0.1:{front}",
                       "--http-use-base", f"{tmp_path}/sub/",
                       "--socket", f"{tmp_path}/sub/ok", "--socket",
                       f"{tmp_path}/secret", "--wsgi-file", str(app))
    router.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    assert _get(front, "ok").status_code == 200
    # uWSGI's would reach the socket beside the folder.
    assert _get(front, "../secret").status_code == 404
    assert _get(front, "gone").status_code == 502
    router.wait_for_log(rf'\[uwsgi-http\] unable to connect\(\) to node '
                        rf'"{tmp_path}/sub/gone" \(0 retries\): No such '
                        rf'file or directory')


def test_quiet_and_gracetime(procs, app):
    front, back, dead = (support.free_port() for _ in range(3))
    router = procs.ugu("--master", "--http", f"127.0.0.1:{front}",
                       "--http-to", f"127.0.0.1:{dead}",
                       "--http-to", f"127.0.0.1:{back}", "--http-quiet",
                       "--http-gracetime", "40",
                       "--socket", f"127.0.0.1:{back}", "--wsgi-file",
                       str(app))
    router.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    for _ in range(4):
        assert _get(front).status_code == 200
    router.wait_for_log(rf"marking 127.0.0.1:{dead} as failed")
    assert "unable to connect()" not in router.output()
    # Left aside for its 40 seconds: one failure, one marking.
    assert router.output().count("as failed") == 1


@pytest.mark.parametrize("args, option", [
    (["--http-to", "127.0.0.1:1", "--http-use-base", "/x/"],
     "http-use-base"),
    (["--http-use-pattern", "/x/%s", "--http-use-socket=0"],
     "http-use-socket"),
    (["--http-use-socket=3"], "http-use-socket"),
])
def test_mappers_refused_together_or_out_of_range(procs, app, args, option):
    bad = procs.ugu("--master", "--http", f"127.0.0.1:{support.free_port()}",
                    *args, "--socket", f"127.0.0.1:{support.free_port()}",
                    "--wsgi-file", str(app))
    assert bad.wait() != 0
    assert option in bad.output()


# http-uid, http-gid (and the corerouters')

@pytest.mark.skipif(os.getuid() != 0, reason="dropping ids takes root")
@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_router_processes_drop_to_their_ids(start_server, app, server):
    front, back, fast = (support.free_port() for _ in range(3))
    router = start_server(server, [
        "--master", "--http", f"127.0.0.1:{front}",
        "--http-uid", "65534", "--http-gid", "nogroup",
        "--fastrouter", f"127.0.0.1:{fast}", "--fastrouter-to",
        f"127.0.0.1:{back}", "--fastrouter-uid", "nobody",
        "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app)])
    router.wait_for_log(r"uWSGI http 1 setuid\(\) to 65534")
    router.wait_for_log(r"uWSGI fastrouter 1 setuid\(\) to 65534")
    assert "uWSGI http 1 setgid() to 65534" in router.output()
    assert "uWSGI fastrouter 1 setgid()" not in router.output()
    support.wait_for_port(front)
    assert _get(front).status_code == 200
    for name in ("http", "fastrouter"):
        pid = int(re.search(rf"spawned uWSGI {name} 1 \(pid: (\d+)\)",
                            router.output()).group(1))
        with open(f"/proc/{pid}/status") as status:
            ids = dict(line.split(":", 1) for line in status)
        assert ids["Uid"].split()[0] == "65534"
        assert ids["Gid"].split()[0] == ("65534" if name == "http" else "0")


def test_an_unknown_router_user_stops_the_start(procs, app):
    bad = procs.ugu("--master", "--http", f"127.0.0.1:{support.free_port()}",
                    "--http-uid", "no-such-user-here",
                    "--socket", f"127.0.0.1:{support.free_port()}",
                    "--wsgi-file", str(app))
    assert bad.wait() != 0
    assert "unknown" in bad.output() and "http-uid" in bad.output()


# http-resubscribe, fastrouter-resubscribe

@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("router", ["http", "fastrouter"])
def test_announces_are_passed_on_for_the_routers_address(start_server,
                                                         server, router):
    front, udp = support.free_port(), free_udp_port()
    upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    upstream.bind(("127.0.0.1", 0))
    upstream.settimeout(10)
    with upstream:
        up = upstream.getsockname()[1]
        proc = start_server(server, [
            "--master", f"--{router}", f"127.0.0.1:{front}",
            f"--{router}-subscription-server", f"127.0.0.1:{udp}",
            f"--{router}-resubscribe", f"127.0.0.1:{up}"])
        proc.wait_for_log(rf"subscription server bound on 127.0.0.1:{udp}")
        support.wait_for_port(front)
        send(udp, Announce(SUBSCRIBE, b"c.example", b"127.0.0.1:9", 5))
        got = subscription.decode(upstream.recv(4096))
    assert (got.command, got.key, got.address, got.modifier1) == (
        SUBSCRIBE, b"c.example", b"127.0.0.1:%d" % front, 5)


def test_resubscribe_without_a_subscription_server_is_refused(procs):
    bad = procs.ugu("--master", "--http", f"127.0.0.1:{support.free_port()}",
                    "--http-resubscribe", "127.0.0.1:9", "--http-to",
                    "127.0.0.1:9")
    assert bad.wait() != 0
    assert "http-resubscribe" in bad.output() and \
        "http-subscription-server" in bad.output()


# http-fallback

@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_fallback_takes_what_the_node_refused(start_server, app, server):
    front, back, dead = (support.free_port() for _ in range(3))
    router = start_server(server, [
        "--master", "--http", f"127.0.0.1:{front}",
        "--http-to", f"127.0.0.1:{dead}",
        "--http-fallback", f"127.0.0.1:{support.free_port()}",
        "--http-fallback", f"127.0.0.1:{back}",
        "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app)])
    router.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    reply = _get(front, "f.example")
    assert (reply.status_code, reply.text.split()[0]) == (200, "f.example")
    router.wait_for_log(rf"marking 127.0.0.1:{dead} as failed")


def test_fallback_takes_a_host_without_a_node(procs, app):
    front, udp, back = support.free_port(), free_udp_port(), \
        support.free_port()
    router = procs.ugu("--master", "--http", f"127.0.0.1:{front}",
                       "--http-subscription-server", f"127.0.0.1:{udp}",
                       "--http-fallback", f"127.0.0.1:{back}",
                       "--socket", f"127.0.0.1:{back}", "--wsgi-file",
                       str(app))
    router.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    reply = _get(front, "nobody.example")
    assert (reply.status_code, reply.text.split()[0]) == (
        200, "nobody.example")


@pytest.mark.parametrize("option, words", [
    ("http-use-code-string", "http-use-pattern"),
])
def test_the_options_left_are_refused_with_a_way(procs, option, words):
    bad = procs.ugu("--master", "--http", f"127.0.0.1:{support.free_port()}",
                    "--http-to", "127.0.0.1:9", f"--{option}=1")
    assert bad.wait() != 0
    assert option in bad.output() and words in bad.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_fastrouter_use_socket_passes_to_the_instances_socket(
        start_server, app, server):
    front, first, second = (support.free_port() for _ in range(3))
    router = start_server(server, [
        "--master", "--fastrouter", f"127.0.0.1:{front}",
        "--fastrouter-use-socket=1", "--http-socket", f"127.0.0.1:{first}",
        "--socket", f"127.0.0.1:{second}", "--wsgi-file", str(app)])
    router.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    raw = support.uwsgi_request(front, headers=[("Host", "u.example")])
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"u.example test")


@pytest.mark.parametrize("router", ["http", "fastrouter"])
def test_a_stuck_router_process_is_killed_by_its_harakiri(procs, router):
    """PREFIX-harakiri: the master SIGKILLs a router process whose loop
    has not turned for that many seconds (here: stopped), in uWSGI's
    words, and respawns it; an idle router's loop turns, and is left
    alone."""
    front = support.free_port()
    gateway = "uWSGI http" if router == "http" else "uWSGI fastrouter"
    proc = procs.ugu("--master", f"--{router}", f"127.0.0.1:{front}",
                     f"--{router}-to", "127.0.0.1:9",
                     f"--{router}-harakiri", "1")
    proc.wait_for_log(rf"spawned {gateway} 1 \(pid: (\d+)\)")
    pid = int(re.search(rf"spawned {gateway} 1 \(pid: (\d+)\)",
                        proc.output()).group(1))
    support.wait_for_port(front)
    time.sleep(2.5)
    assert "HARAKIRI" not in proc.output()
    os.kill(pid, signal.SIGSTOP)
    proc.wait_for_log(rf"\*\*\* HARAKIRI ON GATEWAY {gateway} 1 \(pid: "
                      rf"{pid}\) \*\*\*")
    proc.wait_for_log(rf"respawned {gateway} 1 \(pid: (?!{pid}\))\d+\)")
    support.wait_for_port(front)


def test_router_harakiri_without_master_is_said_to_do_nothing(procs):
    front = support.free_port()
    proc = procs.ugu("--http", f"127.0.0.1:{front}", "--http-to",
                     "127.0.0.1:9", "--http-harakiri", "3")
    proc.wait_for_log("option 'http-harakiri': does nothing without "
                      "`master = true`")
    proc.stop()
