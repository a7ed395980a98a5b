"""uWSGI's TLS server contexts: the one place that makes them, for the
HTTP router's `https`, the sslrouter and the workers' `https-socket` and
`ssl-socket`, from uWSGI's `CERT,KEY[,CIPHERS[,CA]]`.

As in uWSGI: OpenSSL's defaults (no compression, no session cache); a
CIPHERS list, when given, is the server's order of preference; a CA file
asks clients for a certificate signed by it (`!CA`: refuses clients
without one).  The options that act on every context are read once by
`configure`, before the first context is made:

- `sni = NAME CERT,KEY[,CIPHERS]` (and `sni-regexp`, NAME being a
  regexp, with a CA field too): a client asking for NAME is served that
  certificate; `sni-dir = DIR`: one asking for NAME gets DIR/NAME.crt
  and .key (and .ca, if there), loaded at its first request, with
  `sni-dir-ciphers`.  Python's ssl switches the certificate, not whether
  the connection asks for a client's: that stays the listener's, and so
  does the CA a client's is verified with, unless the SNI line or
  folder gives one (uWSGI's `sni` switches both: a CA there is refused).
- `ssl-option = N`: OpenSSL's option bits N (a decimal number) on each
  context; `ssl-enable-tlsv1`: TLS 1.0 and 1.1 allowed (OpenSSL's
  security level may still refuse them, as it refuses uWSGI's).
- `ssl-tmp-dir = DIR`: a certificate, key or CA given as PEM text is
  written to DIR/NAME.crt (.key, .ca) and loaded from there.
- `ssl-verbose`: a client certificate that fails verification is said.

Only the processes of an instance with a TLS option import this (ssl
weighs some 5 MB in each).
"""

import os
import ssl
from dataclasses import dataclass, field

from ugu import log, pcre
from ugu.options.errors import ConfigError

PEM = "-----BEGIN "
# Where a name must not lead sni-dir's paths.
_UNSAFE = ("/", "\0")


@dataclass
class Settings:
    tlsv1: bool = False
    options: int = 0
    tmp_dir: str | None = None
    verbose: bool = False
    # (name, spec) of each `sni`, (regexp, spec) of each `sni-regexp`,
    # spec being (name, cert, key, ciphers, CA, False).
    names: list = field(default_factory=list)
    patterns: list = field(default_factory=list)
    directory: str | None = None
    directory_ciphers: str = ""
    # The SNI contexts made, by (spec, the listener's CA); None where
    # sni-dir's files failed.
    loaded: dict = field(default_factory=dict)

    @property
    def sni(self):
        return bool(self.names or self.patterns or self.directory)


SETTINGS = Settings()

# The options that make `configure` worth calling.
OPTIONS = ("sni", "sni-regexp", "sni-dir", "ssl-option", "ssl-tmp-dir",
           "ssl-verbose", "ssl-enable-tlsv1", "ssl-enable-sslv3")


def configure(config):
    """Read the options that act on every context; ConfigError for one
    that cannot work here.  The `sni` contexts are made now, so that a
    bad file stops the start."""
    global SETTINGS
    if config["ssl-enable-sslv3"] and not ssl.HAS_SSLv3:
        raise ConfigError(f"{ssl.OPENSSL_VERSION}, the OpenSSL Python's ssl "
                          f"uses here, has no SSLv3 (it was removed as "
                          f"broken): remove the option",
                          option="ssl-enable-sslv3")
    SETTINGS = settings = Settings(
        tlsv1=config["ssl-enable-tlsv1"],
        options=_options(config["ssl-option"]),
        tmp_dir=config["ssl-tmp-dir"], verbose=config["ssl-verbose"],
        directory=config["sni-dir"],
        directory_ciphers=config["sni-dir-ciphers"] or "")
    for option, found in (("sni", settings.names),
                          ("sni-regexp", settings.patterns)):
        for value in config[option]:
            name, crt, key, ciphers, client_ca = _sni_fields(value, option)
            if option == "sni" and client_ca:
                raise ConfigError(_SNI_CA, option=option)
            # Made now for its errors; a connection gets one made for
            # its listener (see _pick_context).
            server_context(name, crt, key, ciphers, client_ca,
                           option=option)
            key_of = name
            if option == "sni-regexp":
                try:
                    key_of = pcre.compile(name)
                except Exception as e:
                    raise ConfigError(f"invalid regexp {name!r}: {e}",
                                      option=option) from None
            found.append((key_of, (name, crt, key, ciphers, client_ca,
                                   False)))


# Why `sni = NAME CERT,KEY,CIPHERS,CA` is refused.
_SNI_CA = ("a client certificate asked for by one SNI name cannot be "
           "had: Python's ssl switches a connection's certificate for "
           "its name, not whether it asks the client for one (uWSGI's "
           "sni does both); drop the CA field and verify clients on the "
           "listener (https-socket = ADDR,CERT,KEY,,CA)")


def _options(values):
    bits = 0
    for value in values:
        if not value.strip().isdigit():
            raise ConfigError(f"invalid ssl option {value!r} (write "
                              f"OpenSSL's option bits as a decimal number)",
                              option="ssl-option")
        bits |= int(value)
    return bits


def _sni_fields(value, option):
    name, space, rest = value.partition(" ")
    fields = rest.split(",", 3)
    if not space or len(fields) < 2:
        raise ConfigError(f"invalid {option} syntax, must be sni_key<space>"
                          f"crt,key[,ciphers,client_ca]", option=option)
    return (name, *fields, *[None] * (4 - len(fields)))


def parse(value, option):
    """(ADDR, CERT, KEY, CIPHERS, CA) of `ADDR,CERT,KEY[,CIPHERS[,CA]]`,
    CIPHERS "" and CA None where not given."""
    fields = value.split(",", 4)
    if len(fields) < 3:
        raise ConfigError(f"invalid {option} syntax must be socket,crt,key "
                          f"(write ADDR,CERT,KEY[,CIPHERS[,CA]])",
                          option=option)
    address, crt, key = fields[:3]
    ciphers = fields[3] if len(fields) > 3 else ""
    client_ca = fields[4] if len(fields) > 4 else None
    return address, crt, key, ciphers, client_ca


def server_context(name, crt, key, ciphers, client_ca=None, option=None):
    """The server context of certificate file `crt`, key file `key`,
    `ciphers` (OpenSSL's list, or empty) and `client_ca` (a CA file, `!`
    before it to require a client certificate, or None); `name` is the
    context's name in uWSGI's messages, `option` the one its errors
    name."""
    settings = SETTINGS
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if settings.tlsv1:
        context.minimum_version = ssl.TLSVersion.TLSv1
    crt = _pem_file(crt, name, ".crt", option)
    key = _pem_file(key, name, ".key", option)
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
    if settings.options:
        context.options |= settings.options
    if settings.sni:
        context.sni_callback = _pick_context
    # What an SNI certificate's context for this one must verify clients
    # with (see _pick_context).
    context.client_ca = client_ca
    return context


def _verify_clients(context, name, client_ca, option):
    """Ask clients for a certificate signed by a CA of file `client_ca`;
    one that fails verification fails the handshake."""
    if client_ca.startswith("!"):
        context.verify_mode = ssl.CERT_REQUIRED
        client_ca = client_ca[1:]
    else:
        context.verify_mode = ssl.CERT_OPTIONAL
    client_ca = _pem_file(client_ca, name, ".ca", option)
    try:
        context.load_verify_locations(cafile=client_ca)
    except (OSError, ValueError) as e:
        raise ConfigError(f"[uwsgi-ssl] unable to set ssl verify locations "
                          f"({client_ca}) for context \"{name}\" "
                          f"({_reason(e)})", option=option) from None


def _pem_file(value, name, suffix, option):
    """ssl-tmp-dir: PEM text written to DIR/NAME.SUFFIX, that file's
    path; any other value (a path) as it is."""
    directory = SETTINGS.tmp_dir
    if not directory or not value.startswith(PEM):
        return value
    path = os.path.join(directory, f"{name}{suffix}")
    try:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o400)
        with os.fdopen(fd, "w") as f:
            f.write(value)
    except OSError as e:
        raise ConfigError(f"open(\"{path}\"): {e.strerror} (ssl-tmp-dir "
                          f"must be a folder ugu can write to)",
                          option=option or "ssl-tmp-dir") from None
    return path


def _pick_context(tls, server_name, context):
    """OpenSSL's servername callback: the context of the name a client
    asks for, by `sni` (exact), then `sni-regexp`, then `sni-dir`; the
    listener's own where none has it.  The name stays on the connection
    (`tls.sni`) for the sslrouter's key."""
    tls.sni = server_name
    if not server_name:
        return None
    spec = _spec_for(server_name)
    if spec is None:
        return None
    # Python's ssl keeps the connection asking for a client certificate
    # as its listener's context does: the SNI context verifies one as
    # that context would, where its own line gives no CA.
    listener_ca = getattr(context, "client_ca", None)
    key = (spec, listener_ca)
    if key not in SETTINGS.loaded:
        SETTINGS.loaded[key] = _load(spec, listener_ca)
    found = SETTINGS.loaded[key]
    if found is not None:
        tls.context = found
    return None


def _spec_for(name):
    """(name, cert, key, ciphers, CA, from sni-dir) of the certificate
    for a client asking for `name`, or None."""
    settings = SETTINGS
    for known, spec in settings.names:
        if known == name:
            return spec
    for pattern, spec in settings.patterns:
        if pattern.search(name):
            return spec
    if not settings.directory or any(c in name for c in _UNSAFE) \
            or name.startswith("."):
        return None
    base = os.path.join(settings.directory, name)
    if not (os.path.isfile(base + ".crt") and os.path.isfile(base + ".key")):
        return None
    client_ca = base + ".ca" if os.path.isfile(base + ".ca") else None
    return (name, base + ".crt", base + ".key", settings.directory_ciphers,
            client_ca, True)


def _load(spec, listener_ca):
    name, crt, key, ciphers, client_ca, from_directory = spec
    try:
        context = server_context(name, crt, key, ciphers,
                                 client_ca or listener_ca, option="sni")
    except ConfigError as e:
        # A file of sni-dir's that fails, as uWSGI says it.
        log.log(f"{e.reason}")
        log.log(f"[uwsgi-ssl] DANGER unable to initialize context for "
                f"\"{name}\"")
        return None
    if from_directory:
        log.log(f"[uwsgi-sni for pid {os.getpid()}] added SSL context for "
                f"{name}")
    return context


def verify_failure(error):
    """ssl-verbose's line for a client certificate that failed
    verification (Python's ssl tells its code and reason, not the depth
    and subject uWSGI adds)."""
    if SETTINGS.verbose and isinstance(error, ssl.SSLCertVerificationError):
        log.log(f"[uwsgi-ssl] client certificate verify error: "
                f"num={error.verify_code}:{error.verify_message}")


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
