"""Running real ugu (and uWSGI, nginx) processes from tests.

Every process starts in a new session, so that it and all of its children
form one process group that `stop()` can end by its number.  Readiness is
awaited on the process's log or on a port, never on a sleep.
"""

import fcntl
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# The WSGI app of the router and http-socket tests.
ECHO_APP = Path(__file__).with_name("echo_app.py")
EXAMPLES = REPO / "examples"
UGU = [sys.executable, "-m", "ugu"]
DEFAULT_TIMEOUT = 20


# Ports handed out so far: a test may ask for several before binding one.
_GIVEN = set()


def free_port():
    """A port free on 127.0.0.1, below the kernel's ephemeral range: a
    port the kernel picks (bind to 0) is one it may also give to the next
    outgoing connection, which then takes it from the server meant to
    listen there."""
    low = _ephemeral_start()
    if low < 11000:
        # No room below the range: the kernel's pick, as a last resort.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    first, end = _slice(10000, low)
    for _ in range(200):
        port = random.randrange(first, end)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError(f"no free port found between {first} and {end}")


def _slice(first, end):
    """This test process's share of the ports [first, end): under
    pytest-xdist each worker draws from its own slice, so that two
    workers never hand out the same port between its check and its
    bind."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker.removeprefix("gw"))
    size = (end - first) // count
    return first + index * size, first + (index + 1) * size


def _ephemeral_start():
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def wait_until(predicate, timeout=DEFAULT_TIMEOUT, interval=0.02,
               what="condition"):
    """Poll predicate until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for "
                               f"{what}")
        time.sleep(interval)


def wait_for_port(port, host="127.0.0.1", timeout=DEFAULT_TIMEOUT):
    def accepting():
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            return False
        return True
    wait_until(accepting, timeout, what=f"{host}:{port} to accept")


# Every Process ever started, so that the session's end can stop any that
# a test's own teardown never reached (a test killed by its timeout).
STARTED = []


def stop_leftovers():
    for p in STARTED:
        if group_members(p.pgid):
            p.stop(signal.SIGKILL, timeout=1)


class Process:
    """A real process with its own process group and a log file (its
    stderr, and its stdout unless `stdout_path` names a file of its own);
    its stdin /dev/null unless `stdin` gives another (a pipe's end)."""

    def __init__(self, argv, cwd=None, env=None, log_path=None,
                 stdout_path=None, stdin=subprocess.DEVNULL):
        self.argv = list(argv)
        self.log_path = Path(log_path or _temp_log())
        self._log = open(self.log_path, "wb")
        full_env = {**os.environ, **(env or {})}
        full_env.setdefault("PYTHONUNBUFFERED", "1")
        with open(stdout_path or os.devnull, "wb") as stdout:
            self.popen = subprocess.Popen(
                self.argv, cwd=cwd, env=full_env, stdin=stdin,
                stdout=stdout if stdout_path else self._log,
                stderr=self._log, start_new_session=True)
        self.pid = self.popen.pid
        self.pgid = self.pid
        STARTED.append(self)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern, timeout=DEFAULT_TIMEOUT, count=1):
        """Wait until `pattern` (a regex) has matched `count` times in the
        log; return the last match."""
        regex = re.compile(pattern)

        def matched():
            found = list(regex.finditer(self.output()))
            if len(found) >= count:
                return found[count - 1]
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"process exited ({self.popen.returncode}) before "
                    f"logging {pattern!r}:\n{self.output()}")
            return None
        try:
            return wait_until(matched, timeout, what=repr(pattern))
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} in log within {timeout}s:"
                                 f"\n{self.output()}") from None

    def send_signal(self, signum):
        os.kill(self.pid, signum)

    def wait(self, timeout=DEFAULT_TIMEOUT):
        return self.popen.wait(timeout)

    def stop(self, signum=signal.SIGINT, timeout=10):
        """End the whole process group: `signum` first, SIGKILL after
        `timeout`.  Returns the leader's exit status."""
        if self.popen.poll() is None:
            _killpg(self.pgid, signum)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        _killpg(self.pgid, signal.SIGKILL)
        self.popen.wait()
        wait_until(lambda: not group_members(self.pgid), 5,
                   what=f"process group {self.pgid} to empty")
        self._log.close()
        return self.popen.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _killpg(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _processes():
    """(pid, state, ppid, pgid) of every process, from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        yield int(entry.name), fields[0], int(fields[1]), int(fields[2])


def group_members(pgid):
    """PIDs of live (non-zombie) processes in the process group."""
    return [pid for pid, state, _, group in _processes()
            if group == pgid and state != "Z"]


def children_of(pid):
    """PIDs of the live direct children of pid."""
    return [child for child, state, parent, _ in _processes()
            if parent == pid and state != "Z"]


_log_counter = 0


def _temp_log():
    global _log_counter
    _log_counter += 1
    folder = Path(os.environ.get("UGU_TEST_LOGS", "/tmp/ugu-test-logs"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{os.getpid()}-{_log_counter}.log"


def ugu(*args, **kw):
    """Start `python -m ugu ARGS` as a Process."""
    return Process([*UGU, *args], **kw)


def write_ini(path, **sections):
    """Write an INI file from {section: [(key, value), ...]}."""
    lines = []
    for section, pairs in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {value}" for key, value in pairs)
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def reference_uwsgi():
    """(path of the real uWSGI binary, None), installing it if needed; or
    (None, why it cannot be had here)."""
    explicit = os.environ.get("UGU_REFERENCE_UWSGI")
    if explicit:
        if os.access(explicit, os.X_OK):
            return explicit, None
        return None, f"UGU_REFERENCE_UWSGI={explicit} is not an executable"
    tool = REPO.parent / "shared" / "tools" / "reference-uwsgi"
    if not tool.exists():
        return None, (f"no {tool} to install it with, and "
                      f"UGU_REFERENCE_UWSGI does not name a uwsgi binary")
    # One install at a time: pytest-xdist's workers all ask at once, and
    # the tool's virtualenv is not made to be built twice in parallel.
    with open(Path(tempfile.gettempdir()) / "ugu-reference-uwsgi.lock",
              "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = subprocess.run(["bash", str(tool)], capture_output=True,
                                text=True, timeout=900)
    path = result.stdout.strip().splitlines()[-1] if result.stdout else ""
    if result.returncode != 0 or not os.access(path, os.X_OK):
        return None, (f"{tool} failed (exit {result.returncode}); set "
                      f"UGU_REFERENCE_UWSGI to a uwsgi binary instead")
    return path, None


def start_pair(make, uwsgi_binary, *args):
    """{"ugu": make(ugu's command, *args), "uwsgi": make([uwsgi_binary],
    *args)}: a differential test's two instances (each with its
    `process`), started alike; stop_pair stops them."""
    started = {}
    try:
        for name, command in (("ugu", UGU), ("uwsgi", [uwsgi_binary])):
            started[name] = make(command, *args)
    except BaseException:
        stop_pair(started)
        raise
    return started


def stop_pair(started):
    for instance in started.values():
        instance.process.stop()


def at_once(function, count, timeout=30):
    """What function() returned in each of `count` threads started
    together, as each ended (within `timeout` seconds of its own)."""
    results = []
    threads = [threading.Thread(target=lambda: results.append(function()))
               for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results


def http10_get(port, path="/"):
    """The raw answer to an HTTP/1.0 GET on its own connection, read
    until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), 10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        return read_to_eof(s)


def get_body(port, path):
    """The body of a GET on its own HTTP/1.1 connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def get_json(port, path):
    """The JSON a test app answers a GET with."""
    return json.loads(get_body(port, path))


def uwsgi_request(port, path="/", method="GET", headers=(), body=b"",
                  protocol="HTTP/1.1", extra_vars=(), modifier1=0):
    """Send one uwsgi-protocol request as a router would; return the raw
    bytes the worker answers until it closes."""
    packet = uwsgi_packet(path, method, headers, body, protocol,
                          extra_vars, modifier1)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(packet)
        return read_to_eof(s)


def uwsgi_packet(path="/", method="GET", headers=(), body=b"",
                 protocol="HTTP/1.1", extra_vars=(), modifier1=0):
    """A uwsgi-protocol request as a router sends it, body included."""
    from ugu import protocol as codec
    path_info, _, query = path.partition("?")
    pairs = [("REQUEST_METHOD", method), ("REQUEST_URI", path),
             ("PATH_INFO", path_info), ("QUERY_STRING", query),
             ("SERVER_PROTOCOL", protocol), ("SCRIPT_NAME", ""),
             ("SERVER_NAME", "test"), ("SERVER_PORT", "80"),
             ("REMOTE_ADDR", "127.0.0.1"), ("REMOTE_PORT", "5000")]
    if body:
        pairs.append(("CONTENT_LENGTH", str(len(body))))
    for name, value in headers:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        pairs.append((key, value))
    pairs.extend(extra_vars)
    packet = codec.encode([(k.encode("latin-1"), v.encode("latin-1"))
                           for k, v in pairs], modifier1=modifier1)
    return packet + body


def answer_to_raw(port, data):
    """What the server sends back to `data` on a plain TCP connection,
    until it closes (a reset counts as closing); no data: the test's
    side closes at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if not data:
            s.shutdown(socket.SHUT_WR)
        try:
            return read_to_eof(s)
        except ConnectionResetError:
            return b""


def tls_connect(port, context, name="localhost"):
    """A TLS connection to 127.0.0.1:`port`, asking for `name` (SNI,
    and the name the context checks), its handshake done."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname=name)
    except BaseException:
        raw.close()
        raise


def read_to_eof(sock):
    """Everything the peer sends until it closes the connection."""
    chunks = []
    while data := sock.recv(65536):
        chunks.append(data)
    return b"".join(chunks)


def read_to_close(sock):
    """Everything the peer sends until it closes the connection, and
    whether the close was a reset."""
    chunks = []
    try:
        while data := sock.recv(65536):
            chunks.append(data)
    except ConnectionResetError:
        return b"".join(chunks), True
    return b"".join(chunks), False


def split_response(raw):
    """(status line, {lower-case header: value}, body) of raw HTTP."""
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers, body


class Receiver:
    """A datagram socket the test binds, UDP on 127.0.0.1's free port or
    unix at `path`: a thread reads it as datagrams come (a unix socket's
    queue holds few), into `got`; `address` is what to send them to."""

    def __init__(self, path=None):
        if path is None:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self.sock.bind(str(path))
            self.address = str(path)
        self.sock.settimeout(0.05)
        self.got = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._done.is_set():
            try:
                self.got.append(self.sock.recv(65536))
            except (socket.timeout, BlockingIOError):
                pass

    def wait_for(self, pattern):
        """The datagrams, once one matches `pattern` (bytes)."""
        def found():
            return any(re.search(pattern, d) for d in list(self.got))
        wait_until(found, what=f"a datagram matching {pattern!r}")
        return list(self.got)

    def wait_for_packet(self, packet, after=0):
        """The index in `got` of the datagram `packet`, once one comes
        at `after` or later."""
        wait_until(lambda: packet in self.got[after:],
                   what=f"the packet {packet!r}")
        return self.got.index(packet, after)

    def close(self):
        self._done.set()
        self._thread.join()
        self.sock.close()


# Certificates for the TLS tests, made with the openssl command, each
# good for a day.

def need_openssl():
    """Skip the test where no openssl command can make its
    certificates."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make the test certificates with")


def _openssl(*args):
    subprocess.run([shutil.which("openssl"), *map(str, args)], check=True,
                   capture_output=True)


def self_signed(cert, key, subject, alt=None):
    """The files `cert`, self-signed for `subject` (and the DNS name
    `alt`), and its `key`."""
    extension = ("-addext", f"subjectAltName=DNS:{alt}") if alt else ()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
            subject, "-days", "1", *extension, "-keyout", key, "-out", cert)


def signed(cert, key, subject, ca, alt=None):
    """The files `cert`, for `subject` (and the DNS name `alt`) signed by
    `ca` (its certificate and key files), and its `key`; the request
    beside them, as NAME.csr."""
    csr = Path(cert).with_suffix(".csr")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-utf8", "-subj",
            subject, "-keyout", key, "-out", csr)
    extension = ()
    if alt:
        extfile = csr.with_suffix(".ext")
        extfile.write_text(f"subjectAltName=DNS:{alt}\n")
        extension = ("-extfile", extfile)
    ca_cert, ca_key = ca
    _openssl("x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key,
            "-CAcreateserial", "-days", "1", *extension, "-out", cert)
