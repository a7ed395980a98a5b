"""The cache (cache2 and the legacy cache): what the uwsgi module's
cache functions answer, shared by the workers, swept when expired, kept
in a store across restarts; each test run on ugu and on the real uWSGI
with the same INI file and app."""

import http.client
import json
import os
import re
import signal
import socket
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests import support
from tests.support import (free_port, get_body as get, ugu, wait_for_port,
                           wait_until, write_ini)
from tests.test_stats import read_stats

# Evaluates each line of the request's body with the uwsgi module at
# hand: the repr of what it gives or raises, a line each.
APP = textwrap.dedent('''\
    import os
    import time

    import uwsgi


    def wait_for_keys(count):
        """The cache's keys, sorted, once it has `count` (5 s at most)."""
        for _ in range(500):
            keys = uwsgi.cache_keys()
            if len(keys) >= count:
                break
            time.sleep(0.01)
        return sorted(keys)


    def attempt(expression):
        names = {"uwsgi": uwsgi, "os": os, "wait_for_keys": wait_for_keys}
        try:
            return repr(eval(expression, names))
        except Exception as e:
            return repr(e)


    def application(environ, start_response):
        body = environ["wsgi.input"].read().decode()
        found = [attempt(line) for line in body.splitlines()]
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("X-Pid", str(os.getpid()))])
        return ["\\n".join(found).encode()]
''')


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param


def start(start_server, tmp_path, server, *pairs, processes=1):
    """The app on an http-socket of its own with `pairs` more options;
    (process, port)."""
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("master", "true"),
        ("processes", str(processes)), ("wsgi-file", "app.py"), *pairs])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    wait_for_port(port)
    return p, port


def call(port, *lines):
    """What each line (a Python expression on `uwsgi`) gave, as its
    repr, and the pid of the worker that ran them."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/", body="\n".join(lines).encode(),
                     headers={"Connection": "close"})
        response = conn.getresponse()
        return response.read().decode().split("\n"), \
            int(response.getheader("X-Pid"))
    finally:
        conn.close()


def answers(port, *lines):
    return call(port, *lines)[0]


# (call, what uWSGI 2.0 answers), in order: mycache holds 2 items (a
# cache's first slot is never used) of at most 16 bytes, filled at start
# by add-cache-item.
CALLS = [
    ('uwsgi.cache_get("foo")', "b'bar'"),
    ('uwsgi.cache_get("foo", "mycache")', "b'bar'"),
    ('uwsgi.cache_get(b"baz")', "b'qux'"),
    ('uwsgi.cache_get("baz", "other")', "b'qux'"),
    ('uwsgi.cache_set("k1", b"v1")', "None"),
    ('uwsgi.cache_update("k1", "v3")', "None"),
    ('uwsgi.cache_exists("foo")', "True"),
    ('uwsgi.cache_exists("nope")', "None"),
    ('uwsgi.cache_set("foo", b"other")', "None"),
    ('uwsgi.cache_update("foo", b"x" * 16)', "True"),
    ('uwsgi.cache_get("foo")', "b'xxxxxxxxxxxxxxxx'"),
    ('uwsgi.cache_update("foo", b"x" * 17)', "None"),
    ('uwsgi.cache_set("", b"x", 0, "other")', "None"),
    ('uwsgi.cache_set("e", b"", 0, "other")', "None"),
    ('uwsgi.cache_del("foo")', "True"),
    ('uwsgi.cache_del("foo")', "None"),
    ('uwsgi.cache_set("k\\xe9", "\\xe9")', "True"),
    ('uwsgi.cache_get("k\\xe9".encode())', "b'\\xc3\\xa9'"),
    ("uwsgi.cache_keys()", "[b'baz', b'k\\xc3\\xa9']"),
    ('uwsgi.cache_keys("other")', "[b'baz']"),
    ('uwsgi.cache_keys("nope")',
     "ValueError('no local uWSGI cache available')"),
    ('uwsgi.cache_get("baz", "nope")', "None"),
    ('uwsgi.cache_set("x", b"1", 0, "nope")', "None"),
    ('uwsgi.cache_clear("nope")', "None"),
    ('uwsgi.cache_inc("n", 5, 0, "other")', "True"),
    ('uwsgi.cache_inc("n", 1, 0, "other")', "True"),
    ('uwsgi.cache_get("n", "other")',
     "b'\\x06\\x00\\x00\\x00\\x00\\x00\\x00\\x00'"),
    ('uwsgi.cache_dec("n", 10, 0, "other")', "True"),
    ('uwsgi.cache_mul("n", 3, 0, "other")', "True"),
    ('uwsgi.cache_div("n", 5, 0, "other")', "True"),
    ('uwsgi.cache_num("n", "other")', "-2"),
    ('uwsgi.cache_div("n", 0, 0, "other")', "True"),
    ('uwsgi.cache_num("n", "other")', "0"),
    ('uwsgi.cache_set("t", b"abc", 0, "other")', "True"),
    ('uwsgi.cache_inc("t", 1, 0, "other")', "True"),
    ('uwsgi.cache_num("t", "other")', "6513250"),
    ('uwsgi.cache_num("baz", "other")', "0"),
    ('uwsgi.cache_mul("m", 3, 0, "other")', "True"),
    ('uwsgi.cache_num("m", "other")', "0"),
    ('uwsgi.cache_inc("c", 1, 0, "math")', "True"),
    ('uwsgi.cache_num("c", "math")', "101"),
    ('uwsgi.cache_set("x" * 2049, b"1", 0, "other")', "None"),
    ('uwsgi.cache_set("x" * 2048, b"1", 0, "other")', "True"),
    ('uwsgi.cache_clear("other")', "True"),
    ('uwsgi.cache_keys("other")', "[]"),
    ('uwsgi.cache_dec("dd", other="x")',
     "TypeError('cache_dec() takes no keyword arguments')"),
    ("uwsgi.cache_get(1)",
     "TypeError(\"a bytes-like object is required, not 'int'\")"),
    ('uwsgi.cache_set("a", b"1", 1.5)',
     "TypeError(\"'float' object cannot be interpreted as an integer\")"),
    ('uwsgi.cache_get("a", b"other")',
     "TypeError('cache_get() argument 2 must be str, not bytes')"),
    ('uwsgi.cache_set("a", bytearray(b"1"), 0, "other")',
     "TypeError('cache_set() argument 2 must be read-only bytes-like "
     "object, not bytearray')"),
    ("uwsgi.cache_get()",
     "TypeError('cache_get() takes at least 1 argument (0 given)')"),
    ('uwsgi.cache_clear("other", 1)',
     "TypeError('cache_clear() takes at most 1 argument (2 given)')"),
    ('uwsgi.cache_inc("q", 2 ** 63)',
     "OverflowError('Python int too large to convert to C long')"),
]
# purge_lru drops the least recently used item for a new one; bitmap
# keeps values in runs of free blocks; clear_on_full empties a full
# cache.
MORE_CALLS = [
    ('uwsgi.cache_set("a", b"1", 0, "lru")', "True"),
    ('uwsgi.cache_set("b", b"2", 0, "lru")', "True"),
    ('uwsgi.cache_get("a", "lru")', "b'1'"),
    ('uwsgi.cache_set("c", b"3", 0, "lru")', "True"),
    ('uwsgi.cache_keys("lru")', "[b'a', b'c']"),
    ('uwsgi.cache_update("a", b"5", 0, "lru")', "True"),
    ('uwsgi.cache_set("e", b"5", 0, "lru")', "True"),
    ('uwsgi.cache_keys("lru")', "[b'e', b'a']"),
    ('uwsgi.cache_set("x", b"0123456789", 0, "bm")', "True"),
    ('uwsgi.cache_set("y", b"01234567", 0, "bm")', "True"),
    ('uwsgi.cache_set("z", b"0123", 0, "bm")', "True"),
    ('uwsgi.cache_set("w", b"0", 0, "bm")', "None"),
    ('uwsgi.cache_del("y", "bm")', "True"),
    ('uwsgi.cache_set("w", b"0123456", 0, "bm")', "True"),
    ('uwsgi.cache_update("x", b"0123456789abcdef", 0, "bm")', "None"),
    ('uwsgi.cache_get("x", "bm")', "b'0123456789'"),
    ('uwsgi.cache_get("w", "bm")', "b'0123456'"),
    ('uwsgi.cache_set("big", b"0" * 33, 0, "bm")', "None"),
    ('uwsgi.cache_keys("bm")', "[b'w', b'x', b'z']"),
    ('uwsgi.cache_set("a", b"1", 0, "full")', "True"),
    ('uwsgi.cache_set("b", b"1", 0, "full")', "True"),
    ('uwsgi.cache_set("c", b"1", 0, "full")', "True"),
    ('uwsgi.cache_keys("full")', "[b'c']"),
]


def test_the_functions_answer_as_uwsgis(start_server, tmp_path, server):
    """Values as bytes, set refusing a key that is there, update
    overwriting, a full cache refusing (with uWSGI's warning), numbers,
    the optional cache name, and the errors of uWSGI's arguments."""
    p, port = start(
        start_server, tmp_path, server,
        ("cache2", "name=mycache,items=3,blocksize=16"),
        ("cache2", "name=other,items=10,blocksize=64"),
        ("cache2", "name=math,items=4,blocksize=8,math_initial=100"),
        ("add-cache-item", "mycache foo=bar"),
        ("add-cache-item", "baz=qux"))
    p.wait_for_log(
        r'\*\*\* Cache "mycache" initialized: 0MB \(key: 2136 bytes, keys: '
        r"6408 bytes, data: 48 bytes, bitmap: 0 bytes\) preallocated \*\*\*"
        r'\n\[cache\] stored "foo" in "mycache"\n\[cache\] stored "baz" in '
        r'"mycache"\n\*\*\* Cache "other" initialized: 0MB \(key: 2136 '
        r"bytes, keys: 21360 bytes, data: 640 bytes, bitmap: 0 bytes\) "
        r'preallocated \*\*\*\n\[cache\] stored "baz" in "other"\n')
    p.wait_for_log(r"spawned uWSGI worker 1 .*\n(?:.*\n)*?cache sweeper "
                   r"thread enabled\n")
    calls, expected = zip(*CALLS)
    assert answers(port, *calls) == list(expected)
    p.wait_for_log(r'\*\*\* DANGER cache "mycache" is FULL !!! \*\*\*\n',
                   count=2)


def test_lru_bitmap_and_clear_on_full(start_server, tmp_path, server):
    p, port = start(
        start_server, tmp_path, server,
        ("cache2", "name=lru,items=3,purge_lru=1"),
        ("cache2", "name=bm,items=4,blocksize=4,blocks=8,bitmap=1"),
        ("cache2", "name=full,items=3,clear_on_full=1,ignore_full=1"))
    p.wait_for_log(r'\*\*\* Cache "bm" initialized: 0MB \(key: 2136 bytes, '
                   r"keys: 8544 bytes, data: 32 bytes, bitmap: 1 bytes\) "
                   r"preallocated \*\*\*\n")
    calls, expected = zip(*MORE_CALLS)
    assert answers(port, *calls) == list(expected)
    p.wait_for_log(r'LRU item will be purged from cache "lru"\n', count=2)
    p.wait_for_log(r'\*\*\* DANGER cache "bm" is FULL !!! \*\*\*\n')
    assert 'DANGER cache "full"' not in p.output()


def test_every_worker_shares_the_cache(start_server, tmp_path, server):
    """What a worker sets, another reads: two requests at once, each
    holding its worker until the cache has the other's key too; the
    items outlive a worker killed."""
    p, port = start(start_server, tmp_path, server,
                    ("cache2", "name=shared,items=10"), processes=2)
    lines = ("uwsgi.cache_set(str(os.getpid()), b'1')", "wait_for_keys(2)")
    with ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: call(port, *lines), range(2)))
    pids = sorted(str(pid).encode() for _, pid in both)
    assert pids[0] != pids[1]
    assert [found for found, _ in both] == [["True", repr(pids)]] * 2
    os.kill(both[0][1], signal.SIGKILL)
    p.wait_for_log(r"Respawned uWSGI worker \d+ \(new pid: \d+\)")
    assert answers(port, "sorted(uwsgi.cache_keys())") == [repr(pids)]


def test_expired_items_are_swept(start_server, tmp_path, server):
    """An item set to expire is served until the master's sweep drops
    it; one without an expiry stays.  A lazy_expire cache is not swept:
    its expired item goes when it is next looked up."""
    p, port = start(start_server, tmp_path, server,
                    ("cache2", "name=short,items=10"),
                    ("cache2", "name=lazy,items=10,lazy_expire=1"),
                    ("cache-expire-freq", "1"),
                    ("cache-report-freed-items", "true"))
    assert answers(port, 'uwsgi.cache_set("gone", b"1", 1)',
                   'uwsgi.cache_set("kept", b"1")',
                   'uwsgi.cache_set("gone", b"1", 1, "lazy")',
                   'uwsgi.cache_get("gone")') == ["True"] * 3 + ["b'1'"]
    wait_until(lambda: answers(port, 'uwsgi.cache_get("gone")') == ["None"],
               timeout=6)
    p.wait_for_log(r'freed 1 items for cache "short"\n')
    assert answers(port, "uwsgi.cache_keys()", 'uwsgi.cache_keys("lazy")',
                   'uwsgi.cache_get("gone", "lazy")',
                   'uwsgi.cache_keys("lazy")') == [
        "[b'kept']", "[b'gone']", "None", "[]"]
    assert 'for cache "lazy"' not in p.output()


@pytest.mark.parametrize("first, second", [
    ("ugu", "ugu"), ("uwsgi", "ugu"), ("ugu", "uwsgi")])
def test_a_store_survives_a_restart(start_server, tmp_path, first, second):
    """store= keeps the items in a file that the next start recovers,
    ugu's and uWSGI's alike; the legacy cache's cache-store too."""
    pairs = [("cache2", "name=kept,items=10,blocksize=32,store=kept.db"),
             ("cache", "5"), ("cache-blocksize", "16"),
             ("cache-store", "default.db")]
    p, port = start(start_server, tmp_path, first, *pairs)
    p.wait_for_log(r"creating a new cache store file: kept\.db\n"
                   r"\[uwsgi-cache\] restored 0 items\n")
    assert answers(port, 'uwsgi.cache_set("a", b"one", 0, "kept")',
                   'uwsgi.cache_set("b", b"two", 0, "kept")',
                   'uwsgi.cache_del("a", "kept")',
                   'uwsgi.cache_set("c", b"three")') == ["True"] * 4
    p.stop()
    p, port = start(start_server, tmp_path, second, *pairs)
    p.wait_for_log(r"recovered cache from backing store file: kept\.db\n"
                   r"\[uwsgi-cache\] restored 1 items\n")
    assert answers(port, 'uwsgi.cache_keys("kept")', 'uwsgi.cache_get("c")',
                   'uwsgi.cache_set("d", b"four", 0, "kept")',
                   'sorted(uwsgi.cache_keys("kept"))') == [
        "[b'b']", "b'three'", "True", "[b'b', b'd']"]


def test_a_store_of_another_size_is_refused(start_server, tmp_path, server):
    (tmp_path / "kept.db").write_bytes(b"x" * 10)
    p, _ = start_or_fail(start_server, tmp_path, server,
                         ("cache2", "name=kept,items=10,store=kept.db"))
    p.wait_for_log(r"invalid cache store file\. Please remove it or fix "
                   r"cache blocksize/items to match its size")
    assert p.wait() == 1


def test_store_delete_replaces_it(start_server, tmp_path, server):
    (tmp_path / "kept.db").write_bytes(b"x" * 10)
    p, port = start(start_server, tmp_path, server,
                    ("cache2", "name=kept,items=10,store=kept.db,"
                               "store_delete=1"))
    p.wait_for_log(r"Removing invalid cache store file: kept\.db\n"
                   r"creating a new cache store file: kept\.db\n")
    assert answers(port, "uwsgi.cache_keys()") == ["[]"]


def start_or_fail(start_server, tmp_path, server, *pairs):
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("master", "true"),
        ("wsgi-file", "app.py"), *pairs])
    return start_server(server, ["--ini", str(ini)], cwd=tmp_path), port


@pytest.mark.parametrize("value, reason", [
    ("name=x,items=10,udp=127.0.0.1:9", "cache2 key 'udp': ugu's caches "
     "are local"),
    ("name=x,items=10,hash=murmur2", 'invalid cache hash for "x"'),
    ("name=x,itemz=10", "'itemz=10' is not a cache2 KEY=VALUE"),
    ("items=10", "you have to specify a cache name"),
    ("name=x", "you have to specify the maximum number of cache items"),
    ("name=x,items=10,blocks=5", 'invalid number of cache blocks for "x", '
     "must be higher than max_items \\(10\\)"),
    ("name=x,items=10,keysize=65535", 'invalid cache keysize for "x"')])
def test_what_cache2_refuses(tmp_path, value, reason):
    """A key ugu lacks, or a value uWSGI refuses: the start stops, naming
    the file and line."""
    (tmp_path / "app.py").write_text(APP)
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{free_port()}"), ("master", "true"),
        ("wsgi-file", "app.py"), ("cache2", "name=fine,items=2"),
        ("cache2", value)])
    with ugu("--ini", str(ini), cwd=tmp_path) as p:
        assert p.wait() == 1
        p.wait_for_log(rf"app\.ini:6: option 'cache2': {reason}")


def test_a_remote_cache_is_refused_where_it_is_named(procs, tmp_path):
    _, port = start(lambda _, argv, **kw: procs.ugu(*argv, **kw), tmp_path,
                    "ugu", ("cache2", "name=x,items=2"))
    assert answers(port, 'uwsgi.cache_get("k", "x@127.0.0.1:9")') == [
        "ValueError(\"cache_get(): 'x@127.0.0.1:9' names a remote cache "
        "(NAME@SERVER), and ugu's caches are local: name a cache of this "
        "instance's cache2 lines\")"]


def test_without_a_cache(start_server, tmp_path, server):
    """The functions are there, and find no cache."""
    _, port = start(start_server, tmp_path, server)
    assert answers(port, 'uwsgi.cache_set("k", b"v")',
                   'uwsgi.cache_get("k")', "uwsgi.cache_keys()") == [
        "None", "None", "ValueError('no local uWSGI cache available')"]


def test_load_file_in_cache(start_server, tmp_path, server):
    """A file stored at start-up under its path (in the cache named
    before it, or in every cache); an item without "=" said and left."""
    (tmp_path / "page.html").write_bytes(b"<p>hi</p>")
    p, port = start(start_server, tmp_path, server,
                    ("cache2", "name=files,items=4"),
                    ("cache2", "name=more,items=4"),
                    ("load-file-in-cache", "page.html"),
                    ("load-file-in-cache", "more app.py"),
                    ("add-cache-item", "other x=y"),
                    ("add-cache-item", "nothing"))
    p.wait_for_log(r'\[cache\] stored "page\.html" in "files"\n'
                   r"\[cache\] unable to store item nothing\n")
    p.wait_for_log(r'\[cache\] stored "page\.html" in "more"\n'
                   r'\[cache\] stored "app\.py" in "more"\n')
    assert answers(port, 'uwsgi.cache_get("page.html")',
                   "uwsgi.cache_keys()", 'uwsgi.cache_keys("more")') == [
        "b'<p>hi</p>'", "[b'page.html']", "[b'page.html', b'app.py']"]


def test_a_file_missing_for_the_cache_stops_the_start(tmp_path):
    """uWSGI's start ends at a file it cannot read into the cache; ugu's
    too, naming the line."""
    (tmp_path / "app.py").write_text(APP)
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{free_port()}"), ("master", "true"),
        ("wsgi-file", "app.py"), ("cache2", "name=files,items=4"),
        ("load-file-in-cache", "missing.html")])
    with ugu("--ini", str(ini), cwd=tmp_path) as p:
        assert p.wait() == 1
        p.wait_for_log(r"app\.ini:6: option 'load-file-in-cache': "
                       r'open\("missing\.html"\): No such file or '
                       r"directory")


def test_a_worker_killed_holding_the_lock_frees_it(procs, tmp_path):
    """A worker killed within a cache call (harakiri, kill -9) leaves no
    cache locked: the master frees its lock."""
    _, port = start(lambda _, argv, **kw: procs.ugu(*argv, **kw), tmp_path,
                    "ugu", ("cache2", "name=x,items=4"))
    hold = ("__import__('sys').modules['ugu.vassal.cache']._caches.all[0]"
            ".__enter__() and __import__('os').kill(__import__('os')"
            ".getpid(), 9)")
    with pytest.raises(http.client.RemoteDisconnected):
        answers(port, hold)
    assert answers(port, 'uwsgi.cache_set("k", b"v")',
                   'uwsgi.cache_get("k")') == ["True", "b'v'"]


def test_the_stats_list_the_caches(start_server, tmp_path, server):
    """The stats server's document has each cache, with uWSGI's keys and
    counts (a get's hit or miss; exists and set count nothing), and its
    lock."""
    stats_port = free_port()
    _, port = start(start_server, tmp_path, server, ("cache", "3"),
                    ("cache2", "name=a,items=5"),
                    ("stats", f"127.0.0.1:{stats_port}"))
    assert answers(port, 'uwsgi.cache_get("x")',
                   'uwsgi.cache_set("x", b"1", 0, "a")',
                   'uwsgi.cache_get("x", "a")', 'uwsgi.cache_num("x", "a")',
                   'uwsgi.cache_exists("x", "a")',
                   'uwsgi.cache_get("y", "a")',
                   'uwsgi.cache_set("x", b"1", 0, "a")') == [
        "None", "True", "b'1'", "0", "True", "None", "None"]
    document = json.loads(read_stats(stats_port))
    assert document["locks"][-2:] == [{"cache_default": 0}, {"cache_a": 0}]
    assert list(document).index("caches") == \
        list(document).index("locks") + 1
    common = {"hash": "djb33x", "hashsize": 65536, "keysize": 2048,
              "blocksize": 65536, "full": 0, "last_modified_at": 0}
    assert document["caches"] == [
        {"name": "default", **common, "max_items": 3, "blocks": 3,
         "items": 0, "hits": 0, "miss": 1},
        {"name": "a", **common, "max_items": 5, "blocks": 5, "items": 1,
         "hits": 2, "miss": 1}]


def test_a_mule_shares_the_cache(start_server, tmp_path, server):
    """A mule reads and writes the workers' cache."""
    (tmp_path / "mule.py").write_text(textwrap.dedent('''\
        import uwsgi

        uwsgi.cache_set("from-mule", uwsgi.cache_get("at-start") + b"!")
        uwsgi.mule_get_msg()
    '''))
    _, port = start(start_server, tmp_path, server,
                    ("cache2", "name=x,items=4"),
                    ("add-cache-item", "at-start=yes"), ("mule", "mule.py"))
    wait_until(lambda: answers(port, 'uwsgi.cache_get("from-mule")') == [
        "b'yes!'"])


@pytest.mark.parametrize("option, fix", [
    ("cache-udp-node", "ugu's caches are local to the instance"),
    ("http-use-cache", "ugu's routers answer nothing from a cache")])
def test_the_cache_options_ugu_lacks_say_why(tmp_path, option, fix):
    with ugu(f"--{option}", "x", "--http-socket",
             f"127.0.0.1:{free_port()}", cwd=tmp_path) as p:
        assert p.wait() == 1
        p.wait_for_log(rf"option '{option}': this uWSGI option is not "
                       rf"implemented by ugu yet; .*{re.escape(fix)}")


CHECKED_APP = textwrap.dedent('''\
    import uwsgi

    def application(environ, start_response):
        if environ["PATH_INFO"] == "/set":
            key, _, cache = environ["QUERY_STRING"].partition(",")
            response = (b"HTTP/1.0 200 OK\\r\\nX-From: cache\\r\\n\\r\\n"
                        b"cached " + key.encode())
            if cache:
                uwsgi.cache_set(key, response, 0, cache)
            else:
                uwsgi.cache_set(key, response)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"app " + environ["REQUEST_URI"].encode()]
''')


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_check_cache_answers_a_get_with_the_item_at_its_uri(
        tmp_path, start_server, server):
    """The item as it is (the head is the item's), only for a GET and its
    whole REQUEST_URI; uWSGI's line for it: no app, 500, 0 headers."""
    (tmp_path / "app.py").write_text(CHECKED_APP)
    port = free_port()
    p = start_server(server, ["--http-socket", f"127.0.0.1:{port}",
                              "--wsgi-file", "app.py", "--cache2",
                              "name=one,items=10", "--cache2",
                              "name=two,items=10", "--check-cache="],
                     cwd=tmp_path)
    support.wait_for_port(port)
    assert get(port, "/set?/a") == b"app /set?/a"
    assert get(port, "/set?/b,two") == b"app /set?/b,two"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert support.read_to_eof(s) == (b"HTTP/1.0 200 OK\r\nX-From: "
                                          b"cache\r\n\r\ncached /a")
    p.wait_for_log(r"\|app: -1\|req: -1/3\] .* GET /a => generated 43 "
                   r"bytes in \d+ msecs \(HTTP/1\.1 500\) 0 headers in 0 "
                   r"bytes \(0 switches on core 0\)")
    # Another cache's item, another method, another URI: the app's.
    assert get(port, "/b") == b"app /b"
    assert get(port, "/a?x") == b"app /a?x"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/a", body=b"")
    assert conn.getresponse().read() == b"app /a"
    conn.close()


def test_check_cache_names_a_cache_that_must_exist(tmp_path):
    with ugu("--check-cache=nope", "--cache2", "name=one,items=4",
             "--http-socket", f"127.0.0.1:{free_port()}",
             cwd=tmp_path) as p:
        assert p.wait() == 1
        p.wait_for_log(r"option 'check-cache': unable to find cache "
                       r'"nope"')


def test_check_cache_looks_in_the_cache_it_names(tmp_path, procs):
    """uWSGI 2.0 checks that the cache exists, then looks in its first
    cache whatever the name (README's differences)."""
    (tmp_path / "app.py").write_text(CHECKED_APP)
    port = free_port()
    procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file", "app.py",
              "--cache2", "name=one,items=10", "--cache2",
              "name=two,items=10", "--check-cache=two", cwd=tmp_path)
    support.wait_for_port(port)
    get(port, "/set?/a")
    get(port, "/set?/b,two")
    assert get(port, "/a") == b"app /a"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert support.read_to_eof(s).endswith(b"\r\n\r\ncached /b")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_check_cache_answers_through_a_uwsgi_socket(tmp_path, start_server,
                                                    server):
    (tmp_path / "app.py").write_text(CHECKED_APP)
    port, http_port = free_port(), free_port()
    start_server(server, ["--socket", f"127.0.0.1:{port}", "--http-socket",
                          f"127.0.0.1:{http_port}", "--wsgi-file", "app.py",
                          "--cache2", "name=one,items=10", "--check-cache="],
                 cwd=tmp_path)
    support.wait_for_port(port)
    support.wait_for_port(http_port)
    get(http_port, "/set?/a")
    assert support.uwsgi_request(port, "/a") == (
        b"HTTP/1.0 200 OK\r\nX-From: cache\r\n\r\ncached /a")
