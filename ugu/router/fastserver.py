"""The fastrouter's process (ugu.router.fastrouter): its sessions read
a uwsgi packet for the key and pass it on; the rest is the corerouters'
(ugu.router.coreserver), imported once gevent has patched the process.
"""

import time

from ugu import protocol
from ugu.http.errors import HttpError, NotFound
from ugu.router.coreserver import Corerouter, Key, Session
from ugu.router.fastrouter import (GATEWAY, NAME, mapped_address,
                                   request_key)


class FastSession(Session):
    """One client connection: its uwsgi request passed to the node of its
    key, the answer passed back."""

    errors = Session.errors + (protocol.ProtocolError,)

    def _run(self):
        data = self._read_packet()
        if data is None:
            return
        size = protocol.decode_header(data)[1]
        block, rest = data[4:4 + size], data[4 + size:]
        key, length = request_key(block)
        if not key:
            return
        body = None
        if self.settings.post_buffering and length:
            body = self._buffer_body(rest, length)
            rest = b""
        found = self.router.connect(key)
        if found is None:
            return
        node, backend = found
        try:
            modifiers = getattr(node, "modifiers", (0, 0))
            packet = protocol.HEADER.pack(modifiers[0], size, modifiers[1])
            backend.sendall(packet + block + rest, self.settings.timeout)
            if body is not None:
                self._send_body(backend, body)
            self._relay(backend)
        finally:
            backend.close()
            if body is not None:
                body.close()

    def _read_packet(self):
        """The uwsgi header, its vars and what came with them; None if
        the client leaves before."""
        data = b""
        need = protocol.HEADER_SIZE
        while len(data) < need:
            more = self._recv(self.client)
            if not more:
                return None
            data += more
            if need == protocol.HEADER_SIZE and len(data) >= need:
                need += protocol.decode_header(data)[1]
        return data

    def _buffer_body(self, rest, length):
        """fastrouter-post-buffering: the whole body, read before any
        node is connected (in memory up to the setting, else a file)."""
        import tempfile     # only with post-buffering (its modules cost)
        body = tempfile.SpooledTemporaryFile(self.settings.post_buffering)
        body.write(rest[:length])
        left = length - len(rest)
        while left > 0:
            data = self._recv(self.client)
            if not data:
                body.close()
                raise ConnectionError("request body cut short")
            body.write(data[:left])
            left -= len(data)
        body.seek(0)
        return body

    def _send_body(self, backend, body):
        while data := body.read(65536):
            backend.sendall(data, self.settings.timeout)
            self.last = time.monotonic()


class Fastrouter(Corerouter):
    name, gateway, session = NAME, GATEWAY, FastSession

    def connect(self, key):
        """(the node, a connected Backend) for the request of `key`, or
        None when no node takes it: each failure is logged, then the
        fastrouter-fallback nodes are tried, in order."""
        head = Key(key)
        retries = 1
        if self.nodes is not None:
            try:
                return self.nodes.connect(head)
            except NotFound:
                if not self.settings.fallback_on_no_key:
                    return None
            except HttpError:
                found = self._fallback_pool(head)
                if found:
                    return found
        elif (address := mapped_address(self.settings, key)) is not None:
            found = self._try(self._node(address), 0)
            if found:
                return found
        for address in self.fallback:
            found = self._try(self._node(address), retries)
            if found:
                return found
            retries += 1
        return None

    def _fallback_pool(self, head):
        """When the nodes of a key all failed (and left their pool), the
        request goes to the fallback key's, as uWSGI's retry finds it."""
        if self.table is None or self.settings.fallback_key is None \
                or head.key == self.settings.fallback_key:
            return None
        try:
            return self.nodes.connect(head)
        except HttpError:
            return None

