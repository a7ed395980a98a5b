"""`py-tracebacker PREFIX`: each worker tells the Python stack of every
one of its threads to whoever connects to the unix socket PREFIX<wid>
(`ugu --connect-and-read PREFIX1` prints it), as uWSGI's Python plugin
does; a harakiri logs the doomed worker's before killing it.

The text is uWSGI's, for the tools that parse it: a header, then one
line a frame, outermost first, `thread_id = NAME filename = F lineno = N
function = F line = SOURCE`, and a blank line after each thread.  uWSGI
serves its requests from C, so its stacks start at the app's callable
and an idle core, the tracebacker and the master's helpers show nothing;
ugu leaves out its own frames (and the standard library's that started
its threads) to give the same picture.  A gevent worker shows, as
uWSGI's, what its one thread runs now: the hub, mostly, not the
greenlets waiting in it.

The socket is bound by a real thread (not a greenlet), with the socket
options' mode (chmod-socket); a worker that cannot bind it serves on
without one, as uWSGI's does.  The file stays at a worker's end, for its
successor to bind again; vacuum removes it when the instance ends.
"""

import os
import socket
import stat
import sys
import threading
import traceback

from ugu import abstract, log
from ugu.vassal import sockets
from ugu.vassal.async_worker import unpatched

HEADER = "*** uWSGI Python tracebacker output ***\n\n"
# uWSGI's names: the tracebacker's thread, and a thread `threading` does
# not know (one started with _thread).
THREAD_NAME = "uWSGITraceBacker"
UNNAMED = "<UnnamedPythonThread>"
# The pause after a failed accept() before the next one.
ACCEPT_RETRY_SECONDS = 1

# As much as a read takes, uWSGI's.
BUFFER = 8192
_STDLIB = os.path.dirname(os.path.abspath(threading.__file__)) + os.sep


def address(prefix, wid):
    """Worker `wid`'s socket: the option's value and the worker id."""
    return f"{prefix}{wid}"


def start(config, wid):
    """Bind worker `wid`'s socket and serve it from a thread of its own,
    where py-tracebacker asks for one."""
    prefix = config["py-tracebacker"]
    if not prefix:
        return
    path = address(prefix, wid)
    try:
        sock = _bind(path, config["listen"], sockets.socket_mode(config))
    except OSError as e:
        log.log(f"bind(): {e.strerror or e} [core/socket.c line 230]")
        log.log(f"worker {wid} has no tracebacker: py-tracebacker cannot "
                f"bind {path} (is its folder there, and writable?)")
        return
    log.log(f"python tracebacker for worker {wid} available on {path}")
    # Taken here, in the main thread: in a gevent worker `threading`
    # knows it by its greenlet's id, not by the thread's.
    main = unpatched("_thread", "get_ident")()
    unpatched("_thread", "start_new_thread")(_serve, (sock, main))


def _bind(path, backlog, mode):
    """A listening unix socket at `path` (`@NAME`: an abstract one), an
    earlier socket's file replaced, as uWSGI binds it."""
    sock = unpatched("socket", "socket")(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if abstract.bound_abstract(path):
            abstract.announce()
            sock.bind(abstract.bind_sockaddr(path))
        else:
            _remove_socket_file(path)
            sock.bind(path)
            if mode is not None:
                sockets.chmod(sock, mode)
        sock.listen(backlog)
    except OSError:
        sock.close()
        raise
    return sock


def _remove_socket_file(path):
    """uWSGI removes whatever is there; a file that is not a socket is
    not ours to remove, and the bind then fails on it."""
    try:
        if stat.S_ISSOCK(os.stat(path).st_mode):
            os.unlink(path)
    except FileNotFoundError:
        pass


def _serve(sock, main):
    threading.current_thread().name = THREAD_NAME
    while True:
        try:
            conn, _ = sock.accept()
        except OSError as e:
            # Out of descriptors, say: uWSGI's line.  uWSGI then tries
            # again at once, spinning and filling the log while the cause
            # lasts; a second's pause keeps both in bounds.
            log.log(f"accept(): {e.strerror} [plugins/python/"
                    f"tracebacker.c line 103]")
            unpatched("time", "sleep")(ACCEPT_RETRY_SECONDS)
            continue
        with conn:
            try:
                text = dump(main=main)
                conn.sendall(text.encode("utf-8", "backslashreplace"))
            except OSError as e:
                # The reader left early: its loss alone.
                log.log(f"tracebacker: write(): {e.strerror}")


def dump(frames=None, main=None):
    """The text of every thread's stack (`frames`: sys._current_frames()
    by default), as uWSGI writes it; `main` is the main thread's id."""
    if frames is None:
        frames = sys._current_frames()
    names = {t.ident: t.name for t in threading.enumerate()}
    if main is not None:
        names[main] = threading.main_thread().name
    parts = [HEADER]
    for ident, frame in frames.items():
        stack = app_stack(traceback.extract_stack(frame))
        if stack:
            parts.append(_thread_text(names.get(ident, UNNAMED), stack))
    return "".join(parts)


def _thread_text(name, stack):
    lines = [f"thread_id = {name} filename = {f.filename} lineno = "
             f"{f.lineno} function = {f.name} line = {f.line or ''}\n"
             for f in stack]
    return "".join(lines) + "\n"


def app_stack(stack):
    """The frames of a stack uWSGI would show.  A thread of ugu's own (a
    core, the main thread, a helper) starts in the standard library
    (threading, runpy) or the script that started ugu, and goes into ugu
    before anything else: that start is C in uWSGI, dropped; ugu's
    frames are dropped anywhere."""
    first = next((n for n, f in enumerate(stack)
                  if not log.app_file(f.filename)), None)
    if first is not None and all(_stdlib(f) for f in stack[:first]):
        stack = stack[first:]
    return log.app_frames(stack)


def _stdlib(frame):
    """Whether a frame is of the standard library, or of the script that
    started ugu (the console script `ugu`)."""
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return frame.filename.startswith((_STDLIB, "<frozen ")) or \
        frame.filename == main


def harakiri_look(config):
    """What harakiri calls with a doomed worker's id before killing it,
    as uWSGI's Python plugin does: its stacks, logged.  None without
    py-tracebacker."""
    prefix = config["py-tracebacker"]
    if not prefix:
        return None
    return lambda wid: _log_stacks(address(prefix, wid),
                                   config["socket-timeout"])


def _log_stacks(path, timeout):
    """What the tracebacker at `path` tells, logged; as much as came
    where it stops answering for `timeout` seconds (a worker holding the
    GIL in C never does), nothing where it is not there."""
    told = []
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(abstract.sockaddr(path))
        while data := sock.recv(BUFFER):
            told.append(data)
    except OSError as e:
        # Not there (it could not bind), or it stopped answering.
        log.log(f"HARAKIRI: py-tracebacker {path}: {e.strerror or e}")
    finally:
        sock.close()
    if told:
        text = b"".join(told).decode("utf-8", "replace")
        # Its last blank line kept, as uWSGI logs it.
        log.log(text.removesuffix("\n"))


def vacuum(config):
    """At the instance's end under vacuum: the workers' socket files,
    which uWSGI's vacuum leaves (a file that is not a socket is not
    ours)."""
    prefix = config["py-tracebacker"]
    if not prefix or abstract.is_abstract(prefix):
        return
    for wid in range(1, config["processes"] + 1):
        path = address(prefix, wid)
        try:
            if not stat.S_ISSOCK(os.stat(path).st_mode):
                continue
            os.unlink(path)
        except OSError:
            continue    # not there: a worker that never bound it
        log.log(f"VACUUM: unix socket {path} (tracebacker) removed.")
