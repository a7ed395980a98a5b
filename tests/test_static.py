"""Static files under mountpoints (static-map, static-map2), index files
and safe paths, side by side with the real uWSGI.

Requests go over the uwsgi protocol, as a front server sends them: the
PATH_INFO is the one given, `..` and all, where an HTTP parser would have
folded it.  Each answer is compared with uWSGI's, and so are the lines
logged (start-up, security errors, the request lines with their vars).
"""

import email.utils
import os
import re
import shutil
import socket
import time

import pytest

from tests import support

APP = """def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("app %s %s" % (environ["REQUEST_METHOD"],
                            environ["PATH_INFO"])).encode("latin-1")]
"""

# name -> text, or -> ("link", target)
TREE = {
    "app.py": APP,
    "static/a.txt": "A\n",
    "static/foo": "FOO\n",
    "static/noext": "NOEXT\n",
    "static/ünï.txt": "UTF8\n",
    "static/sp ace.txt": "SPACE\n",
    "static/index.html": "ROOT INDEX\n",
    "static/sub/index.html": "SUB INDEX\n",
    "static/sub/b.css": "B\n",
    "static/only-css/b.css": "ONLY CSS\n",
    "static/empty/.keep": "",
    "static/link-in": ("link", "a.txt"),
    "static/link-out": ("link", "../outside/secret.txt"),
    "static/dir-out": ("link", "../outside"),
    "static/broken": ("link", "nowhere"),
    "outside/secret.txt": "SECRET\n",
    "outside/index.html": "OUTSIDE INDEX\n",
    "favicon.ico": "ICO\n",
    "site2/static2/x.txt": "MAP2\n",
    "cs/c.txt": "CHECK\n",
    "cs/static/a.txt": "CHECK FIRST\n",
}


def build(site):
    for name, content in TREE.items():
        path = site / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, tuple):
            path.symlink_to(content[1])
        else:
            path.write_text(content)


@pytest.fixture
def site(tmp_path):
    build(tmp_path)
    return tmp_path


def utf8(path):
    """A path whose UTF-8 bytes a front server puts in PATH_INFO."""
    return path.encode().decode("latin-1")


def exchange(port, method, path):
    """(status, headers but Last-Modified, body) of one request."""
    raw = support.uwsgi_request(port, path, method=method)
    status, headers, body = support.split_response(raw)
    headers.pop("last-modified", None)
    return status, headers, body


def normalized(output, site):
    """The lines a user greps: static start-up lines, security errors, a
    request's root that cannot be resolved, request lines (less pid, date
    and time taken)."""
    lines = []
    for line in output.splitlines():
        if not re.search(r"\[uwsgi-static\]|\[uwsgi-fileserve\]|=> gen|"
                         r"realpath\(\) of|invalid path size", line):
            continue
        line = re.sub(r"\[pid: \d+\|", "[", line)
        line = re.sub(r"\} \[[^]]*\] ", "} ", line)
        line = re.sub(r" in \d+ msecs", "", line)
        lines.append(line.replace(str(site), "SITE"))
    return lines


def run(procs, argv, site, options, requests):
    """Every request's answer, then the lines logged, from one server."""
    port = support.free_port()
    p = procs.start([*argv, "--socket", f"127.0.0.1:{port}", "--master",
                     "--wsgi-file", "app.py", *options], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    answers = [(method, path, *exchange(port, method, path))
               for method, path in requests]
    p.wait_for_log(r"=> generated", count=len(requests))
    p.stop()
    return answers, normalized(p.output(), site)


def side_by_side(procs, uwsgi_binary, site, options, requests):
    ours = run(procs, support.UGU, site, options, requests)
    theirs = run(procs, [uwsgi_binary], site, options, requests)
    for mine, real in zip(ours[0], theirs[0]):
        assert mine == real
    assert ours[1] == theirs[1]
    return ours


MAPS = ["--check-static", "cs",
        "--static-map", "/static=static",
        "--static-map", "/media/=static",
        "--static-map", "/nowhere=missing-folder",
        "--static-map", "/favicon.ico=favicon.ico",
        "--static-map2", "/static2=site2/"]

MAP_REQUESTS = [
    ("GET", "/static/a.txt"),          # check-static's cs/static/a.txt first
    ("GET", "/static/sub/b.css"),
    ("GET", "/staticfoo"),             # a plain prefix: static/foo
    ("GET", "/static-x"),
    ("GET", "/static"),                # a folder: to the app
    ("GET", "/static/"),
    ("GET", "/static/sub"),
    ("GET", "/static/../outside/secret.txt"),
    ("GET", "/static/sub/../../outside/secret.txt"),
    ("GET", "/static/sub/../a.txt"),
    ("GET", "/static/link-in"),
    ("GET", "/static/link-out"),
    ("GET", "/static/dir-out/secret.txt"),
    ("GET", "/static/dir-out"),
    ("GET", "/static/broken"),
    ("GET", "/static/missing.txt"),
    ("GET", "/static//a.txt"),
    ("GET", "//static/a.txt"),
    ("GET", "/static/noext"),
    ("GET", utf8("/static/ünï.txt")),
    ("GET", "/static/sp ace.txt"),
    ("GET", "/static/a.txt?x=1"),
    ("HEAD", "/static/sub/b.css"),
    ("POST", "/static/sub/b.css"),
    ("PUT", "/static/sub/b.css"),
    ("POST", "/static/link-out"),       # still named in the log
    ("GET", "/media/sub/b.css"),
    ("GET", "/media"),
    ("GET", "/mediab.css"),
    ("GET", "/nowhere/a.txt"),
    ("GET", "/favicon.ico"),
    ("GET", "/favicon.ico/x"),
    ("GET", "/favicon.icox"),
    ("GET", "/static2/x.txt"),
    ("GET", "/static2/../static/a.txt"),
    ("GET", "/c.txt"),
    ("GET", "/"),
]


def test_static_maps_serve_and_refuse_as_uwsgi_does(procs, uwsgi_binary,
                                                    site):
    """Django's `static-map = /static=DIR`, a file mapped, static-map2,
    and a check-static root before them: every answer and every line
    logged as uWSGI's."""
    answers, lines = side_by_side(procs, uwsgi_binary, site, MAPS,
                                  MAP_REQUESTS)
    found = {(method, path): body for method, path, _, _, body in answers}
    assert found["GET", "/static/a.txt"] == b"CHECK FIRST\n"
    assert found["GET", "/staticfoo"] == b"FOO\n"
    assert found["GET", "/static/sub/b.css"] == b"B\n"
    assert found["GET", "/favicon.ico/x"] == b"ICO\n"
    assert found["GET", "/static2/x.txt"] == b"MAP2\n"
    assert found["GET", "/static/link-out"] == b"app GET /static/link-out"
    assert found["POST", "/static/sub/b.css"] == \
        b"app POST /static/sub/b.css"
    assert found["HEAD", "/static/sub/b.css"] == b""
    assert lines[:6] == [
        "[uwsgi-static] added check for cs",
        "[uwsgi-static] added mapping for /static => static",
        "[uwsgi-static] added mapping for /media/ => static",
        "[uwsgi-static] added mapping for /nowhere => missing-folder",
        "[uwsgi-static] added mapping for /favicon.ico => favicon.ico",
        "[uwsgi-static] added mapping for /static2 => site2/"]
    assert ("[uwsgi-fileserve] security error: SITE/outside/secret.txt is "
            "not under SITE/static or a safe path") in lines


INDEX_REQUESTS = [
    ("GET", "/static"),
    ("GET", "/static/"),
    ("GET", "/static/sub"),
    ("GET", "/static/sub/"),
    ("HEAD", "/static/sub/"),
    ("GET", "/static/only-css"),       # the second index name
    ("GET", "/static/empty/"),         # none of them: to the app
    ("POST", "/static/sub"),           # to the app, PATH_INFO and all
    ("GET", "/static/dir-out/"),
    ("GET", "/"),
    ("GET", ""),
]


def test_a_folder_serves_its_index_file_as_in_uwsgi(procs, uwsgi_binary,
                                                    site):
    """No redirect: the folder's path, with or without its '/', sends the
    first index file there; uWSGI appends the name to PATH_INFO (the log
    line counts the var; a POST reaches the app with it)."""
    options = ["--check-static", "static", "--static-map", "/static=static",
               "--static-index", "index.html", "--static-index", "b.css"]
    answers, lines = side_by_side(procs, uwsgi_binary, site, options,
                                  INDEX_REQUESTS)
    found = {(method, path): body for method, path, _, _, body in answers}
    assert found["GET", "/static"] == found["GET", "/"] == b"ROOT INDEX\n"
    assert found["GET", "/static/sub"] == b"SUB INDEX\n"
    assert found["GET", "/static/only-css"] == b"ONLY CSS\n"
    assert found["POST", "/static/sub"] == b"app POST /static/sub/index.html"
    assert any("{22 vars" in line and "GET /static/sub =>" in line
               for line in lines)


def test_static_safe_admits_a_path_outside_as_in_uwsgi(procs, uwsgi_binary,
                                                       site):
    """A symlink leading out of the root is served where static-safe
    covers its target, a folder's index file too."""
    options = ["--static-map", "/static=static", "--static-index",
               "index.html", "--static-safe", str(site / "outside")]
    requests = [("GET", "/static/link-out"), ("GET", "/static/dir-out/"),
                ("GET", "/static/dir-out/secret.txt"),
                ("GET", "/static/a.txt")]
    answers, lines = side_by_side(procs, uwsgi_binary, site, options,
                                  requests)
    assert [body for *_, body in answers] == [
        b"SECRET\n", b"OUTSIDE INDEX\n", b"SECRET\n", b"A\n"]
    assert not any("security error" in line for line in lines)


def test_containment_is_decided_on_resolved_paths(procs, site):
    """DEVIATIONS 10: a root (or safe path) never admits a sibling that
    shares its name's prefix, where uWSGI compares strings; nor does an
    index file that leads out of the root."""
    (site / "static-secret").mkdir()
    (site / "static-secret" / "s.txt").write_text("SIBLING\n")
    (site / "static" / "sub2").mkdir()
    (site / "static" / "sub2" / "index.html").symlink_to(
        site / "outside" / "index.html")
    options = ["--static-map", "/static=static", "--static-index",
               "index.html", "--static-safe", str(site / "out")]
    requests = [("GET", "/static/../static-secret/s.txt"),
                ("GET", "/static/link-out"), ("GET", "/static/sub2/")]
    answers, lines = run(procs, support.UGU, site, options, requests)
    assert [body for *_, body in answers] == [
        b"app GET /static/../static-secret/s.txt",
        b"app GET /static/link-out", b"app GET /static/sub2/"]
    assert [line for line in lines if "security" in line] == [
        f"[uwsgi-fileserve] security error: SITE/{name} is not under "
        "SITE/static or a safe path"
        for name in ("static-secret/s.txt", "outside/secret.txt",
                     "outside/index.html")]


def test_a_mapping_to_a_missing_path_serves_nothing_till_respawn(procs,
                                                               site):
    """As uWSGI: PATH is resolved at the first request a worker gives the
    mapping; missing then, it stays missing for that worker."""
    options = ["--static-map", "/late=late", "--static-map", "/early=early"]
    (site / "early").mkdir()
    port = support.free_port()
    p = procs.ugu("--socket", f"127.0.0.1:{port}", "--master",
                  "--wsgi-file", "app.py", *options, cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    (site / "early" / "e.txt").write_text("E\n")
    assert exchange(port, "GET", "/late/l.txt")[2] == b"app GET /late/l.txt"
    (site / "late").mkdir()
    (site / "late" / "l.txt").write_text("L\n")
    assert exchange(port, "GET", "/late/l.txt")[2] == b"app GET /late/l.txt"
    assert exchange(port, "GET", "/early/e.txt")[2] == b"E\n"


def test_no_static_option_leaves_every_request_to_the_app(procs, site):
    """Without check-static or a mapping, files are the app's business."""
    port = support.free_port()
    p = procs.ugu("--socket", f"127.0.0.1:{port}", "--master",
                  "--wsgi-file", "app.py", "--static-index", "index.html",
                  cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    assert exchange(port, "GET", "/static/a.txt")[2] == \
        b"app GET /static/a.txt"
    assert "building mime-types dictionary" in p.output()


MTIME = 1704164645      # Tue, 02 Jan 2024 03:04:05 GMT
EXPIRES = ["--static-map", "/static=static", "--static-index", "index.html",
           "--static-skip-ext", ".txt", "--static-skip-ext", "oo",
           "--static-expires-type", "text/css=3600",
           "--static-expires-type-mtime", "text/html=100",
           "--static-expires", r"\.css$ 60",
           "--static-expires-mtime", r"b\.css 70",
           "--static-expires-uri", "x=1 80",
           "--static-expires-path-info-mtime", "^/static/sub 90",
           "--static-expires-path-info", "^/static/sub/b 95",
           "--static-expires-mtime", "noext 1000000000"]
NOW_SECONDS = (60, 80, 95, 3600)


def expiry(value):
    """An Expires date as the rule that made it: MTIME+N, or NOW+N for
    one counted from the request (within a second or two of now)."""
    when = email.utils.parsedate_to_datetime(value).timestamp()
    if when - MTIME in (70, 90, 100, 1000000000):
        return f"MTIME+{int(when - MTIME)}"
    for seconds in NOW_SECONDS:
        if abs(when - seconds - time.time()) <= 3:
            return f"NOW+{seconds}"
    return value


def expires_answers(procs, argv, site):
    for path in site.rglob("*"):
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)
    port = support.free_port()
    p = procs.start([*argv, "--socket", f"127.0.0.1:{port}", "--master",
                     "--wsgi-file", "app.py", *EXPIRES], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    answers = []
    for path in ("/static/sub/b.css", "/static/sub/b.css?x=1",
                 "/static/sub", "/static/noext", "/static/a.txt",
                 "/static/link-in", "/static/foo"):
        raw = support.uwsgi_request(port, path)
        head = raw.partition(b"\r\n\r\n")[0].decode("latin-1")
        answers.append([expiry(line[9:]) if line.startswith("Expires: ")
                        else line for line in head.split("\r\n")])
    return answers


def test_expires_and_skipped_extensions_are_uwsgis(procs, uwsgi_binary,
                                                   site):
    """Up to one Expires header by the file's name, PATH_INFO, URI (these
    first) and Content-Type (after it), each the first rule matching,
    plain before -mtime; skipped extensions go to the app, by PATH_INFO
    or by the file's real name."""
    ours = expires_answers(procs, support.UGU, site)
    assert ours == expires_answers(procs, [uwsgi_binary], site)
    last_modified = "Last-Modified: Tue, 02 Jan 2024 03:04:05 GMT"
    assert ours[1] == ["HTTP/1.1 200 OK", "NOW+60", "NOW+95", "NOW+80",
                       "Content-Type: text/css", "NOW+3600",
                       "Content-Length: 2", last_modified]
    assert ours[2][1:3] == ["MTIME+90", "Content-Type: text/html"]
    assert ours[3][1] == "MTIME+1000000000"
    assert [answer[0] for answer in ours[4:]] == [
        "HTTP/1.1 200 OK"] * 3 and all(
        "Expires" not in " ".join(answer) for answer in ours[4:])


def test_a_304_keeps_the_expires_headers(procs, site):
    """DEVIATIONS 12: the validators and caching headers of the 200."""
    os.utime(site / "static" / "sub" / "b.css", (MTIME, MTIME))
    port = support.free_port()
    p = procs.ugu("--socket", f"127.0.0.1:{port}", "--master",
                  "--wsgi-file", "app.py", *EXPIRES, cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    raw = support.uwsgi_request(port, "/static/sub/b.css", headers=[
        ("If-Modified-Since", "Tue, 02 Jan 2024 03:04:05 GMT")])
    status, headers, body = support.split_response(raw)
    assert status == "HTTP/1.1 304 Not Modified"
    lines = raw.partition(b"\r\n\r\n")[0].decode().split("\r\n")[1:]
    assert [expiry(line[9:]) for line in lines[:3]] == [
        "NOW+60", "NOW+95", "NOW+3600"]
    assert lines[3:] == ["Last-Modified: Tue, 02 Jan 2024 03:04:05 GMT"]


@pytest.mark.parametrize("option, value, reason", [
    ("static-expires", r"\.css$", "invalid dictionary syntax for "
     "static-expires"),
    ("static-expires-type", "text/css 60", "invalid dictionary syntax for "
     "static-expires-type"),
    ("static-expires-uri", "x 1h", "'1h' is not a number of seconds"),
    ("static-expires-path-info", "([ 60", 'invalid regexp "(["')])
def test_an_expires_rule_uwsgi_cannot_read_is_refused_at_its_line(
        tmp_path, option, value, reason):
    from ugu.options.errors import ConfigError
    from ugu.options.resolve import resolve
    from ugu.vassal.expires import Expires
    ini = support.write_ini(tmp_path / "app.ini", uwsgi=[
        ("static-expires", r"\.js$ 60"), (option, value)])
    with pytest.raises(ConfigError) as info:
        Expires.from_config(resolve(["--ini", str(ini)], {}))
    assert str(info.value).startswith(
        f"{ini}:3: option '{option}': {reason}")


SERVE_MODE_OPTIONS = ["--static-map", "/static=static", "--static-index",
                      "index.html", "--static-gzip-all", "--honour-range",
                      "--offload-threads", "1"]
SERVE_MODE_REQUESTS = [
    ("GET", "/static/a.txt", ()),
    ("HEAD", "/static/sub/b.css", ()),
    ("GET", "/static/sub/", ()),                   # an index file
    ("GET", "/static/link-in", ()),                # its target's name
    ("GET", "/static/sub/b.css", [("Accept-Encoding", "gzip")]),
    ("GET", "/static/a.txt", [("Range", "bytes=0-0")]),
    ("GET", "/static/a.txt", [("Range", "bytes=9-")]),
    ("POST", "/static/a.txt", ()),
]


def serve_mode_answers(procs, argv, site, option, mode):
    """The raw answers, then the request lines, of one server."""
    port = support.free_port()
    p = procs.start([*argv, "--socket", f"127.0.0.1:{port}", "--master",
                     "--wsgi-file", "app.py", f"--{option}", mode,
                     *SERVE_MODE_OPTIONS], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    answers = [support.uwsgi_request(port, path, method, headers)
               for method, path, headers in SERVE_MODE_REQUESTS]
    p.wait_for_log(r"=> generated", count=len(SERVE_MODE_REQUESTS))
    return answers, normalized(p.output(), site)


@pytest.mark.parametrize("option, mode, header", [
    ("file-serve-mode", "x-sendfile", "X-Sendfile"),
    ("file-serve-mode", "XSendFile", "X-Sendfile"),
    ("file-serve-mode", "nginx", "X-Accel-Redirect"),
    ("file-serve-mode", "x-accel-redirect", "X-Accel-Redirect"),
    ("fileserve-mode", "x-accel-redirect", "X-Accel-Redirect")])
def test_file_serve_mode_names_the_file_for_the_server_in_front(
        procs, uwsgi_binary, site, option, mode, header):
    """No body and no Content-Length: the header names the file's real
    path (a gzip variant's, an index file's); a 206 names the whole file
    with nothing of the part, and a 416 stays one.  Byte for byte, and
    line for line, as uWSGI's (fileserve-mode: its other name)."""
    (site / "static" / "sub" / "b.css.gz").write_bytes(b"GZ")
    for path in site.rglob("*"):
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)
    ours = serve_mode_answers(procs, support.UGU, site, option, mode)
    assert ours == serve_mode_answers(procs, [uwsgi_binary], site, option,
                                      mode)
    real = os.path.realpath(site / "static")
    heads = [raw.decode() for raw in ours[0]]
    assert heads[0] == (
        f"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
        f"{header}: {real}/a.txt\r\n"
        f"Last-Modified: Tue, 02 Jan 2024 03:04:05 GMT\r\n\r\n")
    assert f"{header}: {real}/sub/index.html\r\n" in heads[2]
    assert f"{header}: {real}/a.txt\r\n" in heads[3]
    assert f"Content-Encoding: gzip\r\nContent-Type: text/css\r\n" \
           f"{header}: {real}/sub/b.css.gz\r\n" in heads[4]
    assert heads[5].startswith("HTTP/1.1 206 Partial Content\r\n")
    assert "Content-Range" not in heads[5]
    assert heads[6].startswith("HTTP/1.1 416 ")
    assert heads[7].endswith("app POST /static/a.txt")
    assert not any("Content-Length" in head for head in heads[:6])


def test_a_file_serve_mode_uwsgi_does_not_know_is_refused(tmp_path):
    """uWSGI would ignore it, and send the files itself."""
    from ugu.options.errors import ConfigError
    from ugu.options.resolve import resolve
    from ugu.vassal.static import StaticFiles
    ini = support.write_ini(tmp_path / "app.ini", uwsgi=[
        ("file-serve-mode", "apache")])
    with pytest.raises(ConfigError) as info:
        StaticFiles(resolve(["--ini", str(ini)], {}))
    assert "invalid file-serve-mode value: apache (write x-sendfile, " \
           "x-accel-redirect or nginx)" in str(info.value)


def gzip_answers(procs, argv, site, options, requests):
    """The raw answers, then the request lines, of one server."""
    port = support.free_port()
    p = procs.start([*argv, "--socket", f"127.0.0.1:{port}", "--master",
                     "--wsgi-file", "app.py", "--static-map",
                     "/static=static", *options], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    answers = [support.uwsgi_request(port, path, "GET", headers)
               for path, headers in requests]
    p.wait_for_log(r"=> generated", count=len(requests))
    return answers, normalized(p.output(), site)


GZIP_REQUESTS = [
    (path, [("Accept-Encoding", coding)] if coding else [])
    for path in ("/static/a.txt", "/static/foo", "/static/sub/b.css",
                 "/static/only-css/b.css", "/static/noext")
    for coding in ("gzip", "br", "gzip, br", "")]


@pytest.mark.parametrize("options", [
    ["--static-gzip-dir", "SUB"],
    ["--static-gzip-prefix", "SUB", "--static-gzip-suffix", "t"],
    ["--static-gzip-ext", ".txt", "--static-gzip-ext", "foo"],
    ["--static-gzip", r"only-css/b\.css$"],
    ["--static-gzip", "o", "--static-gzip-dir", "/nowhere"],
], ids=["dir", "prefix-suffix", "ext", "regexp", "regexp-anywhere"])
def test_static_gzip_picks_files_by_name_as_uwsgi_does(
        procs, uwsgi_binary, site, options):
    """static-gzip's regexp, -dir (-prefix) and -ext (-suffix) on the
    file's real path: FILE.br or FILE.gz for a client that takes it, for
    the files they pick; byte for byte as uWSGI's."""
    real = os.path.realpath(site)
    options = [value.replace("SUB", f"{real}/static/sub")
               for value in options]
    for name in ("a.txt", "foo", "sub/b.css", "only-css/b.css", "noext"):
        (site / "static" / f"{name}.gz").write_bytes(b"GZ " + name.encode())
    (site / "static" / "sub" / "b.css.br").write_bytes(b"BR")
    for path in site.rglob("*"):
        os.utime(path, (MTIME, MTIME), follow_symlinks=False)
    ours = gzip_answers(procs, support.UGU, site, options, GZIP_REQUESTS)
    assert ours == gzip_answers(procs, [uwsgi_binary], site, options,
                                GZIP_REQUESTS)
    assert any(b"Content-Encoding: gzip" in raw for raw in ours[0])
    assert any(not raw.endswith(b"GZ") and b"Content-Encoding" not in raw
               for raw in ours[0][:-4])


def test_static_gzip_dir_sends_brotli_first(procs, site):
    """A client taking both gets FILE.br where there is one, as from
    uWSGI; a regexp uWSGI cannot read stops the start."""
    (site / "static" / "sub" / "b.css.gz").write_bytes(b"GZ")
    (site / "static" / "sub" / "b.css.br").write_bytes(b"BR")
    answers, _ = gzip_answers(
        procs, support.UGU, site,
        ["--static-gzip-ext", ".css"],
        [("/static/sub/b.css", [("Accept-Encoding", "gzip, br")]),
         ("/static/sub/b.css", [("Accept-Encoding", "gzip")])])
    assert answers[0].endswith(b"\r\n\r\nBR")
    assert b"Content-Encoding: br\r\n" in answers[0]
    assert answers[1].endswith(b"\r\n\r\nGZ")


def test_a_static_gzip_regexp_that_does_not_compile_is_refused(tmp_path):
    from ugu.options.errors import ConfigError
    from ugu.options.resolve import resolve
    from ugu.vassal.static import StaticFiles
    ini = support.write_ini(tmp_path / "app.ini", uwsgi=[
        ("static-map", "/s=s"), ("static-gzip", "a(")])
    with pytest.raises(ConfigError) as info:
        StaticFiles(resolve(["--ini", str(ini)], {}))
    assert 'invalid regexp "a("' in str(info.value)
    assert "app.ini" in str(info.value)
    assert "static-gzip" in str(info.value)


def test_a_gzip_variant_leading_out_of_the_root_is_not_served(procs, site):
    """DEVIATIONS 10 holds for FILE.gz and FILE.br too: a variant that is
    a symlink out of the roots is refused (with uWSGI's security line)
    and the file itself goes out, where uWSGI sends what the link names;
    one that stays inside, or that static-safe covers, is served."""
    static = site / "static"
    (static / "a.txt.gz").symlink_to(site / "outside" / "secret.txt")
    (static / "foo.br").symlink_to(site / "outside" / "secret.txt")
    (static / "foo.gz").write_bytes(b"GZ foo")
    (static / "noext.gz").symlink_to("foo.gz")
    requests = [(path, [("Accept-Encoding", "gzip, br")])
                for path in ("/static/a.txt", "/static/foo",
                             "/static/noext")]
    answers, lines = gzip_answers(procs, support.UGU, site,
                                  ["--static-gzip-all"], requests)
    bodies = [support.split_response(raw)[2] for raw in answers]
    assert bodies == [b"A\n", b"GZ foo", b"GZ foo"]
    assert b"Content-Encoding" not in answers[0]
    assert [line for line in lines if "security" in line] == [
        "[uwsgi-fileserve] security error: SITE/outside/secret.txt is "
        "not under SITE/static or a safe path"] * 2
    answers, lines = gzip_answers(
        procs, support.UGU, site, ["--static-gzip-all", "--static-safe",
                                   str(site / "outside")], requests[:1])
    assert support.split_response(answers[0])[2] == b"SECRET\n"


@pytest.mark.skipif(not shutil.which("strace"), reason="no strace")
@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("disabled", [False, True])
def test_disable_sendfile_sends_the_file_by_read_and_write(
        procs, request, tmp_path, server, disabled):
    """The same bytes either way; under disable-sendfile no sendfile()
    call is made (strace counts them)."""
    body = bytes(range(256)) * 1200
    (tmp_path / "big.bin").write_bytes(body)
    (tmp_path / "app.py").write_text(APP)
    binary = (list(support.UGU) if server == "ugu"
              else [request.getfixturevalue("uwsgi_binary")])
    trace = tmp_path / "trace"
    port = support.free_port()
    argv = ["strace", "-f", "-qq", "-e", "trace=sendfile", "-o", str(trace),
            *binary, "--http-socket", f"127.0.0.1:{port}",
            "--wsgi-file", "app.py", "--check-static", str(tmp_path)]
    if disabled:
        argv.append("--disable-sendfile")
    p = procs.start(argv, cwd=tmp_path)
    support.wait_for_port(port)
    assert support.get_body(port, "/big.bin") == body
    p.wait_for_log(r"GET /big\.bin => generated 307200 bytes")
    assert ("sendfile(" in trace.read_text()) != disabled


@pytest.mark.parametrize("available", [True, False])
def test_a_name_opened_without_readlink_has_the_real_path_readlink_gives(
        site, monkeypatch, available):
    """Where openat2() walks a name with no symlink on it, the name (its
    empty components dropped) is taken for the real path: it must be the
    one /proc/self/fd gives, and a name through a symlink, or with a dot
    component, must still get the resolved one; so must every name where
    the kernel has no openat2()."""
    from ugu.vassal import static
    static._import_openat2()
    if not available:
        monkeypatch.setattr(static._openat2, "AVAILABLE", False)
    names = ["static/a.txt", "static//a.txt", "/static/sub//b.css",
             "static/link-in", "static/dir-out/secret.txt",
             "static/sub/../a.txt", "static/./a.txt", "static/empty/.keep"]
    for name in names:
        path = f"{site}/{name}"
        fd, real = static._open_real(path)
        try:
            assert real == os.readlink(f"/proc/self/fd/{fd}") == \
                os.path.realpath(path)
        finally:
            os.close(fd)
    assert static._open_real(f"{site}/static/missing.txt") is None


@pytest.mark.parametrize("offload", [False, True])
def test_a_head_no_file_follows_is_not_held_on_a_keepalive_connection(
        procs, site, offload):
    """A static file's head goes with MSG_MORE only where sendfile()
    follows it: the head of a HEAD, or of an empty file, arrives while
    the connection stays open, and so does a whole file."""
    (site / "static" / "empty.txt").write_bytes(b"")
    port = support.free_port()
    options = ["--offload-threads", "1"] if offload else []
    p = procs.start([*support.UGU, "--http-socket", f"127.0.0.1:{port}",
                     "--http-keepalive", "--wsgi-file", "app.py",
                     "--check-static", "static", *options], cwd=site)
    support.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for method, path, body in [("HEAD", "/a.txt", b""),
                                   ("GET", "/empty.txt", b""),
                                   ("GET", "/a.txt", b"A\n")]:
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n"
                      .encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                assert chunk, "closed before the head"
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            while len(rest) < len(body):
                rest += s.recv(4096)
            assert rest == body
            if b"Connection: close" in head:
                break
    p.stop()
