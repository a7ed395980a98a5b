"""HTTP for the router, without sockets: request -> uwsgi vars (`vars`),
the router's own error pages (`errors`) and `http-auto-gzip` (`gzip`).

Nothing here does I/O or knows about gevent; the router package wires
these to sockets.
"""
