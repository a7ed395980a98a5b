"""The rawrouter's process (ugu.router.rawrouter): each session takes
the node of its address and passes bytes both ways; the rest is the
corerouters' (ugu.router.coreserver), imported once gevent has patched
the process.
"""

import socket

from ugu.http.errors import HttpError, NotFound
from ugu.router.coreserver import Corerouter, Key, Session
from ugu.router.rawrouter import (GATEWAY, NAME, mapped_address,
                                  xclient_line)

# The longest greeting rawrouter-xclient reads for its end of line.
MAX_GREETING = 65536


class XclientError(ValueError):
    """The node's first line is not one (a CR not followed by LF, or no
    end in MAX_GREETING bytes): the session ends, as uWSGI's does."""


class RawSession(Session):
    """One client connection, passed byte for byte to the node of the
    router's address."""

    def _run(self):
        found = self.router.connect(self.address.encode("latin-1"))
        if found is None:
            return
        backend = found[1]
        try:
            if self.settings.xclient and self._ipv4():
                self._xclient(backend)
            self._relay(backend)
        finally:
            backend.close()

    def _ipv4(self):
        return self.client.sock.family == socket.AF_INET

    def _xclient(self, backend):
        """Swallow the node's first line, send XCLIENT in its place; the
        bytes after that line go to the client, as the node's answer to
        XCLIENT (its greeting again) will."""
        greeting = b""
        while (end := greeting.find(b"\r")) < 0 or end + 1 == len(greeting):
            if len(greeting) > MAX_GREETING:
                raise XclientError("no end to the node's first line")
            data = self._recv(backend)
            if not data:
                raise ConnectionError("the node closed before greeting")
            greeting += data
        if greeting[end + 1:end + 2] != b"\n":
            raise XclientError("the node's first line ends in a bare CR")
        backend.sendall(xclient_line(self.peer[0]), self.settings.timeout)
        if rest := greeting[end + 2:]:
            self.client.sendall(rest, self.settings.timeout)


class Rawrouter(Corerouter):
    name, gateway, session = NAME, GATEWAY, RawSession

    def connect(self, key):
        """(the node, a connected Backend) for a session of `key`, or
        None: as uWSGI's, the first node the mapper gives, then on each
        failure the next fallback node (else the mapper's next node),
        rawrouter-max-retries times at most."""
        most = self.settings.max_retries
        first = 1 if self.fallback else 1 + most
        if self.nodes is not None:
            try:
                return self.nodes.connect(Key(key), most=first)
            except NotFound:
                # No node subscribed for the key: uWSGI's mapper finds
                # none, and the session ends without a retry.
                return None
            except HttpError:
                retries = first
        else:
            # The same address each time, as uWSGI's mapper gives it.
            node = self._node(mapped_address(self.settings,
                                             key.decode("latin-1")))
            for retries in range(first):
                if found := self._try(node, retries):
                    return found
            retries += 1
        for address in self.fallback[:most + 1 - retries]:
            if found := self._try(self._node(address), retries):
                return found
            retries += 1
        return None
