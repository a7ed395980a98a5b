"""The sharedarea (`sharedarea = N`): the uwsgi module's functions
answering and refusing as uWSGI's, on ugu and the real uWSGI with the
same app; one area that two workers share, with its lock; the forms of
the option; a lock that a dead worker held."""

import threading

import pytest

from tests.evalapp import one, run, start
from tests.support import free_port, wait_for_port, wait_until, write_ini


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param


# Each expression, in order, with what the real uWSGI 2.0 answered
# (a worker crashed for some other expressions, which ugu refuses: see
# test_what_uwsgi_crashes_on_is_refused).
EXPECTED = [
    ('uwsgi.sharedarea_read(0,0,4)',
     "b'\\x00\\x00\\x00\\x00'"),
    ('uwsgi.sharedarea_read(0,4090)',
     "b'\\x00\\x00\\x00\\x00\\x00\\x00'"),
    ('uwsgi.sharedarea_read(0,4096)',
     'ValueError: error calling uwsgi_sharedarea_read()'),
    ('uwsgi.sharedarea_read(0,4095,2)',
     'ValueError: error calling uwsgi_sharedarea_read()'),
    ('uwsgi.sharedarea_read(1,0)',
     'ValueError: error calling uwsgi_sharedarea_read()'),
    ('uwsgi.sharedarea_read(0,-1)',
     'ValueError: error calling uwsgi_sharedarea_read()'),
    ('uwsgi.sharedarea_read(0,2**63)',
     'OverflowError: int too big to convert'),
    ('uwsgi.sharedarea_read(2**31,0)',
     'OverflowError: signed integer is greater than maximum'),
    ('uwsgi.sharedarea_read("a",0)',
     "TypeError: 'str' object cannot be interpreted as an integer"),
    ('uwsgi.sharedarea_read(0,1.5)',
     "TypeError: 'float' object cannot be interpreted as an integer"),
    ('uwsgi.sharedarea_write(0,0,"abc")',
     'None'),
    ('uwsgi.sharedarea_read(0,0,4)',
     "b'abc\\x00'"),
    ('uwsgi.sharedarea_write(0,0,bytearray(b"x"))',
     'TypeError: sharedarea_write() argument 3 must be read-only bytes-like object, not bytearray'),
    ('uwsgi.sharedarea_write(0,4094,b"abc")',
     'ValueError: error calling uwsgi_sharedarea_write()'),
    ('uwsgi.sharedarea_writebyte(0,0,200)',
     'None'),
    ('uwsgi.sharedarea_readbyte(0,0)',
     '-56'),
    ('uwsgi.sharedarea_writebyte(0,0,256)',
     'OverflowError: unsigned byte integer is greater than maximum'),
    ('uwsgi.sharedarea_writebyte(0,0,-1)',
     'OverflowError: unsigned byte integer is less than minimum'),
    ('uwsgi.sharedarea_write16(0,0,70000)',
     'ValueError: error calling uwsgi_sharedarea_write16()'),
    ('uwsgi.sharedarea_write16(0,0,5)',
     'None'),
    ('uwsgi.sharedarea_read16(0,0)',
     '5'),
    ('uwsgi.sharedarea_write16(0,0,65535)',
     'None'),
    ('uwsgi.sharedarea_read16(0,0)',
     '-1'),
    ('uwsgi.sharedarea_write32(0,0,-5)',
     'None'),
    ('uwsgi.sharedarea_read32(0,0)',
     '-5'),
    ('uwsgi.sharedarea_write32(0,0,2**40+7)',
     'None'),
    ('uwsgi.sharedarea_read32(0,0)',
     '7'),
    ('uwsgi.sharedarea_write64(0,0,2**63)',
     'OverflowError: int too big to convert'),
    ('uwsgi.sharedarea_write64(0,0,-3)',
     'None'),
    ('uwsgi.sharedarea_read64(0,0)',
     '-3'),
    ('uwsgi.sharedarea_readlong(0,0)',
     '-3'),
    ('uwsgi.sharedarea_inc64(0,0)',
     'None'),
    ('uwsgi.sharedarea_inc64(0,0,10)',
     'None'),
    ('uwsgi.sharedarea_read64(0,0)',
     '8'),
    ('uwsgi.sharedarea_inc32(0,0,2**31)',
     'OverflowError: signed integer is greater than maximum'),
    ('uwsgi.sharedarea_dec32(0,0)',
     'None'),
    ('uwsgi.sharedarea_read32(0,0)',
     '7'),
    ('uwsgi.sharedarea_dec64(0,0,100)',
     'None'),
    ('uwsgi.sharedarea_read64(0,0)',
     '-93'),
    ('uwsgi.sharedarea_writelong(0,0,2**63-1)',
     'None'),
    ('uwsgi.sharedarea_inclong(0,0)',
     'None'),
    ('uwsgi.sharedarea_read64(0,0)',
     '-9223372036854775808'),
    ('uwsgi.sharedarea_inclong(0,0,2**63)',
     'OverflowError: Python int too large to convert to C long'),
    ('uwsgi.sharedarea_inc64(0,4088)',
     'None'),
    ('uwsgi.sharedarea_read64(0,4088)',
     '1'),
    ('uwsgi.sharedarea_write64(0,4089,1)',
     'ValueError: error calling uwsgi_sharedarea_write64()'),
    ('uwsgi.sharedarea_object(3)',
     'ValueError: cannot get an object from sharedarea 3'),
    ('len(uwsgi.sharedarea_memoryview(0))',
     '4096'),
    ('uwsgi.sharedarea_memoryview(0).readonly',
     'False'),
    ('uwsgi.sharedarea_memoryview(5)',
     'ValueError: cannot get a memoryview object from sharedarea 5'),
    ('uwsgi.sharedarea_rlock(0)',
     'None'),
    ('uwsgi.sharedarea_unlock(0)',
     'None'),
    ('uwsgi.sharedarea_wlock(0)',
     'None'),
    ('uwsgi.sharedarea_unlock(0)',
     'None'),
    ('uwsgi.sharedarea_rlock(1)',
     'ValueError: error calling uwsgi_sharedarea_rlock()'),
    ('uwsgi.sharedarea_update',
     "AttributeError: module 'uwsgi' has no attribute 'sharedarea_update'"),
    ('uwsgi.sharedarea_read(0)',
     'TypeError: sharedarea_read() takes at least 2 arguments (1 given)'),
    ('uwsgi.sharedarea_read(0,0,0,0)',
     'TypeError: sharedarea_read() takes at most 3 arguments (4 given)'),
    ('uwsgi.sharedarea_read(0,pos=0)',
     'TypeError: sharedarea_read() takes no keyword arguments'),
    ('uwsgi.sharedarea_write(0,0,b"")',
     'None'),
    ('uwsgi.sharedarea_write(0,0,None)',
     "TypeError: a bytes-like object is required, not 'NoneType'"),
    ('uwsgi.sharedarea_inc32(0,0,"x")',
     "TypeError: 'str' object cannot be interpreted as an integer"),
]

def test_the_functions_answer_as_uwsgi_s(start_server, tmp_path, server):
    _, port = start(start_server, tmp_path, server, ("sharedarea", "1"))
    codes = [code for code, _ in EXPECTED]
    assert list(zip(codes, run(port, *codes))) == EXPECTED


def test_what_uwsgi_crashes_on_is_refused(start_server, tmp_path):
    """A negative area id (uWSGI's worker reads before its table) and
    an 8-byte increment with 4 bytes of room (uWSGI checks 4 and writes
    8) get the ValueError of any other bad offset."""
    _, port = start(start_server, tmp_path, "ugu", ("sharedarea", "1"))
    assert run(port, "uwsgi.sharedarea_read(-1, 0)",
               "uwsgi.sharedarea_inc64(0, 4092)",
               "uwsgi.sharedarea_dec64(0, 4089)",
               "uwsgi.sharedarea_read(0, 0, -1)") == [
        "ValueError: error calling uwsgi_sharedarea_read()",
        "ValueError: error calling uwsgi_sharedarea_inc64()",
        "ValueError: error calling uwsgi_sharedarea_dec64()",
        "ValueError: error calling uwsgi_sharedarea_read()"]


def test_two_workers_share_the_area_and_its_lock(start_server, tmp_path,
                                                 server):
    """Worker A takes the write lock, says so through the memoryview
    (which takes no lock), writes, and unlocks after a while; worker B's
    read, asked meanwhile, waits for the unlock and sees A's bytes."""
    _, port = start(start_server, tmp_path, server, ("sharedarea", "1"),
                    ("processes", "2"))
    holder = []
    thread = threading.Thread(target=lambda: holder.append(one(port, (
        "uwsgi.sharedarea_wlock(0), "
        "uwsgi.sharedarea_memoryview(0).__setitem__(100, "
        "uwsgi.worker_id()), time.sleep(1), "
        "uwsgi.sharedarea_write(0, 0, b'done'), "
        "uwsgi.sharedarea_unlock(0)"))))
    thread.start()
    wait_until(lambda: one(port, "uwsgi.sharedarea_memoryview(0)[100]")
               != "0")
    found = one(port, "uwsgi.sharedarea_read(0, 0, 4), uwsgi.worker_id(), "
                      "uwsgi.sharedarea_read8(0, 100)")
    thread.join()
    data, reader, writer = found.strip("()").split(", ")
    assert data == "b'done'" and reader != writer
    assert holder == ["(None, None, None, None, None)"]


def test_a_lock_dies_with_its_holder(start_server, tmp_path):
    """A worker that ends holding the write lock leaves it free (uWSGI's
    other workers would wait on it for ever)."""
    _, port = start(start_server, tmp_path, "ugu", ("sharedarea", "1"))
    with pytest.raises(OSError):
        one(port, "uwsgi.sharedarea_wlock(0), os._exit(1)")
    wait_for_port(port)
    assert one(port, "uwsgi.sharedarea_read(0, 0, 2)", timeout=5) == \
        "b'\\x00\\x00'"


def test_the_forms_of_the_option(start_server, tmp_path):
    """Pages, pages= and size= (rounded up to pages), and file=PATH with
    size=, whose bytes are the file's."""
    backing = tmp_path / "backing"
    backing.write_bytes(b"from the file" + bytes(4096 - 13))
    _, port = start(start_server, tmp_path, "ugu", ("sharedarea", "2"),
                    ("sharedarea", "pages=1"), ("sharedarea", "size=5000"),
                    ("sharedarea", f"file={backing},size=4096"))
    assert run(port, *(f"len(uwsgi.sharedarea_memoryview({n}))"
                       for n in range(4)),
               "uwsgi.sharedarea_read(3, 0, 13)",
               "uwsgi.sharedarea_write(3, 0, b'FROM')") == [
        "8192", "4096", "8192", "4096", "b'from the file'", "None"]
    assert backing.read_bytes()[:13] == b"FROM the file"


@pytest.mark.parametrize("value, said", [
    ("0", "'0' is not a number of pages"),
    ("fd=3,size=4096", "sharedarea key 'fd'"),
    ("pages=1,color=red", "'color=red' is not a sharedarea KEY=VALUE"),
    ("file=/nonexistent/x,size=10", 'open("/nonexistent/x")'),
])
def test_a_bad_line_stops_the_start(procs, tmp_path, value, said):
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{free_port()}"),
        ("sharedarea", value)])
    p = procs.ugu("--ini", str(ini), cwd=tmp_path)
    assert p.wait() != 0
    assert "option 'sharedarea'" in p.output() and said in p.output()


THREADS_TOUCH_THE_AREA = (
    "[t.start() or t.join() for t in [threading.Thread(target=lambda: ("
    "uwsgi.sharedarea_inc64(0, 0), uwsgi.queue_push(b'x'))) "
    "for _ in range(200)]] and len(os.listdir('/proc/self/fd'))")


def test_a_thread_per_job_leaks_no_descriptor(start_server, tmp_path):
    """Each thread locks through a file of its own; a thread that ends
    closes it (before, 200 threads left 400 descriptors open, and an app
    starting a thread per job ran out of them)."""
    _, port = start(start_server, tmp_path, "ugu", ("sharedarea", "1"),
                    ("queue", "4"), ("enable-threads", "true"))
    before = int(one(port, "len(os.listdir('/proc/self/fd'))"))
    after = int(one(port, THREADS_TOUCH_THE_AREA))
    assert after - before < 10
    assert one(port, "uwsgi.sharedarea_read64(0, 0)") == "200"


def test_a_thread_that_ends_holding_the_lock_frees_it(start_server,
                                                      tmp_path):
    """uWSGI's other threads and workers would wait on it for ever."""
    _, port = start(start_server, tmp_path, "ugu", ("sharedarea", "1"),
                    ("processes", "2"), ("enable-threads", "true"))
    assert one(port, "(lambda t: (t.start(), t.join()))(threading.Thread("
                     "target=lambda: uwsgi.sharedarea_wlock(0)))") == \
        "(None, None)"
    assert run(port, "uwsgi.sharedarea_read8(0, 0)", timeout=5) == ["0"]
    assert run(port, "uwsgi.sharedarea_read8(0, 0)", timeout=5) == ["0"]
