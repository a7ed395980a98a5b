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
