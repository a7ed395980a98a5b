"""`emperor-stats`: the Emperor's state as one JSON document per connection.

The document has uWSGI's keys (reference 5.6), tab-indented as uWSGI
writes it; the server writes it to each client and closes.  Keys for
features ugu has no part of (zerg, on-demand, a global throttle) keep
uWSGI's "none" values, so that dashboards reading them still work.
"""

import json
import os
import socket
import stat
import time

from ugu import UWSGI_VERSION
from ugu.options.errors import ConfigError

# A client that does not read must not hold the Emperor up.
SEND_TIMEOUT = 1.0
BACKLOG = 16


def document(emperor):
    return {
        "version": UWSGI_VERSION, "pid": os.getpid(), "uid": os.getuid(),
        "gid": os.getgid(), "cwd": os.getcwd(),
        "emperor": [m.spec for m in emperor.monitors],
        "emperor_tyrant": int(emperor.tyrant), "throttle_level": 0,
        "vassals": [_vassal(v, emperor.clock)
                    for v in emperor.vassals.values()],
        "blacklist": _blacklist(emperor.blacklist, emperor.clock),
    }


def _vassal(v, clock):
    stamps = v.stamps
    return {
        "id": v.name, "pid": v.pid, "born": stamps["born"],
        "last_mod": v.mtime, "last_heartbeat": _wall(v.beat, clock),
        "loyal": int(v.loyal), "ready": int(v.ready),
        "accepting": int(v.accepting),
        "last_loyal": stamps.get("loyal", 0),
        "last_ready": stamps.get("spawned", 0),
        "last_accepting": stamps.get("accepting", 0),
        "first_run": stamps["born"],
        "last_run": stamps.get("run", stamps["born"]),
        "cursed": stamps.get("cursed", 0), "zerg": 0,
        "on_demand": "", "uid": v.owner[0], "gid": v.owner[1],
        "monitor": v.monitor, "respawns": v.respawns,
    }


def _blacklist(blacklist, clock):
    if blacklist is None:
        return []
    return [{"id": name, "throttle_level": int(entry.wait),
             # uWSGI counts the failures after the first.
             "attempt": entry.failures - 1,
             "first_attempt": _wall(entry.first, clock),
             "last_attempt": _wall(entry.last, clock)}
            for name, entry in blacklist.entries().items()]


def _wall(moment, clock):
    """Epoch seconds of a reading of `clock`; 0 for none."""
    if moment is None:
        return 0
    return int(time.time() - (clock() - moment))


def encode(doc):
    # `"key":value`, as uWSGI writes it, for scripts that grep the text.
    return json.dumps(doc, indent="\t", separators=(",", ":")).encode()


def listen(address):
    """A listening socket on `host:port` (`:port` for every address) or
    a unix socket path."""
    host, colon, port = address.rpartition(":")
    try:
        if colon and port.isdigit():
            return _listen_tcp(host or "0.0.0.0", int(port))
        return _listen_unix(address)
    except OSError as e:
        raise ConfigError(f"cannot bind {address}: {e.strerror}",
                          option="emperor-stats") from None


def _listen_tcp(host, port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def _listen_unix(path):
    # A socket left by an Emperor that died is in the way; a file is not
    # ours to remove.
    if os.path.exists(path) and stat.S_ISSOCK(os.stat(path).st_mode):
        os.unlink(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(BACKLOG)
    return sock


def serve_one(listener, emperor):
    """Answer one waiting client with the document."""
    try:
        client, _ = listener.accept()
    except OSError:
        return      # it went away before we got to it
    with client:
        client.settimeout(SEND_TIMEOUT)
        try:
            client.sendall(encode(document(emperor)))
        except OSError:
            pass    # a client that does not read gets what fitted
