"""Static answers the router repeats: a static file's answer, relayed once
from a worker, answered again by the router itself while it still holds.

Through the tutorial's two vassals every static file costs a relay: the
router parses the request, connects to a worker, the worker looks the file
up and sends it, the router relays the answer.  Nginx serves the same file
with a twelfth of that CPU.  A file's answer is the same bytes for the same
request as long as the file is the same, so the router may answer it
itself, provided it can tell, for each request, that the worker would
answer the same:

- The router offers (modifier2 OFFER in the packet of a GET request
  whose head it has met before, where `http-modifier1` and
  `http-modifier2` are left at 0).  An ugu worker
  that sends a static file for it, and whose answer depends on nothing but
  the request's head and the files it looked at (no request routes,
  response routes that read neither the client's address nor metrics, no
  Expires headers), puts the marker header first in its head: what it
  looked at (each name, with the stat of the file it found there or None
  for nothing there), and its request log line but for the figures that
  vary.  It takes the offer for modifier2 0 everywhere it is seen.
- The router takes the marker out of the head (no client ever sees it),
  relays the answer as usual, and keeps the bytes it sent, under the
  request's whole head (method, target, Host, Accept-Encoding, cookies:
  anything the worker's answer may depend on).
- A request with that same head gets the kept bytes while every name
  looked at is as it was (the same file, by device, inode, size, mtime and
  ctime, or still nothing), for at most FRESH_SECONDS after the worker
  sent them: then the worker answers again, so that a worker reloaded with
  other options, or stopped, is heard within that time.  The router
  writes the request line the worker would have written, with its own pid
  and count, where the worker writes its lines.

The router and the worker must see the same files the same way: the marker
names the machine, mount namespace, root directory and user it was made
under, and a router elsewhere ignores it.  A worker that logs to another
place than the router (logto, a req-logger, a log encoder) offers nothing.
"""

import json
import os
import time

# The packet's modifier2 that offers; the Python plugin reads modifier2
# nowhere, so a uWSGI worker serves the request as with 0.
OFFER = 117
MARKER = b"X-Ugu-Static-Answer"
_MARKER_LINE = b"\r\n" + MARKER + b": "
_MARKER_NAME = MARKER.decode().lower()
FRESH_SECONDS = 1.0
# The largest answer, head (with the marker) and body, the router's fast
# path holds whole (ugu.router.fastpath.FAST_ANSWER) and so may keep: a
# larger one streams through the greenlet code.
LARGEST = 65536
# What the kept answers may hold at most, the bytes sent and their heads.
_KEPT_BYTES = 8 * 1024 * 1024
# A probe's own objects besides its name's characters: its tuple, the
# name's str, the signature's list and ints (CPython, 64-bit).
_PROBE_BYTES = 384
_FORMAT = 1


def _make_place():
    """The machine's boot, the mount namespace, the root directory and
    the user; "" where /proc cannot tell them."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
        namespace = os.readlink("/proc/self/ns/mnt")
        root = os.stat("/")
    except OSError:
        return ""
    return (f"{boot} {namespace} {root.st_dev}:{root.st_ino} "
            f"{os.geteuid()}:{os.getegid()}")


def place():
    """Where this process sees files from, as a marker names it ("" when
    unknown: no marker is made or taken); read when first asked, after
    a worker's chroot and privilege drop."""
    global _place
    if _place is None:
        _place = _make_place()
    return _place


_place = None


def signature(st):
    """What tells a file from the one it replaced, or from itself
    rewritten."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


# The worker's side.

def marker(probes, sink=None, line=None, size=0):
    """The marker's header line (with its CRLF) for the head of an answer:
    `probes` is [(name, signature or None)], `sink` the (device, inode)
    the worker's request lines go to, `line` its request line as a
    str.format template of pid, count, addr, size, date and msecs (None:
    the worker logs nothing), `size` the vars' bytes but the client's
    address and port, which vary."""
    body = {"v": _FORMAT, "place": place(),
            "probes": [[os.fsencode(name).decode("latin-1"), sig]
                       for name, sig in probes],
            "sink": sink, "line": line, "size": size}
    return (MARKER + b": " + json.dumps(body, separators=(",", ":"))
            .encode("latin-1") + b"\r\n")


def unforged(headers):
    """An app's headers for a request the router offered on, without any
    named as the marker: the router takes the marker from the head's first
    line, where only the worker's own may be."""
    for name, _ in headers:
        if len(name) == len(_MARKER_NAME) and name.lower() == _MARKER_NAME:
            return [h for h in headers if h[0].lower() != _MARKER_NAME]
    return headers


def line_template(text):
    """Text for a str.format template: its braces kept as they are."""
    return text.replace("{", "{{").replace("}", "}}")


# The router's side.

def take_marker(answer, end):
    """(the answer without its marker line, the marker's value or None);
    `end` is where the head ends.  Only the head's first line after the
    status line is taken, where an ugu worker puts it (one that met the
    name in an app's headers dropped them): a header of that name further
    down is an app's, relayed as any other."""
    at = answer.find(b"\r\n", 0, end)
    if at == -1 or not answer.startswith(_MARKER_LINE, at):
        return answer, None
    stop = answer.find(b"\r\n", at + 2)
    value = answer[at + len(_MARKER_LINE):stop]
    return answer[:at] + answer[stop:], value


class Answer:
    """An answer kept: the bytes to send, what must hold for them, and
    the request line to write."""

    __slots__ = ("data", "probes", "until", "line", "vars_size", "size")

    def __init__(self, data, probes, until, line, vars_size, size):
        self.data, self.probes, self.until = data, probes, until
        self.line, self.vars_size, self.size = line, vars_size, size

    def holds(self, now):
        if now > self.until:
            return False
        for name, sig in self.probes:
            if sig is None:
                if os.access(name, os.F_OK):
                    return False
                continue
            try:
                if signature(os.stat(name)) != sig:
                    return False
            except OSError:
                return False
        return True


# The fields of a marker's request line, as the router fills them.
_FIELDS = dict(pid=0, count=0, addr="", size=0, date="", msecs=0)


def parse(value, sink):
    """(probes, line, size) from a marker's value, or None where the router
    cannot check it: made elsewhere, or logged elsewhere than `sink`
    (the router's own log, None where it is not a plain file or pipe)."""
    try:
        body = json.loads(value)
        if body.get("v") != _FORMAT or not place() or \
                body["place"] != place():
            return None
        line = body["line"]
        if line is not None:
            if sink is None or body["sink"] != sink:
                return None
            # A line that would not format is refused here, not met at
            # each repeat.
            line.format(**_FIELDS)
        probes = [(os.fsdecode(name.encode("latin-1")), sig)
                  for name, sig in body["probes"]]
        size = int(body["size"])
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None
    return probes, line, size


class Answers:
    """The answers one router keeps, by the listener and the request's
    whole head: each listener sends vars of its own (SERVER_PORT, HTTPS,
    http-var), which a worker's response routes may read."""

    def __init__(self):
        self._kept = {}
        self._bytes = 0
        self.count = 0

    def get(self, listener, head):
        key = (listener, head)
        found = self._kept.get(key)
        if found is None:
            return None
        if found.holds(time.monotonic()):
            return found
        self._forget(key)
        return None

    def keep(self, listener, head, data, probes, line, vars_size):
        key = (listener, head)
        size = len(head) + len(data) + _held_bytes(probes, line)
        if size > _KEPT_BYTES:
            return
        self._forget(key)
        if self._bytes + size > _KEPT_BYTES:
            self._kept.clear()
            self._bytes = 0
        self._kept[key] = Answer(data, probes,
                                 time.monotonic() + FRESH_SECONDS, line,
                                 vars_size, size)
        self._bytes += size

    def _forget(self, key):
        found = self._kept.pop(key, None)
        if found is not None:
            self._bytes -= found.size


def _held_bytes(probes, line):
    """What an answer's probes and line hold besides its bytes: a deep
    path under many roots makes them outweigh the head and the answer."""
    return len(line or "") + sum(len(name) + _PROBE_BYTES
                                 for name, _ in probes)


def client_address(peer):
    """REMOTE_ADDR's value, the first var of a connection's encoded
    peer vars (ugu.http.vars.ListenerVars.peer): read where it lies, on
    every repeat, in 0.2 us, where protocol.decode_vars' whole pass
    takes 1.3."""
    key_size = peer[0] | peer[1] << 8
    at = 2 + key_size
    size = peer[at] | peer[at + 1] << 8
    return peer[at + 2:at + 2 + size].decode("latin-1")
