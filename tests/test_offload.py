"""Offload threads under slow clients: one client that does not read must
neither lose its file nor hold up anybody else's, whether the cores are
threads or greenlets (the offload threads are real threads either way)."""

import os
import socket

import pytest

from tests import support
from tests.support import read_to_eof, split_response, uwsgi_request

BIG = 32 * 1024 * 1024


@pytest.fixture(params=[("--threads", "2"), ("--gevent", "10")],
                ids=["threads", "gevent"])
def worker(request, tmp_path, procs):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "big.bin").write_bytes(os.urandom(BIG))
    (tmp_path / "static" / "small.txt").write_bytes(b"small\n")
    port = support.free_port()
    p = procs.ugu("--master", "--socket", f"127.0.0.1:{port}",
                  "--check-static", "static/", "--offload-threads", "1",
                  *request.param, cwd=tmp_path)
    support.wait_for_port(port)
    p.port, p.root = port, tmp_path
    return p


def start_download(port, path):
    """A uwsgi request whose answer the caller reads later (or never)."""
    from ugu import protocol
    pairs = [(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", path.encode()),
             (b"REQUEST_URI", path.encode()),
             (b"SERVER_PROTOCOL", b"HTTP/1.1")]
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(protocol.encode(pairs))
    return s


def test_stalled_client_holds_up_no_one_and_gets_its_file(worker):
    stalled = [start_download(worker.port, "/big.bin") for _ in range(3)]
    worker.wait_for_log(r"GET /big\.bin => .* via offload\(\)", count=3)
    for _ in range(5):
        raw = uwsgi_request(worker.port, "/small.txt")
        assert split_response(raw)[2] == b"small\n"
    expected = (worker.root / "static" / "big.bin").read_bytes()
    for s in stalled:
        with s:
            assert split_response(read_to_eof(s))[2] == expected
