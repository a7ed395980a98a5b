"""A router's stats server (`http-stats`, `fastrouter-stats`...): a
socket that answers each connection with the router's JSON document and
closes it, served by the router's first process, as uWSGI's.

Imported by a router process only where its stats option is set (json
weighs on every process that loads it), once gevent has patched it.
"""

import json
import os
import socket
import time

import gevent

from ugu import UWSGI_VERSION, abstract
from ugu.log import log
from ugu.options.expand import djb33x
from ugu.router.subscriptions import _HASH_SLOTS
from ugu.vassal.sockets import parse_address


def start(address, name, document):
    """Serve `document()` on `address` (HOST:PORT or a unix path) for the
    router `name` (http, fastrouter...); the greenlet that serves it, or
    None when the address cannot be bound (said in the log)."""
    where = parse_address(address, f"{name}-stats")
    family = socket.AF_UNIX if isinstance(where, str) else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_UNIX:
        if abstract.bound_abstract(where):
            # @NAME, or any path with abstract-socket, as uWSGI binds it.
            abstract.announce()
            where = abstract.bind_sockaddr(where)
        elif os.path.exists(where):
            os.unlink(where)
    try:
        sock.bind(where)
    except OSError as e:
        log(f"[uwsgi-{name}] unable to bind the stats server on "
            f"{address}: {e.strerror or e}")
        sock.close()
        return None
    sock.listen(100)
    log(f"*** {name} stats server enabled on {address} fd: "
        f"{sock.fileno()} ***")
    return gevent.spawn(_serve, sock, document)


def _serve(sock, document):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            continue
        try:
            conn.sendall(json.dumps(document(), indent="\t").encode())
        except OSError:
            pass
        finally:
            conn.close()


def head(name, sessions, addresses):
    """The fields every router's document begins with: `name`'s list
    holds the router's addresses, as the config writes them."""
    return {"version": UWSGI_VERSION, "pid": os.getpid(),
            "uid": os.getuid(), "gid": os.getgid(), "cwd": os.getcwd(),
            "active_sessions": sessions,
            name: [address.removeprefix("dgram:") for address in addresses]}


def static_nodes(nodes):
    """The `static_nodes` list (http-to, fastrouter-to...): each node's
    requests, and the time it was marked failed while it waits out its
    back-off (else 0)."""
    now = time.monotonic()
    return [{"name": node.label, "hits": node.hits,
             "grace": int(node.failed_at) if node.retry_at > now else 0}
            for node in nodes]


def subscriptions(table):
    """The `subscriptions` list: each pool and its nodes."""
    return [{"key": pool.key.decode("latin-1"),
             "hash": djb33x(pool.key) % _HASH_SLOTS,
             "nodes": [{"name": node.name, "modifier1": node.modifiers[0],
                        "modifier2": node.modifiers[1],
                        "weight": node.weight, "wrr": node.wrr}
                       for node in pool.nodes]}
            for pool in table.pools.values()]
