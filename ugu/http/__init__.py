"""HTTP for the router, without sockets: request -> uwsgi vars (`vars`),
plain requests and backend responses parsed in one pass (`plain`,
`response`), the router's own error pages (`errors`) and `http-auto-gzip`
(`gzip`).

Nothing here does I/O or knows about gevent; the router package wires
these to sockets.
"""
