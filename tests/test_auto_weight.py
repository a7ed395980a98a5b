"""`auto-weight`: an instance's announces weigh its cores (processes
times threads), on ugu and on the real uWSGI alike."""

import socket

import pytest

from tests import support
from tests.test_subscriptions import free_udp_port
from ugu import subscription

APP = '''
def application(env, start_response):
    start_response("200 OK", [])
    return [b""]
'''


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("value, weight", [("true", 6), ("0", 3)])
def test_announces_weigh_the_cores(start_server, server, tmp_path, value,
                                   weight):
    app = tmp_path / "app.py"
    app.write_text(APP)
    udp = free_udp_port()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as inbox:
        inbox.bind(("127.0.0.1", udp))
        inbox.settimeout(15)
        start_server(server, [
            "--master", "--socket", f"127.0.0.1:{support.free_port()}",
            "--wsgi-file", str(app), "--processes", "2", "--threads", "3",
            "--weight", "3", "--auto-weight", value,
            "--subscribe-to", f"127.0.0.1:{udp}:w.example"])
        announce = subscription.decode(inbox.recv(65536))
    assert announce.key == b"w.example"
    assert (announce.cores, announce.weight) == (6, weight)
