"""Smoke test of the benchmark: one quick round of W1 on two ugu setups.

No figure is asserted (this machine is shared and noisy); only that the
run completes and writes a well-formed report with ratios.
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests import support


@pytest.mark.skipif(shutil.which("wrk") is None,
                    reason="wrk is not installed (apt-get install wrk); "
                    "the benchmark drives every setup with it")
def test_quick_run_writes_json_with_ratios(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--workloads", "W1",
         "--setups", "ugu-http,ugu-emperor", "--no-lifecycle",
         "--output", str(tmp_path)],
        cwd=support.REPO, capture_output=True, text=True, timeout=110)
    assert result.returncode == 0, result.stdout + result.stderr
    [path] = tmp_path.glob("bench-*.json")
    report = json.loads(path.read_text())
    w1 = report["summary"]["W1"]
    assert set(w1) == {"ugu-http", "ugu-emperor"}
    for figures in w1.values():
        assert figures["rate"] > 0
        assert figures["cpu_per_request"] > 0
        assert figures["rss"] > 0
    ratio = report["ratios"]["W1"]["rate"]["ugu-http"]["ugu-emperor"]
    assert ratio == pytest.approx(w1["ugu-http"]["rate"]
                                  / w1["ugu-emperor"]["rate"])
    assert (tmp_path / path.name.replace(".json", ".md")).exists()


@pytest.mark.skipif(shutil.which("wrk") is None,
                    reason="wrk is not installed (apt-get install wrk); "
                    "the benchmark drives every setup with it")
def test_routers_alone_before_a_uwsgi_worker(tmp_path, uwsgi_binary):
    """The router-study setups: ugu's router and the bare gevent relay,
    each before the same uWSGI worker, answer every request."""
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--workloads", "W1",
         "--setups", "ugu-router,gevent-relay", "--no-lifecycle",
         "--output", str(tmp_path)],
        cwd=support.REPO, capture_output=True, text=True, timeout=110,
        env={**os.environ, "UGU_REFERENCE_UWSGI": uwsgi_binary})
    assert result.returncode == 0, result.stdout + result.stderr
    [path] = tmp_path.glob("bench-*.json")
    w1 = json.loads(path.read_text())["summary"]["W1"]
    assert set(w1) == {"ugu-router", "gevent-relay"}
    for figures in w1.values():
        assert figures["rate"] > 0
        assert figures["errors"] == 0


def test_uwsgi_is_given_the_keepalive_the_tutorial_means(tmp_path):
    """uwsgi-emperor-ka runs the tutorial's files with `http-keepalive = 1`
    (uWSGI reads `true` as 0); the plain setups keep the files as written."""
    from bench import setups
    for keepalive in ("true", "1"):
        site = setups.make_site(tmp_path / keepalive)
        setups.emperor_inis(site, setups.Shape(), 20001, 20002, keepalive)
        http_ini = (site / "http.ini").read_text()
        assert f"\nhttp-keepalive = {keepalive}\n" in http_ini
        assert "http = 127.0.0.1:20001\n" in http_ini


def test_the_bench_points_edited_examples_at_its_ports(tmp_path):
    """The README invites other ports in examples/: whatever they are,
    the bench's copies use its own."""
    from bench import setups
    site = setups.make_site(tmp_path)
    for name, old, new in (("http.ini", "http = :8000", "http = :9100"),
                           ("http.ini", "127.0.0.1:8001", "127.0.0.1:9101"),
                           ("uwsgi.ini", "127.0.0.1:8001", "127.0.0.1:9101")):
        path = site / name
        path.write_text(path.read_text().replace(old, new))
    setups.emperor_inis(site, setups.Shape(), 20001, 20002)
    http_ini, uwsgi_ini = ((site / n).read_text()
                           for n in ("http.ini", "uwsgi.ini"))
    assert "\nhttp = 127.0.0.1:20001\n" in http_ini
    assert "\nhttp-to = 127.0.0.1:20002\n" in http_ini
    assert "\nsocket = 127.0.0.1:20002\n" in uwsgi_ini
    assert "910" not in http_ini + uwsgi_ini


def test_static_target_is_read_against_uwsgi_with_keepalive():
    from bench import targets
    summary = {"W2": {"ugu-emperor": {"rate": 8000},
                      "uwsgi-emperor": {"rate": 11000},
                      "uwsgi-emperor-ka": {"rate": 400}}}
    [w2] = [c for c in targets.evaluate(summary, {})
            if c["target"].startswith("W2 ugu-emperor >= 10x")]
    assert w2 == {"target": "W2 ugu-emperor >= 10x uwsgi-emperor-ka",
                  "measured": "20.00x", "met": True}


def test_a_missing_reference_uwsgi_names_both_ways_to_give_one(
        tmp_path, monkeypatch):
    """In a clone that does not sit beside ../shared, the uWSGI setups
    are skipped with a reason that says how to run them: the variable the
    tests read too, or the tool."""
    from bench import peers
    monkeypatch.setattr(peers, "REFERENCE_TOOL", tmp_path / "nowhere")
    for value in (None, str(tmp_path / "no-uwsgi")):
        if value is None:
            monkeypatch.delenv("UGU_REFERENCE_UWSGI", raising=False)
        else:
            monkeypatch.setenv("UGU_REFERENCE_UWSGI", value)
        with pytest.raises(peers.Missing) as missing:
            peers.uwsgi()
        message = str(missing.value)
        assert "UGU_REFERENCE_UWSGI" in message, message
        assert str(tmp_path / "nowhere") in message, message
        if value is not None:
            assert value in message, message
