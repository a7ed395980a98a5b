"""The tutorial's earlier steps (TUTORIAL-STEPS.md, 2 to 8), each run the
way the tutorial runs it, from the examples folder."""

import gzip
import re
import shutil

import pytest
import requests

from tests import support

CSS = (support.EXAMPLES / "static" / "base.css").read_bytes()


@pytest.fixture
def site(tmp_path):
    target = tmp_path / "site"
    shutil.copytree(support.EXAMPLES, target,
                    ignore=shutil.ignore_patterns("logs", "__pycache__"))
    return target


def start(procs, site, *args):
    port = support.free_port()
    argv = [a.replace("PORT", str(port)) for a in args]
    p = procs.ugu(*argv, cwd=site)
    p.url = f"http://127.0.0.1:{port}"
    return p, port


def test_step2_app_not_found_keeps_serving(procs, site):
    p, port = start(procs, site, "--master", "--http-socket",
                    "127.0.0.1:PORT", "--module", "app")
    p.wait_for_log(r"ModuleNotFoundError: No module named 'app'")
    p.wait_for_log(r"\*\*\* no app loaded\. going in full dynamic mode "
                   r"\*\*\*")
    # One line, as uWSGI logs it: no frame of ugu or of importlib.
    assert "Traceback" not in p.output()
    support.wait_for_port(port)
    r = requests.get(p.url + "/", timeout=10)
    assert r.status_code == 500
    assert r.headers["Connection"] == "close"
    assert r.text == "Internal Server Error"
    p.wait_for_log("--- no python application found, check your startup "
                   "logs for errors ---")
    # uWSGI's two headers, in 83 bytes with the status line.
    p.wait_for_log(r"GET / => generated 21 bytes in \d+ msecs \(HTTP/1\.1 "
                   r"500\) 2 headers in 83 bytes \(0 switches on core 0\)")


def test_step3_pythonpath_serves_the_page(procs, site):
    p, port = start(procs, site, "--master", "--http-socket",
                    "127.0.0.1:PORT", "--pythonpath", "code/", "--module",
                    "app")
    p.wait_for_log(r"added code/ to pythonpath\.")
    support.wait_for_port(port)
    r = requests.get(p.url + "/", timeout=10)
    assert r.status_code == 200 and "Hello from ugu" in r.text
    p.wait_for_log(r"\[pid: \d+\|app: 0\|req: 1/1\] 127\.0\.0\.1 \(\) "
                   r"\{\d+ vars in \d+ bytes\} \[[^]]+\] GET / => generated "
                   r"\d+ bytes in \d+ msecs \(HTTP/1\.1 200\) 1 headers in "
                   r"44 bytes \(1 switches on core 0\)")


@pytest.mark.parametrize("offload", [False, True])
def test_steps4_5_static_file(procs, site, offload):
    extra = ["--offload-threads", "1"] if offload else []
    p, port = start(procs, site, "--master", "--http-socket",
                    "127.0.0.1:PORT", "--pythonpath", "code/", "--module",
                    "app", "--check-static", "static/", *extra)
    support.wait_for_port(port)
    r = requests.get(p.url + "/base.css", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/css"
    assert r.content == CSS
    via = "offload" if offload else "sendfile"
    p.wait_for_log(rf"GET /base\.css => generated {len(CSS)} bytes in \d+ "
                   rf"msecs via {via}\(\) \(HTTP/1\.1 200\) 3 headers")
    if offload:
        assert "spawned 1 offload threads for uWSGI worker 1" in p.output()


def step6_ini(site, port, extra=""):
    text = (f"[uwsgi]\nstrict = true\nmaster = true\n"
            f"http-socket = 127.0.0.1:{port}\npythonpath = code/\n"
            f"module = app\ncheck-static = static/\noffload-threads = 1\n"
            f"{extra}")
    (site / "single.ini").write_text(text)


def test_step6_ini_file(procs, site):
    port = support.free_port()
    step6_ini(site, port)
    p = procs.ugu("--ini", "single.ini", cwd=site)
    p.wait_for_log(r"\[uWSGI\] getting INI configuration from single\.ini")
    support.wait_for_port(port)
    r = requests.get(f"http://127.0.0.1:{port}/base.css", timeout=10)
    assert r.content == CSS


def test_step6_strict_stops_a_misspelt_key(procs, site):
    step6_ini(site, support.free_port(), "procesess = 4\n")
    p = procs.ugu("--ini", "single.ini", cwd=site)
    assert p.wait() == 1
    line = p.output().strip().splitlines()[-1]
    assert "single.ini:9" in line and "procesess" in line
    assert "processes" in line  # the suggestion


def test_step7_workers_cheaper_threads(procs, site):
    port = support.free_port()
    step6_ini(site, port, "processes = 4\ncheaper = 1\nthreads = 2\n")
    p = procs.ugu("--ini", "single.ini", cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1 \(pid: \d+, cores: 2\)")
    support.wait_for_port(port)
    r = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
    assert r.status_code == 200
    assert "spawned uWSGI worker 2" not in p.output()


def test_step8_router_in_front_of_its_own_workers(procs, site):
    port = support.free_port()
    text = re.sub(r"(?m)^socket = .*$", f"http = 127.0.0.1:{port}",
                  (site / "uwsgi.ini").read_text())
    (site / "uwsgi.ini").write_text(text)
    p = procs.ugu("--ini", "uwsgi.ini", cwd=site)
    p.wait_for_log(r"spawned uWSGI http 1 \(pid: \d+\)")
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    r = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
    assert r.status_code == 200 and "Hello from ugu" in r.text
    assert re.search(r"uWSGI http bound on 127\.0\.0\.1:\d+ fd \d+",
                     p.output())


def test_step9_static_gzip_all(procs, site):
    port = support.free_port()
    step6_ini(site, port, "static-gzip-all = true\n")
    p = procs.ugu("--ini", "single.ini", cwd=site)
    support.wait_for_port(port)
    r = requests.get(f"http://127.0.0.1:{port}/base.css", timeout=10,
                     headers={"Accept-Encoding": "gzip"}, stream=True)
    assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(r.raw.read()) == CSS
    size = (site / "static" / "base.css.gz").stat().st_size
    p.wait_for_log(rf"GET /base\.css => generated {size} bytes")
