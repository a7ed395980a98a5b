"""RPC: the uwsgi module's register_rpc, rpc_list, call and rpc for
this process's functions, answering as uWSGI's, on ugu and the real
uWSGI with the same app; a call to another instance over the uwsgi
protocol (modifier1 173), between ugu and uWSGI both ways; rpc-max; a
worker's own functions."""

import socket
import threading

import pytest

from tests.evalapp import one, run, start
from ugu import protocol
from tests.support import free_port


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param


# Each expression, in order, with what the real uWSGI 2.0 answered (the
# app registers hello, fail, text and big as it is imported).
LOCAL = [
    ('uwsgi.rpc_list()',
     "(b'hello', b'fail', b'text', b'big')"),
    ('uwsgi.call(b"hello", b"a", b"b")',
     "b'hello a,b'"),
    ('uwsgi.call("hello")',
     'ValueError: unable to call rpc function'),
    ('uwsgi.call(b"hello", "a")',
     'ValueError: unable to call rpc function'),
    ('uwsgi.call(b"nope")',
     'None'),
    ('uwsgi.call(b"fail")',
     'None'),
    ('uwsgi.call(b"text")',
     'None'),
    ('uwsgi.call()',
     'ValueError: unable to call rpc function'),
    ('uwsgi.rpc(None, b"hello", b"x")',
     "b'hello x'"),
    ('uwsgi.rpc("", b"hello")',
     "b'hello '"),
    ('uwsgi.rpc(5, b"hello")',
     "b'hello '"),
    ('uwsgi.rpc(b"hello")',
     'ValueError: unable to call rpc function'),
    ('uwsgi.register_rpc(b"x", hello)',
     'TypeError: register_rpc() argument 1 must be str, not bytes'),
    ('uwsgi.register_rpc("x"*256, hello)',
     'ValueError: unable to register rpc function'),
    ('uwsgi.register_rpc()',
     'TypeError: register_rpc() takes at least 2 arguments (0 given)'),
]

def test_the_functions_answer_as_uwsgi_s(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server)
    codes = [code for code, _ in LOCAL]
    assert list(zip(codes, run(port, *codes))) == LOCAL
    p.wait_for_log('registered shared/inherited RPC function "big"\n')
    p.wait_for_log(r'RuntimeError: boom\n')


def _node(start_server, folder, server):
    """An instance of the app in `folder`, with a uwsgi socket; (its HTTP
    port, its uwsgi port)."""
    node = free_port()
    folder.mkdir()
    _, port = start(start_server, folder, server,
                    ("socket", f"127.0.0.1:{node}"))
    return port, node


@pytest.mark.parametrize("caller, called", [
    ("ugu", "ugu"), ("ugu", "uwsgi"), ("uwsgi", "ugu")])
def test_a_call_to_another_node(start_server, tmp_path, caller, called):
    """The packet and its answer as uWSGI's: arguments (an empty one
    skipped, a last empty one refusing the packet), no answer for no
    bytes, a result over 65535 bytes in its long form."""
    port, _ = _node(start_server, tmp_path / "caller", caller)
    _, node = _node(start_server, tmp_path / "called", called)
    target = f"127.0.0.1:{node}"
    assert run(port, f"uwsgi.rpc({target!r}, b'hello', b'r', b's')",
               f"uwsgi.rpc({target.encode()!r}, b'hello', b'', b's')",
               f"uwsgi.rpc({target!r}, b'hello', b'a', b'')",
               f"uwsgi.rpc({target!r}, b'nope')",
               f"uwsgi.rpc({target!r}, b'text')",
               f"len(uwsgi.rpc({target!r}, b'big', b'70000'))",
               f"len(uwsgi.rpc({target!r}, b'big', b'65535'))",
               f"uwsgi.rpc('127.0.0.1:{free_port()}', b'hello')") == [
        "b'hello r,s'", "b'hello s'", "None", "None", "None", "70000",
        "65535", "None"]


def test_rpc_max_and_a_workers_own_functions(start_server, tmp_path,
                                             server):
    """A worker's registration is its own (the master's four are every
    worker's); past rpc-max, registering fails."""
    p, port = start(start_server, tmp_path, server, ("rpc-max", "5"))
    assert run(port, "uwsgi.register_rpc('mine', hello)",
               "uwsgi.rpc_list()",
               "uwsgi.register_rpc('more', hello)",
               "uwsgi.register_rpc('mine', fail)",
               "uwsgi.call(b'mine')") == [
        "True", "(b'hello', b'fail', b'text', b'big', b'mine')",
        "ValueError: unable to register rpc function", "True", "None"]
    p.wait_for_log(r'registered RPC function "mine" on worker 1\n')


def test_what_uwsgi_crashes_on_is_refused(start_server, tmp_path):
    """More than 255 arguments (uWSGI overruns its array); an argument
    over 65535 bytes reaches a local function whole (uWSGI cuts it to
    the low 16 bits of its length)."""
    _, port = start(start_server, tmp_path, "ugu")
    assert run(port, "uwsgi.call(b'hello', *[b'a'] * 256)",
               "len(uwsgi.call(b'hello', b'a' * 70000))") == [
        "ValueError: unable to call rpc function", "70006"]


def test_a_remote_call_over_the_packets_limit(start_server, tmp_path):
    p, port = start(start_server, tmp_path, "ugu")
    assert one(port, "uwsgi.rpc('127.0.0.1:1', b'hello', b'a' * 70000)") \
        == "None"
    p.wait_for_log(r"RPC packet length overflow!!! Must be less than or "
                   r"equal to 65535, have 70009\n")


def _greedy_node(length, offered):
    """A fake node that answers a call with the long form saying
    `length` bytes follow, then offers `offered` bytes; (its port, its
    thread, a list that gets how many bytes the caller took before it
    hung up)."""
    listener = socket.create_server(("127.0.0.1", 0))
    taken = []

    def answer():
        with listener:
            conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            block = protocol.encode_vars(
                [(b"CONTENT_LENGTH", str(length).encode())])
            conn.sendall(protocol.HEADER.pack(173, len(block), 5) + block)
            sent, chunk = 0, b"z" * 65536
            try:
                while sent < offered:
                    sent += conn.send(chunk)
            except OSError:
                pass
            taken.append(sent)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, taken


def test_a_long_answer_the_memory_cannot_hold(start_server, tmp_path,
                                              server):
    """A node that announces more bytes than this machine can hold: uWSGI
    asks for the whole buffer at once, is refused and hangs up; ugu
    likewise, rather than reading what the node sends until it runs out of
    memory."""
    p, port = start(start_server, tmp_path, server)
    node, thread, taken = _greedy_node(1 << 60, 256 << 20)
    assert one(port, f"uwsgi.rpc('127.0.0.1:{node}', b'hello')") == "None"
    thread.join(10)
    assert taken and taken[0] < 64 << 20
