"""The route actions over the caches, metrics and RPC functions
(router_cache, router_metrics, rpc), and the cache options behind them
(lastmod, load-file-in-cache-gzip): each test runs the same INI file on
ugu and on the real uWSGI and checks what uWSGI 2.0 answers."""

import gzip
import json
import socket
import textwrap
import time

import pytest

from tests.support import free_port, wait_for_port, wait_until, write_ini
from tests.test_stats import read_stats

APP = textwrap.dedent('''\
    import uwsgi


    def hello(*args):
        return b"hi " + b"+".join(args)


    def raw(*args):
        return (b"HTTP/1.1 202 Accepted\\r\\nX-A: b\\r\\n"
                b"Content-Type: text/x\\r\\n\\r\\nrawbody")


    def ret(*args):
        return b" ".join(args)


    for name, function in (("hello", hello), ("raw", raw), ("ret", ret)):
        uwsgi.register_rpc(name, function)


    def application(environ, start_response):
        body = "app:{} v={}".format(environ["PATH_INFO"],
                                    environ.get("MYVAR", "-")).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
''')


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param


def start(start_server, tmp_path, server, *pairs):
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("master", "true"),
        ("processes", "1"), ("wsgi-file", "app.py"), *pairs])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    wait_for_port(port)
    return p, port


def fetch(port, path):
    """(status, headers, body) of an HTTP/1.0 GET, read to the close;
    without the protocol, which uWSGI answers with the request's and
    ugu with 1.1, nor the Connection header ugu adds then."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        raw = s.makefile("rb").read()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return (lines[0].partition(" ")[2],
            [h for h in lines[1:] if h != "Connection: close"], body)


CACHE = [
    ("cache2", "name=c1,items=10,blocksize=1000"),
    ("add-cache-item", "c1 /hit.js=hello"),
    ("add-cache-item", "c1 present=1"),
    ("route", "^/hit cache:key=${PATH_INFO},name=c1,mime=1"),
    ("route", "^/ct cache:key=/hit.js,name=c1,content_type=application/x,"
              "content_encoding=gzip,no_cl=1"),
    ("route", "^/set cacheset:key=k${PATH_INFO},value=V$1,name=c1,"
              "expires=100"),
    ("route", "^/getk cache:key=k/set,name=c1"),
    ("route", "^/inc cacheinc:key=counter,name=c1"),
    ("route", "^/inc cacheinc:key=counter,name=c1,value=4"),
    ("route", "^/var cachevar:key=/hit.js,name=c1,var=MYVAR"),
    ("route", "^/store cachestore:key=stored${PATH_INFO},name=c1,"
              "gzip=gz${PATH_INFO},expires=50"),
    ("route", "^/fromstore cache:key=stored/store,name=c1"),
    ("route", "^/gzfromstore cache:key=gz/store,name=c1,"
              "content_encoding=gzip"),
    ("route-if", "incache:key=present,name=c1 addheader:X-In: yes"),
    ("route-if-not", "incache:key=${PATH_INFO},name=c1 addheader:X-Out: 1"),
]


def test_cache_actions(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server, *CACHE)
    # An item: uWSGI's head (text/html without mime types read).
    assert fetch(port, "/hit.js") == (
        "200 OK", ["Content-Type: text/html",
                            "Content-Length: 5"], b"hello")
    assert fetch(port, "/ct") == (
        "200 OK", ["Content-Type: application/x",
                            "Content-Encoding: gzip"], b"hello")
    # No item: the rules go on, and the app answers.
    status, headers, body = fetch(port, "/hit.css")
    assert body == b"app:/hit.css v=-"
    assert "X-In: yes" in headers and "X-Out: 1" in headers
    # cacheset, then the item with its expiry.
    assert fetch(port, "/set")[2] == b"app:/set v=-"
    before = time.time()
    status, headers, body = fetch(port, "/getk")
    assert body == b"V" and headers[0] == "Content-Type: text/html"
    expires = [h for h in headers if h.startswith("Expires: ")]
    assert len(expires) == 1
    when = time.mktime(time.strptime(expires[0][9:],
                                     "%a, %d %b %Y %H:%M:%S GMT"))
    assert 90 <= when - time.mktime(time.gmtime(before)) <= 101
    assert fetch(port, "/var")[2] == b"app:/var v=hello"
    # cacheinc twice a request: 1, then 4 more.
    fetch(port, "/inc")
    fetch(port, "/inc")
    # cachestore: the body, and its gzipped copy, once sent.
    assert fetch(port, "/store")[2] == b"app:/store v=-"
    status, headers, body = fetch(port, "/fromstore")
    assert body == b"app:/store v=-" and len(headers) == 3
    status, headers, body = fetch(port, "/gzfromstore")
    assert "Content-Encoding: gzip" in headers
    assert gzip.decompress(body) == b"app:/store v=-"
    p.wait_for_log(r"GET /gzfromstore => generated \d+ bytes in \d+ msecs "
                   r"\(HTTP/1.0 200\) \d headers")
    assert "app: -1|req: -1/" in p.output()


METRICS = [
    ("enable-metrics", "true"), ("metric", "name=mymetric"),
    ("route", "^/minc metricinc:mymetric"),
    ("route", "^/minc metricinc:mymetric,5"),
    ("route", "^/mmul metricmul:mymetric,3"),
    ("route", "^/mdiv metricdiv:mymetric,7"),
    ("route", "^/mnone metricinc:nosuch"),
    ("route", "^/m addheader:X-M: ${metric[mymetric]}"),
]


def test_metric_actions(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server, *METRICS)
    assert "X-M: 6" in fetch(port, "/minc")[1]
    assert "X-M: 18" in fetch(port, "/mmul")[1]
    assert "X-M: 2" in fetch(port, "/mdiv")[1]
    # No such metric: the request ends unanswered.
    assert fetch(port, "/mnone") == ("", [], b"")


RPC = [
    ("route", "^/rpc rpc:hello a b"),
    ("route", "^/call call:hello ${PATH_INFO}"),
    ("route", "^/none rpc:nosuch"),
    ("route", "^/raw rpcraw:raw"),
    ("route", "^/var rpcvar:MYVAR hello x"),
    ("route", "^/retnext rpcret:ret next"),
    ("route", "^/retbreak rpcret:ret break 404"),
    ("route", "^/retgoto rpcret:ret goto lab"),
    ("route", "^/retgoto addheader:X-Skipped: 1"),
    ("route-label", "lab"),
    ("route", "^/retgoto addheader:X-After: 1"),
]


def test_rpc_actions(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server, *RPC)
    assert fetch(port, "/rpc") == ("200 OK", ["Content-Length: 6"], b"hi a+b")
    assert fetch(port, "/call")[2] == b"hi /call"
    assert fetch(port, "/none") == ("", [], b"")
    status, headers, body = fetch(port, "/raw")
    assert status == "202 Accepted" and body == b"rawbody"
    assert headers[:2] == ["X-A: b", "Content-Type: text/x"]
    assert fetch(port, "/var")[2] == b"app:/var v=hi x"
    assert fetch(port, "/retnext")[2] == b"app:/retnext v=-"
    assert fetch(port, "/retbreak") == (
        "404 Not Found", ["Content-Type: text/plain"],
        b"")
    status, headers, body = fetch(port, "/retgoto")
    assert "X-After: 1" in headers and "X-Skipped: 1" not in headers


def test_lastmod_and_gzip_files(start_server, tmp_path, server):
    stats = free_port()
    (tmp_path / "data.txt").write_bytes(b"some data " * 20)
    p, port = start(
        start_server, tmp_path, server, ("stats", f"127.0.0.1:{stats}"),
        ("cache2", "name=c0,items=10,blocksize=1000,lastmod=1"),
        ("cache2", "name=c1,items=10,blocksize=1000"),
        ("load-file-in-cache-gzip", "c1 data.txt"),
        ("add-cache-item", "c0 a=b"),
        ("route", "^/gz cache:key=data.txt,name=c1,content_encoding=gzip"))
    p.wait_for_log(r'\[cache-gzip\] stored "data.txt" in "c1"')
    assert gzip.decompress(fetch(port, "/gz")[2]) == b"some data " * 20
    def caches():
        document = json.loads(read_stats(stats))
        return {c["name"]: c["last_modified_at"] for c in document["caches"]}
    wait_until(lambda: read_stats(stats))
    found = caches()
    assert found["c1"] == 0
    assert abs(found["c0"] - time.time()) < 30
