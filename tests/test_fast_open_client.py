"""`tcp-fast-open-client`: the routers open their connections to IPv4
nodes with sendto(MSG_FASTOPEN) in place of connect(), on ugu and on
the real uWSGI alike (seen through strace)."""

import shutil
import urllib.request

import pytest

from tests import support

APP = '''
def application(env, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"fast"]
'''


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("option", ["--tcp-fast-open-client",
                                    "--tcp-fastopen-client"])
def test_router_connects_with_fast_open(procs, request, tmp_path, server,
                                        option):
    if shutil.which("strace") is None:
        pytest.skip("no strace")
    app = tmp_path / "app.py"
    app.write_text(APP)
    front, back = support.free_port(), support.free_port()
    binary = support.UGU if server == "ugu" else \
        [request.getfixturevalue("uwsgi_binary")]
    trace = tmp_path / "trace"
    procs.start(["strace", "-f", "-e", "trace=sendto", "-o", str(trace),
                 *binary, "--master", "--http", f"127.0.0.1:{front}",
                 "--http-to", f"127.0.0.1:{back}",
                 "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app),
                 option])
    support.wait_for_port(front, timeout=20)
    support.wait_for_port(back, timeout=20)
    with urllib.request.urlopen(f"http://127.0.0.1:{front}/",
                                timeout=10) as reply:
        assert reply.read() == b"fast"
    assert f"MSG_FASTOPEN, {{sa_family=AF_INET, sin_port=htons({back})" \
        in trace.read_text()


def test_without_the_option_the_router_connects(procs, tmp_path):
    if shutil.which("strace") is None:
        pytest.skip("no strace")
    app = tmp_path / "app.py"
    app.write_text(APP)
    front, back = support.free_port(), support.free_port()
    trace = tmp_path / "trace"
    procs.start(["strace", "-f", "-e", "trace=sendto,connect", "-o",
                 str(trace), *support.UGU, "--master", "--http",
                 f"127.0.0.1:{front}", "--http-to", f"127.0.0.1:{back}",
                 "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app)])
    support.wait_for_port(front, timeout=20)
    with urllib.request.urlopen(f"http://127.0.0.1:{front}/",
                                timeout=10) as reply:
        assert reply.read() == b"fast"
    text = trace.read_text()
    assert "MSG_FASTOPEN" not in text and f"htons({back})" in text
