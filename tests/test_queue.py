"""The queue (`queue = N`, `queue-blocksize`, `queue-store`): the uwsgi
module's functions answering as uWSGI's, on ugu and the real uWSGI
with the same app; two workers sharing it; a store file that either
server recovers from the other."""

import struct
import threading

import pytest

from tests.evalapp import one, run, start
from tests.support import free_port, write_ini


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param


# Each expression, in order, with what the real uWSGI 2.0 answered for a
# queue of 4 slots of 8192 bytes.
EXPECTED = [
    ('uwsgi.queue_size',
     '4'),
    ('uwsgi.queue_push(b"a")',
     'True'),
    ('uwsgi.queue_push("bé")',
     'True'),
    ('uwsgi.queue_push(b"")',
     'None'),
    ('uwsgi.queue_push(b"x"*8176)',
     'True'),
    ('uwsgi.queue_push(b"x"*8177)',
     'None'),
    ('uwsgi.queue_slot()',
     '3'),
    ('uwsgi.queue_pull_slot()',
     '0'),
    ('len(uwsgi.queue_last())',
     '8176'),
    ('[len(x) for x in uwsgi.queue_last(10)]',
     "TypeError: object of type 'NoneType' has no len()"),
    ('uwsgi.queue_get(0)',
     "b'a'"),
    ('uwsgi.queue_get(-1)',
     'None'),
    ('uwsgi.queue_get(4)',
     'None'),
    ('uwsgi.queue_pull()',
     "b'a'"),
    ('uwsgi.queue_pop()[:3]',
     "b'xxx'"),
    ('uwsgi.queue_slot()',
     '2'),
    ('uwsgi.queue_pull_slot()',
     '1'),
    ('uwsgi.queue_pop()',
     "b'b\\xc3\\xa9'"),
    ('uwsgi.queue_pop()',
     'None'),
    ('uwsgi.queue_slot()',
     '0'),
    ('uwsgi.queue_set(3,b"zz")',
     'True'),
    ('uwsgi.queue_set(4,b"zz")',
     'None'),
    ('uwsgi.queue_set(-1,b"zz")',
     'None'),
    ('uwsgi.queue_get(3)',
     "b'zz'"),
    ('uwsgi.queue_set(0,b"")',
     'None'),
    ('uwsgi.queue_last(2)',
     "[b'zz', None]"),
    ('uwsgi.queue_slot(1)',
     '0'),
    ('uwsgi.queue_push()',
     'TypeError: queue_push() takes exactly 1 argument (0 given)'),
    ('[uwsgi.queue_push(b"%d" % i) for i in range(6)]',
     '[True, True, True, True, True, True]'),
    ('uwsgi.queue_last(4)',
     "[b'5', b'4', b'3', b'2']"),
    ('[uwsgi.queue_pull() for i in range(6)]',
     "[b'5', b'2', b'3', b'4', None, None]"),
]

def test_the_functions_answer_as_uwsgi_s(start_server, tmp_path, server):
    _, port = start(start_server, tmp_path, server, ("queue", "4"))
    codes = [code for code, _ in EXPECTED]
    assert list(zip(codes, run(port, *codes))) == EXPECTED


def test_what_uwsgi_overruns_is_refused(start_server, tmp_path):
    """queue_set of a message longer than a slot holds (uWSGI's check
    lets 32 bytes more through, over the next slot's header) and
    queue_last(-1) (a crash in uWSGI)."""
    _, port = start(start_server, tmp_path, "ugu", ("queue", "4"))
    assert run(port, "uwsgi.queue_set(0, b'x' * 8177)",
               "uwsgi.queue_set(0, b'x' * 8176)",
               "uwsgi.queue_last(-1)") == [
        "None", "True",
        "ValueError: queue_last() takes a number of items, 0 or more"]


def test_two_workers_share_the_queue(start_server, tmp_path, server):
    """Worker A pushes and waits for an answer; worker B (A being busy)
    pulls A's message and pushes its answer."""
    _, port = start(start_server, tmp_path, server, ("queue", "4"),
                    ("processes", "2"))
    asking = []
    thread = threading.Thread(target=lambda: asking.append(one(port, (
        "uwsgi.queue_push(b'%d' % uwsgi.worker_id()), "
        "wait_for(lambda: uwsgi.queue_get(1)), uwsgi.worker_id()"))))
    thread.start()
    pulled = one(port, "wait_for(lambda: uwsgi.queue_pull()), "
                       "uwsgi.queue_push(b'%d' % uwsgi.worker_id())")
    thread.join()
    asker = asking[0].strip("()").split(", ")[2]
    assert pulled == f"(b'{asker}', True)"
    assert asking[0] != f"(True, b'{asker}', {asker})"



@pytest.mark.parametrize("first, second", [("ugu", "uwsgi"),
                                           ("uwsgi", "ugu")])
def test_either_server_recovers_the_others_store(start_server, tmp_path,
                                                 first, second):
    p, port = start(start_server, tmp_path, first, ("queue", "4"),
                    ("queue-blocksize", "4096"),
                    ("queue-store", str(tmp_path / "queue.store")))
    assert run(port, "uwsgi.queue_push(b'kept')",
               "uwsgi.queue_push(b'pulled')", "uwsgi.queue_pull()") == [
        "True", "True", "b'kept'"]
    p.stop()
    assert (tmp_path / "queue.store").stat().st_size == 16 + 4 * 4096
    p, port = start(start_server, tmp_path, second, ("queue", "4"),
                    ("queue-blocksize", "4096"),
                    ("queue-store", str(tmp_path / "queue.store")))
    p.wait_for_log("recovered queue from backing store file: ")
    assert run(port, "uwsgi.queue_slot()", "uwsgi.queue_pull_slot()",
               "uwsgi.queue_pull()") == ["2", "1", "b'pulled'"]


@pytest.mark.parametrize("pairs, said", [
    ((("queue-blocksize", "16"),), "holds no message"),
    ((("queue-blocksize", "1000"),),
     "invalid queue size/blocksize 1000: must be a multiple of memory "
     "page size"),
])
def test_a_bad_setting_stops_the_start(procs, tmp_path, pairs, said):
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{free_port()}"), ("queue", "3"),
        *pairs])
    p = procs.ugu("--ini", str(ini), cwd=tmp_path)
    assert p.wait() != 0
    assert said in p.output()


def test_a_store_of_another_size_stops_the_start(procs, tmp_path):
    (tmp_path / "queue.store").write_bytes(b"x" * 100)
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{free_port()}"), ("master", "true"),
        ("queue", "4"), ("queue-store", str(tmp_path / "queue.store"))])
    p = procs.ugu("--ini", str(ini), cwd=tmp_path)
    assert p.wait() != 0
    assert "invalid queue store file. Please remove it" in p.output()


def test_a_damaged_store_is_mended(start_server, tmp_path):
    """A header naming slots past the last and a slot that says it holds
    more than it can (uWSGI's worker dies on the first and reads past
    the slot on the second; ugu pushed nothing any more, and read the
    next slots' bytes for the message)."""
    store = bytearray(16 + 4 * 4096)
    struct.pack_into("=QQ", store, 0, 1000, 7)
    struct.pack_into("=QQ", store, 16 + 4096, 100000, 0)
    struct.pack_into("=QQ4s", store, 16 + 2 * 4096, 4, 0, b"kept")
    (tmp_path / "queue.store").write_bytes(store)
    p, port = start(start_server, tmp_path, "ugu", ("queue", "4"),
                    ("queue-blocksize", "4096"),
                    ("queue-store", str(tmp_path / "queue.store")))
    p.wait_for_log(r"the push and pull slots \(1000, 7\) are not all under "
                   r"4, set to \(0, 0\)")
    p.wait_for_log("slot 1 says it holds 100000 bytes, more than its 4080: "
                   "emptied")
    assert run(port, "uwsgi.queue_get(1)", "uwsgi.queue_get(2)",
               "uwsgi.queue_push(b'new')", "uwsgi.queue_slot()") == [
        "None", "b'kept'", "True", "1"]
