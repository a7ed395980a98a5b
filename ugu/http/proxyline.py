"""The PROXY protocol's version 1 line (HAProxy's), which a proxy in
front sends ahead of a connection's first request to name the client:
`PROXY TCP4 SRC DST SRCPORT DSTPORT\\r\\n`.

Read as uWSGI's parser reads it (`enable-proxy-protocol`,
`http-enable-proxy-protocol`): fields split at single spaces, SRC taken
once a space ends it and SRCPORT likewise, nothing checked; a line that
ends before them (`PROXY UNKNOWN`) names no one.  Pure: bytes in, a
value out.
"""

PREFIX = b"PROXY "
# parse()'s answer while the line (or its first bytes) is still coming.
INCOMPLETE = "incomplete"


def parse(data, limit):
    """(its length, SRC or None, SRCPORT or None) of the PROXY line that
    starts `data`; None when `data` starts with something else;
    INCOMPLETE while the line's end (or its first 6 bytes) has not come,
    up to `limit` bytes (then None: the request parser refuses it)."""
    if not data.startswith(PREFIX[:len(data)]):
        return None
    end = data.find(b"\n")
    if end < 0:
        return INCOMPLETE if len(data) < limit else None
    fields = bytes(data[len(PREFIX):end]).split(b" ")
    source = fields[1] if len(fields) > 2 else None
    port = fields[3] if source is not None and len(fields) > 4 else None
    return end + 1, source, port


def peer_pairs(source, port):
    """The vars that name the client where a PROXY line named one:
    REMOTE_ADDR, and REMOTE_PORT if the line had it (through an
    http-socket too, which gives none otherwise)."""
    pairs = [(b"REMOTE_ADDR", bytes(source))]
    if port is not None:
        pairs.append((b"REMOTE_PORT", bytes(port)))
    return pairs
