"""Signed subscriptions, as uWSGI 2.0 signs and checks them.

An instance whose subscription names `ALGO:PEMFILE` (subscribe-to's
third part, subscribe2's `sign=`) adds to each announce a `unix` var, the
time it was made (plus the command, as uWSGI), then a `sign` var: the RSA
(PKCS #1 v1.5) signature, by the digest ALGO, of every var before it.

A router with `subscriptions-sign-check = ALGO:DIR` takes a key's
announces only signed by the private key of DIR/KEY.pem's public one (the
key's bytes other than letters, digits, ".", "-" and "_" made "_"); one
made more than `subscriptions-sign-check-tolerance` seconds ago does not
open a pool or add a node, and a known node's must be newer than its
first, which keeps a copied packet from coming back.  The announces of
a uid of `subscriptions-sign-skip-uid` (known from unix socket
credentials) need no signature.

Imported only where one of these options is set: it needs the
`cryptography` package.
"""

import re
import time

from ugu.log import log
from ugu.options.errors import ConfigError

# OpenSSL's names of the digests uWSGI finds by name, and Python's.
_DIGESTS = {"md5": "MD5", "sha1": "SHA1", "sha224": "SHA224",
            "sha256": "SHA256", "sha384": "SHA384", "sha512": "SHA512"}
_UNSAFE = re.compile(rb"[^0-9A-Za-z._-]")


def _library(option):
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    except ImportError:
        raise ConfigError(
            "signed subscriptions need the cryptography package, which "
            "is not installed: `pip install cryptography` in ugu's "
            "environment", option=option) from None
    return InvalidSignature, hashes, serialization, padding, rsa


def _digest(name, option):
    _, hashes, _, _, _ = _library(option)
    found = _DIGESTS.get(name.lower().removeprefix("rsa-"))
    if found is None:
        raise ConfigError(
            f"no digest '{name}': write one of {', '.join(_DIGESTS)}",
            option=option)
    return getattr(hashes, found)()


class Signer:
    """An instance's signature of its announces (`ALGO:PEMFILE`)."""

    def __init__(self, spec, option):
        algo, colon, self.path = spec.partition(":")
        if not colon or not algo or not self.path:
            raise ConfigError(
                f"'{spec}' is no signature: write DIGEST:PEMFILE (as "
                f"sha256:/etc/ugu/private.pem), PEMFILE a private RSA key",
                option=option)
        self.option = option
        self.digest = _digest(algo, option)
        # Refused now where the key cannot be read; read again at each
        # announce, as uWSGI does, so that a new one is taken.
        error = self._key()[1]
        if error:
            raise ConfigError(error, option=option)

    def _key(self):
        _, _, serialization, _, rsa = _library(self.option)
        try:
            with open(self.path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), None)
        except OSError as e:
            return None, f"cannot read {self.path}: {e.strerror or e}"
        except (ValueError, TypeError):
            return None, f"unable to load private key: {self.path}"
        if not isinstance(key, rsa.RSAPrivateKey):
            return None, f"{self.path} is no RSA private key"
        return key, None

    def __call__(self, message):
        """The signature of `message`, or None (said in the log) when
        the key is gone: the announce goes unsigned, as uWSGI's."""
        key, error = self._key()
        if key is None:
            log(error)
            return None
        _, _, _, padding, _ = _library(self.option)
        return key.sign(message, padding.PKCS1v15(), self.digest)


class Checker:
    """A router's subscriptions-sign-check."""

    def __init__(self, spec, tolerance, skip_uids, pid,
                 option="subscriptions-sign-check"):
        algo, colon, folder = spec.partition(":")
        if not colon or not algo:
            raise ConfigError(
                f"'{spec}' is no sign check: write DIGEST:DIR (as "
                f"sha256:/etc/ugu/keys), DIR holding each key's public "
                f"key as KEY.pem", option=option)
        self.digest = _digest(algo, option)
        (self.invalid, _, self.serialization, self.padding,
         _) = _library(option)
        self.folder = folder.encode()
        self.tolerance = tolerance
        self.skip_uids = tuple(skip_uids)
        self.pid = pid

    def safe(self, credentials):
        """A sender of a uid of subscriptions-sign-skip-uid."""
        uid = credentials[1]
        return uid > 0 and uid in self.skip_uids

    def checks(self, pool):
        """Whether the pool's announces are checked (it has its key)."""
        return pool.public_key is not None

    def stale(self, announce, credentials):
        """Made before the tolerance (and not of a safe sender)."""
        if self.safe(credentials) or announce.unix >= \
                int(time.time()) - self.tolerance:
            return False
        self.sniffed(announce)
        return True

    def sniffed(self, announce):
        log(f"[uwsgi-subscription for pid {self.pid}] invalid (sniffed ?) "
            f"packet sent for slot: {announce.key.decode('latin-1')} node: "
            f"{announce.address.decode('latin-1')} unix_check: "
            f"{announce.unix}")

    def new_pool(self, announce, credentials):
        """(whether a pool may open for the announce, the public key it
        keeps: None for one opened by a safe sender)."""
        if self.safe(credentials):
            return True, None
        if not announce.sign or not announce.base:
            return False, None
        if self.stale(announce, credentials):
            return False, None
        key = self._public_key(announce.key)
        if key is None or not self._verify(key, announce):
            return False, None
        return True, key

    def check(self, pool, announce, credentials):
        """Whether an announce for an open pool is signed by its key."""
        if self.safe(credentials):
            return True
        if not announce.sign or not announce.base:
            return False
        if pool.public_key is None:
            taken, pool.public_key = self.new_pool(announce, credentials)
            return taken
        return self._verify(pool.public_key, announce)

    def _public_key(self, key):
        path = self.folder + b"/" + _UNSAFE.sub(b"_", key) + b".pem"
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        try:
            return self.serialization.load_pem_public_key(data)
        except (ValueError, TypeError):
            log(f"unable to load public key for {key.decode('latin-1')}")
            return None

    def _verify(self, key, announce):
        try:
            key.verify(announce.sign, announce.base, self.padding.PKCS1v15(),
                       self.digest)
        except (self.invalid, TypeError, ValueError, AttributeError):
            return False
        return True
