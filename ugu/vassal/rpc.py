"""uWSGI's RPC: functions an app registers by name (uwsgi.register_rpc)
and calls with bytes arguments, here (uwsgi.call, uwsgi.rpc(None, ...))
or on another instance over the uwsgi protocol (uwsgi.rpc("HOST:PORT",
...), a packet of modifier1 173), whose workers answer such packets.

Each process has its own table of at most `rpc-max` functions, as each
uWSGI worker has: what the master registers (the app imported before
fork) every worker inherits; what a worker registers, only that worker
calls or serves.  Mules and spoolers may not register.

The packet: the header (173, size, modifier2), then the function's name
and each argument as a uwsgi array (a 16-bit little-endian length, the
bytes; an empty item is skipped, as uWSGI parses arrays).  The answer:
the same header with the result's length, then the result (modifier2 1:
the result alone); a result over 65535 bytes gets modifier2 5 and a vars
block whose CONTENT_LENGTH gives its length.  No result (no such
function, or it returned no bytes): the connection closes unanswered.
"""

import socket

from ugu import log, protocol

MODIFIER_RPC = 173
_RAW = 1
_HTTP = 2
_LONG = 5
# uWSGI's limits: 255 arguments, names under 256 bytes.
MAX_ARGS = 255
MAX_NAME = 255
_FAILED = "unable to call rpc function"


class Table:
    """This process's functions, by name (bytes)."""

    def __init__(self, limit):
        self.limit = limit
        self.functions = {}

    def register(self, name, function, where):
        """`where`: "master", "worker N", or None for a process that may
        not register.  False when refused (said in the log)."""
        if where is None:
            log.log("only the master and the workers can register RPC "
                    "functions")
            return False
        key = name.encode()
        if len(key) > MAX_NAME:
            log.log(f"the supplied RPC name string is too long, max size is "
                    f"{MAX_NAME}")
            return False
        if key not in self.functions and len(self.functions) >= self.limit:
            return False
        self.functions[key] = function
        if where == "master":
            log.log(f'registered shared/inherited RPC function "{name}"')
        else:
            log.log(f'registered RPC function "{name}" on {where}')
        return True

    def names(self):
        return tuple(self.functions)

    def call(self, name, args):
        """The function's bytes, or None (none such, no bytes, or it
        raised: its traceback is logged)."""
        function = self.functions.get(name)
        if function is None:
            return None
        try:
            result = function(*args)
        except Exception:
            log.app_traceback()
            return None
        if isinstance(result, bytes) and result:
            return bytes(result)
        return None


_table = None


def install(limit):
    """This instance's table, made with its `uwsgi` module."""
    global _table
    _table = Table(limit)
    return _table


def table():
    return _table


# -- calling a node -------------------------------------------------------
def encode_array(items):
    return b"".join(protocol.LENGTH.pack(len(item)) + item
                    for item in items)


def call_node(node, name, args, timeout):
    """The result of `name` on the instance at `node` (HOST:PORT or a
    unix socket's path), or None."""
    size = sum(2 + len(item) for item in (name, *args))
    if size > protocol.MAX_BLOCK:
        log.log(f"RPC packet length overflow!!! Must be less than or equal "
                f"to {protocol.MAX_BLOCK}, have {size}")
        return None
    block = encode_array([name, *args])
    packet = protocol.HEADER.pack(MODIFIER_RPC, len(block), 0) + block
    try:
        with _connect(node, timeout) as conn:
            conn.sendall(packet)
            return _answer(conn) or None
    except (OSError, ValueError, protocol.ProtocolError) as e:
        log.log(f"rpc to {node} failed: {e}")
        return None


def _connect(node, timeout):
    if ":" in node:
        host, _, port = node.rpartition(":")
        return socket.create_connection((host or "127.0.0.1", int(port)),
                                        timeout=timeout)
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(timeout)
    try:
        conn.connect("\0" + node[1:] if node.startswith("@") else node)
    except OSError:
        conn.close()
        raise
    return conn


def _answer(conn):
    first = conn.recv(protocol.HEADER_SIZE)
    if not first:
        # The node's way to say it has no result.
        return None
    head = first + _read_exactly(conn, protocol.HEADER_SIZE - len(first))
    _, size, modifier2 = protocol.decode_header(head)
    body = _read_exactly(conn, size)
    if modifier2 != _LONG:
        return body
    found = dict(protocol.decode_vars(body))
    length = int(found.get(b"CONTENT_LENGTH", b"0") or 0)
    return _read_long(conn, length)


def _read_long(conn, size):
    """`size` bytes into a buffer asked of the system whole before the
    first is read, as uWSGI allocates it: a length the memory cannot
    hold is refused at once, rather than read until the memory runs
    out.  The pages are taken only as the bytes arrive."""
    if size <= 0:
        return b""
    import mmap
    try:
        buffer = mmap.mmap(-1, size)
    except (OSError, OverflowError, ValueError):
        raise protocol.ProtocolError(
            f"no memory for an answer of {size} bytes") from None
    with buffer:
        view = memoryview(buffer)
        try:
            pos = 0
            while pos < size:
                got = conn.recv_into(view[pos:], min(size - pos, 65536))
                if not got:
                    raise protocol.ProtocolError(
                        "the node closed before its answer")
                pos += got
            return bytes(view)
        finally:
            view.release()


def _read_exactly(conn, size):
    data = bytearray()
    while len(data) < size:
        more = conn.recv(min(size - len(data), 65536))
        if not more:
            raise protocol.ProtocolError("the node closed before its answer")
        data += more
    return bytes(data)


# -- answering a packet ------------------------------------------------------
def decode_array(block):
    """The items of a uwsgi array, as uWSGI parses it (empty items
    skipped, at most 255), or None after logging why."""
    items, pos, end = [], 0, len(block)
    while pos < end and len(items) < MAX_ARGS:
        if pos + 2 >= end:
            log.log("invalid uwsgi array. skip this request.")
            return None
        size = protocol.LENGTH.unpack_from(block, pos)[0]
        pos += 2
        if not size:
            continue
        if pos + size > end:
            log.log("invalid uwsgi array. skip this var.")
            return None
        items.append(block[pos:pos + size])
        pos += size
    return items


def serve(conn, block, modifier2):
    """Answer an RPC packet (its block read) on `conn`."""
    if not block:
        log.log("Empty RPC request. skip.")
        return
    if modifier2 == _HTTP:
        log.log("RPC over HTTP (modifier2 2) is not served by ugu: call "
                "with modifier2 0 (uwsgi.rpc) or 1 (raw)")
        return
    items = decode_array(block)
    if not items:
        if items is not None:
            log.log("Invalid RPC request. skip.")
        return
    result = _table.call(items[0], items[1:]) if _table else None
    if result is None:
        return
    if modifier2 == 0:
        if len(result) > protocol.MAX_BLOCK:
            length = protocol.encode_vars(
                [(b"CONTENT_LENGTH", str(len(result)).encode())])
            head = protocol.HEADER.pack(MODIFIER_RPC, len(length),
                                        _LONG) + length
        else:
            head = protocol.HEADER.pack(MODIFIER_RPC, len(result), 0)
        conn.sendall(head)
    conn.sendall(result)
