"""static-cache-paths: the real path of each static file's name kept in a
cache, on ugu and on the real uWSGI: what is stored, under which key,
what a name serves while its item lives, the cache's counts, and the
start-up checks.

Requests go over the uwsgi protocol, as a front server sends them.
"""

import json
import textwrap

import pytest

from tests import support
from tests.test_static import build, normalized, utf8
from tests.test_stats import read_stats

# The items of the cache the query names, sorted, as (key, value) pairs.
APP = textwrap.dedent('''\
    import uwsgi


    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        if environ["PATH_INFO"] == "/keys":
            name = environ["QUERY_STRING"]
            return [repr(sorted((key, uwsgi.cache_get(key, name))
                                for key in uwsgi.cache_keys(name))).encode()]
        return [("app " + environ["PATH_INFO"]).encode("latin-1")]
''')


def body(port, path, method="GET", document_root=None):
    extra = [("DOCUMENT_ROOT", document_root)] if document_root else []
    raw = support.uwsgi_request(port, path, method, extra_vars=extra)
    return support.split_response(raw)[2]


def items(port, site, name=""):
    """The cache's items, SITE for the site's folder."""
    return eval(body(port, f"/keys?{name}").replace(
        utf8(str(site)).encode("latin-1"), b"SITE"))


def start(start_server, server, site, *options):
    (site / "app.py").write_text(APP)
    port, stats = support.free_port(), support.free_port()
    p = start_server(server, ["--socket", f"127.0.0.1:{port}",
                              "--wsgi-file", "app.py", "--stats",
                              f"127.0.0.1:{stats}", *options], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    return p, port, stats


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_name_serves_the_path_it_resolved_to_while_cached(
        start_server, tmp_path, server):
    """Each name looked at (root, '/', PATH_INFO) is stored with what it
    resolved to, a folder or a file out of its root too, in the cache
    named; while the item lives a symlink pointed elsewhere serves its
    old target, and a file gone is not served.  A name that resolves to
    nothing is not stored; the misses and hits are counted."""
    build(tmp_path)
    p, port, stats = start(
        start_server, server, tmp_path, "--check-static", "cs",
        "--static-map", "/static=static", "--static-index", "index.html",
        "--check-static-docroot", "--cache2", "name=other,items=10",
        "--cache2", "name=paths,items=20", "--static-cache-paths", "30",
        "--static-cache-paths-name", "paths")
    site2 = str(tmp_path / "site2" / "static2")
    assert [body(port, path) for path in (
        "/static/a.txt", "/static/link-in", "/static/link-out",
        "/static/sub", "/static/sub/b.css", "/nothing", "/")] == [
        b"CHECK FIRST\n", b"A\n", b"app /static/link-out", b"SUB INDEX\n",
        b"B\n", b"app /nothing", b"app /"]
    assert body(port, "/x.txt", document_root=site2) == b"MAP2\n"
    (tmp_path / "static" / "link-in").unlink()
    (tmp_path / "static" / "link-in").symlink_to("foo")
    (tmp_path / "static" / "sub" / "b.css").unlink()
    assert [body(port, path) for path in (
        "/static/link-in", "/static/sub/b.css", "/static/link-out")] == [
        b"A\n", b"app /static/sub/b.css", b"app /static/link-out"]
    assert items(port, tmp_path, "other") == []
    assert items(port, tmp_path, "paths") == [
        (b"SITE/cs//", b"SITE/cs"),
        (b"SITE/cs//static/a.txt", b"SITE/cs/static/a.txt"),
        (b"SITE/site2/static2//x.txt", b"SITE/site2/static2/x.txt"),
        (b"SITE/static//link-in", b"SITE/static/a.txt"),
        (b"SITE/static//link-out", b"SITE/outside/secret.txt"),
        (b"SITE/static//sub", b"SITE/static/sub"),
        (b"SITE/static//sub/b.css", b"SITE/static/sub/b.css")]
    # A miss for each name looked up while not stored (18); a hit for
    # each of the 3 names looked up again, and the app's 7 gets.
    caches = json.loads(read_stats(stats))["caches"]
    assert [(c["name"], c["items"], c["hits"], c["miss"])
            for c in caches] == [("other", 0, 0, 0), ("paths", 7, 10, 18)]
    p.wait_for_log(r"=> generated", count=13)
    security = [line for line in normalized(p.output(), tmp_path)
                if "security error" in line]
    assert security == 2 * [
        "[uwsgi-fileserve] security error: SITE/outside/secret.txt is not "
        "under SITE/static or a safe path"]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_the_first_cache_keeps_the_paths_of_a_route_too(
        start_server, tmp_path, server):
    """Without a name, the instance's first cache; a `static:` route's
    path is a name too (stored as written, its real path checked after,
    as it is each time)."""
    build(tmp_path)
    p, port, _ = start(start_server, server, tmp_path, "--cache", "10",
                       "--cache2", "name=second,items=10",
                       "--static-cache-paths", "30", "--route",
                       "^/r$ static:static/a.txt", "--route",
                       f"^/r2$ static:{tmp_path}/static/a.txt")
    assert body(port, "/r2") == b"A\n"
    body(port, "/r")
    assert items(port, tmp_path, "second") == []
    assert items(port, tmp_path) == [
        (b"SITE/static/a.txt", b"SITE/static/a.txt"),
        (b"static/a.txt", b"SITE/static/a.txt")]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("options, line", [
    (["--check-static", "static"],
     r"caching of static paths requires uWSGI caching !!!"),
    (["--cache2", "name=one,items=4", "--static-cache-paths-name", "two"],
     r'unable to find cache "two"')])
def test_the_paths_need_a_cache_that_exists(start_server, tmp_path, server,
                                            options, line):
    (tmp_path / "app.py").write_text(APP)
    p = start_server(server, ["--socket", f"127.0.0.1:{support.free_port()}",
                              "--wsgi-file", "app.py", "--static-cache-paths",
                              "30", *options], cwd=tmp_path)
    assert p.wait() == 1
    p.wait_for_log(line)
