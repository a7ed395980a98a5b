"""`honour-range`: the part of a static file a Range header asks for, read
as uWSGI 2.0 reads it.

One range only, the first (a list is cut at its first comma); the unit
must be written `bytes` and the value at least `bytes=N-` long.  `N-M`
is clamped to the file's end, `N-` runs to it, `-N` is the last N bytes.
A value that names the whole file is no range (a 200, as uWSGI answers
it); anything else that cannot be served, an unknown unit and a start
past the end among them, is UNSATISFIABLE (uWSGI's 416).

Where uWSGI breaks, ugu does not: numbers must be ASCII digits (uWSGI
reads other characters as digits of a garbage number), a suffix longer
than the file is the whole file (uWSGI drops the connection, or sends a
206 it cannot fill for an empty file), and `If-Range` is honoured
(DEVIATIONS 12; uWSGI 2.0 never reads it): the range is served only when
it names the file's Last-Modified, else the whole file is.
"""

UNSATISFIABLE = "unsatisfiable"
# The shortest value uWSGI reads: `bytes=N-` or `bytes=-N`.
_SHORTEST = len("bytes=0-")
_UNIT = "bytes="


def part(request_vars, size, mtime, http_date):
    """(first, last) byte of the file to send, None for all of it, or
    UNSATISFIABLE.  `http_date` reads If-Range's date as If-Modified-
    Since's is read."""
    header = request_vars.get("HTTP_RANGE")
    if header is None:
        return None
    # A copy of another version of the file: it gets the whole file.
    validator = request_vars.get("HTTP_IF_RANGE")
    if validator is not None and http_date(validator) != int(mtime):
        return None
    return fit(requested(header), size)


def requested(header):
    """(start, end) as written, a suffix as a negative start and an open
    end as None; or UNSATISFIABLE."""
    spec = header.partition(",")[0]
    if len(spec) < _SHORTEST or not spec.startswith(_UNIT):
        return UNSATISFIABLE
    start, dash, end = spec[len(_UNIT):].partition("-")
    if not dash or not _digits(start or "0") or not _digits(end or "0"):
        return UNSATISFIABLE
    if not start:
        suffix = int(end)
        return (-suffix, None) if suffix else UNSATISFIABLE
    if end and int(end) < int(start):
        return UNSATISFIABLE
    return int(start), int(end) if end else None


def fit(wanted, size):
    """The requested range within a file of `size` bytes: (first, last),
    None for the whole file, or UNSATISFIABLE."""
    if wanted is UNSATISFIABLE:
        return wanted
    start, end = wanted
    first = max(0, size + start) if start < 0 else start
    last = size - 1 if end is None else min(end, size - 1)
    if first == 0 and last == size - 1:
        return None
    if last < first:
        return UNSATISFIABLE
    return first, last


def _digits(text):
    # ASCII only: "\xb2" is a digit to str.isdigit(), not to int().
    return text.isascii() and text.isdigit()
