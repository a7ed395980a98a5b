"""`https = ADDR,CERT,KEY[,CIPHERS[,CA]]`: an address of the HTTP router
where clients speak TLS, read in the master at start-up.

The certificate and key are loaded before any socket is bound, so a bad
file stops the instance with uWSGI's line, as uWSGI stops while reading
its options.  The context is made here and inherited by the router process
(ugu.router.tls serves its connections).  As in uWSGI: OpenSSL's defaults
(no compression, no session cache); a CIPHERS list, when given, is the
server's order of preference; a CA file asks clients for a certificate
signed by it (`!CA`: refuses clients without one).

This module uses the standard library only: the master imports it, and
only the router process may load gevent (see ugu.router.process).
"""

import ssl

from ugu.options.errors import ConfigError
from ugu.vassal.sockets import parse_address

OPTION = "https"
_SYNTAX = ("invalid https syntax must be socket,crt,key (write "
           "ADDR,CERT,KEY[,CIPHERS[,CA]])")


def parse(value):
    """(ADDR, its ssl.SSLContext) of one `https` line."""
    fields = value.split(",", 4)
    if len(fields) < 3:
        raise ConfigError(_SYNTAX, option=OPTION)
    address, crt, key = fields[:3]
    ciphers = fields[3] if len(fields) > 3 else ""
    client_ca = fields[4] if len(fields) > 4 else None
    parse_address(address, OPTION)
    return address, server_context(f"http-{address}", crt, key, ciphers,
                                   client_ca)


def server_context(name, crt, key, ciphers, client_ca=None, option=OPTION):
    """The server context of certificate file `crt`, key file `key`,
    `ciphers` (OpenSSL's list, or empty) and `client_ca` (a CA file, `!`
    before it to require a client certificate, or None); `name` is the
    context's name in uWSGI's messages, `option` the one its errors
    name."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # A key protected by a passphrase fails here rather than prompt.
        context.load_cert_chain(crt, key, password="")
    except OSError as e:
        what, path = (("certificate", crt) if not _has_certificate(crt)
                      else ("key", key))
        raise ConfigError(f"[uwsgi-ssl] unable to assign {what} {path} for "
                          f"context \"{name}\" ({_reason(e)})",
                          option=option) from None
    if ciphers:
        try:
            context.set_ciphers(ciphers)
        except ssl.SSLError as e:
            raise ConfigError(f"[uwsgi-ssl] unable to set requested ciphers "
                              f"({ciphers}) for context \"{name}\" "
                              f"({_reason(e)})", option=option) from None
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    if client_ca is not None:
        _verify_clients(context, name, client_ca, option)
    return context


def _verify_clients(context, name, client_ca, option):
    """Ask clients for a certificate signed by a CA of file `client_ca`;
    one that fails verification fails the handshake."""
    if client_ca.startswith("!"):
        context.verify_mode = ssl.CERT_REQUIRED
        client_ca = client_ca[1:]
    else:
        context.verify_mode = ssl.CERT_OPTIONAL
    try:
        context.load_verify_locations(cafile=client_ca)
    except (OSError, ValueError) as e:
        raise ConfigError(f"[uwsgi-ssl] unable to set ssl verify locations "
                          f"({client_ca}) for context \"{name}\" "
                          f"({_reason(e)})", option=option) from None


def _has_certificate(path):
    """Whether `path` holds a PEM certificate: told apart from the key
    when the pair fails to load, as uWSGI loads them one by one."""
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_verify_locations(cafile=path)
    except (OSError, ValueError):
        return False
    return True


def _reason(error):
    return getattr(error, "reason", None) or error.strerror or str(error)
