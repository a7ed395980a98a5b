"""`https = ADDR,CERT,KEY[,CIPHERS[,CA]]`: an address of the HTTP router
where clients speak TLS, read in the master at start-up.

The certificate and key are loaded before any socket is bound, so a bad
file stops the instance with uWSGI's line, as uWSGI stops while reading
its options.  The context (ugu.sslcontext makes it, as it makes every TLS
context) is inherited by the router process (ugu.router.tls serves its
connections); its name in uWSGI's lines is `http-ADDR`, or
https-session-context (uWSGI's session id context, which with the session
cache off only names the context).

This module uses the standard library only: the master imports it, and
only the router process may load gevent (see ugu.router.process).
"""

from ugu import sslcontext
from ugu.vassal.sockets import parse_address

OPTION = "https"


def parse(value, session_context=None):
    """(ADDR, its ssl.SSLContext) of one `https` line."""
    address, crt, key, ciphers, client_ca = sslcontext.parse(value, OPTION)
    parse_address(address, OPTION)
    return address, sslcontext.server_context(
        session_context or f"http-{address}", crt, key, ciphers, client_ca,
        option=OPTION)
