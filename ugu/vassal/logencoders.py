"""uWSGI's log encoders: `log-encoder` and `log-req-encoder` lines, each
`NAME[ ARGS]`, rewrite every log message in turn, in the order written,
before it is written.

    prefix TEXT, suffix TEXT   TEXT before, after the message
    nl                         a newline after it
    format TEMPLATE            TEMPLATE with ${msg} (the message without
                               its newline), ${msgnl} (with it), ${unix},
                               ${millis}, ${micros} (the time, as whole
                               seconds, milliseconds, microseconds) and
                               ${strftime:FORMAT} (local time)
    json TEMPLATE              format, the message and the date escaped
                               for a JSON string
    gzip, compress             the message as a gzip member, a zlib stream

A message is a line with its newline, as a process wrote it.  An encoder
is a function of bytes to bytes, chosen once at start-up.  One written
`NAME:LOGGER[ ARGS]` rewrites only the lines a route sends to the logger
named LOGGER (see logroutes).
"""

import re
import time
import zlib

from ugu import log
from ugu.options.errors import ConfigError

# The bytes uWSGI's gzip encoder starts each message with: no name, no
# time, from Unix.
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03"
# strftime's result must fit this many bytes, its end included, as in
# uWSGI's buffer; a longer one is left out.
_DATE_ROOM = 64
# In a template, read from the left: a ${name}, or a "$" and the byte
# after it, which stay as written (so "$${msg}" has no var).
_TOKEN = re.compile(rb"\$\{([^}]*)\}|\$[^{]", re.DOTALL)
# The clock vars: nanoseconds per unit.
_CLOCKS = {b"unix": 10**9, b"millis": 10**6, b"micros": 10**3}
_JSON_ESCAPES = {b"\t": b"\\t", b"\n": b"\\n", b"\r": b"\\r",
                 b'"': b'\\"', b"\\": b"\\\\"}
_JSON_SPECIAL = re.compile(rb'[\t\n\r"\\]')


def chain(config, option, logger=None):
    """The encoders of an option's lines, in order, that encode for the
    logger of that name: those written without a name, and those that
    name it (None: the log, or a logger without a name, which only the
    former encode); an empty list where there are none."""
    names = log.logger_names(config)
    encoders = []
    for spec in config[option]:
        encoder, for_logger = _encoder(spec, option, names)
        if for_logger in (None, logger):
            encoders.append(encoder)
    return encoders


def encode(encoders, message):
    for encoder in encoders:
        message = encoder(message)
    return message


def _encoder(spec, option, names):
    """(encoder, the name of the logger it encodes for, or None)."""
    name, _, args = spec.partition(" ")
    base, colon, logger = name.partition(":")
    if base not in _MAKERS:
        raise ConfigError(f'log encoder "{base}" not found (ugu has '
                          f'{", ".join(_MAKERS)})', option=option)
    if colon and logger not in names:
        # uWSGI applies NAME:LOGGER to the logger of that name alone, and
        # to nothing where no `logger` line has it.
        raise ConfigError(f"'{spec}' encodes for the logger named "
                          f"'{logger}', and no `logger = {logger or 'NAME'}"
                          f" KIND:ARGS` line names one: write '{base}' for "
                          f"every line, or name the logger", option=option)
    return _MAKERS[base](args.encode()), (logger if colon else None)


def registered_lines(config):
    """What uWSGI says of each encoder as it sets them up."""
    return [f"[{option}] registered {spec}"
            for option in ("log-encoder", "log-req-encoder")
            for spec in config[option]]


def _prefix(text):
    return lambda message: text + message


def _suffix(text):
    return lambda message: message + text


def _nl(_):
    return lambda message: message + b"\n"


def _gzip(_):
    def gzip(message):
        deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED,
                                   -zlib.MAX_WBITS, 9)
        body = deflate.compress(message) + deflate.flush(zlib.Z_SYNC_FLUSH)
        body += deflate.flush(zlib.Z_FINISH)
        tail = zlib.crc32(message).to_bytes(4, "little") + \
            (len(message) & 0xFFFFFFFF).to_bytes(4, "little")
        return _GZIP_HEADER + body + tail
    return gzip


def _compress(_):
    return zlib.compress


def _format(template):
    return _template(template, lambda text: text)


def _json(template):
    return _template(template, _json_escaped)


def _json_escaped(text):
    return _JSON_SPECIAL.sub(lambda m: _JSON_ESCAPES[m.group()], text)


def _template(template, escaped):
    """An encoder filling the template's ${vars}; `escaped` says how the
    message and the date are written into it."""
    pieces = []
    start = 0
    for m in _TOKEN.finditer(template):
        if m.group(1) is not None:
            pieces.append(template[start:m.start()])
            pieces.append(_filler(m.group(1), escaped))
            start = m.end()
    pieces.append(template[start:])

    def encode(message):
        return b"".join(p if type(p) is bytes else p(message)
                        for p in pieces)
    return encode


def _filler(name, escaped):
    """What a ${name} becomes for a message; an unknown name, nothing."""
    if name == b"msg":
        return lambda m: escaped(m[:-1] if m.endswith(b"\n") else m)
    if name == b"msgnl":
        return escaped
    if name in _CLOCKS:
        scale = _CLOCKS[name]
        return lambda m: b"%d" % (time.time_ns() // scale)
    if name.startswith(b"strftime:"):
        date_format = name[len(b"strftime:"):].decode()
        return lambda m: escaped(_strftime(date_format))
    return lambda m: b""


def _strftime(date_format):
    text = time.strftime(date_format).encode()
    return text if len(text) < _DATE_ROOM else b""


_MAKERS = {"prefix": _prefix, "suffix": _suffix, "nl": _nl,
           "format": _format, "json": _json, "gzip": _gzip,
           "compress": _compress}
