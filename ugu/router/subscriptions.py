"""The router's subscription system (`http-subscription-server`).

Instances announce themselves in datagrams (ugu.subscription): each names
a key, the Host whose requests it serves, and its address.  The router
keeps a pool of nodes per key and sends a request to a node of its Host's
pool, taking the pool's nodes by uWSGI's weighted round robin.  A node
leaves its pool when it unsubscribes, when it refuses a connection, or
when it has not announced itself for `subscription-tolerance` seconds
(seen when its pool is next used, as in uWSGI); a pool without nodes goes
too.  A request whose Host has no pool (nor `http-subscription-
fallback-key` one) gets 404 and one whose nodes all fail 502, where
uWSGI closes the connection unanswered (README, differences).
"""

import os
import socket
import struct
import time

import gevent

from ugu import subscription
from ugu.http.errors import BadGateway, NotFound
from ugu.log import log
from ugu.options.expand import djb33x
from ugu.router.backends import Node, Nodes, numeric_family
from ugu.subscription import MAX_PACKET, SUBSCRIBE

# uWSGI's slots are a table of this many lists, the key's hash modulo it:
# the number its "new pool" line shows.
_HASH_SLOTS = 0xFFFF


class SubscribedNode(Node):
    """A node of a pool, as announced."""

    def __init__(self, announce, now):
        self.name = announce.address.decode("latin-1")
        super().__init__(_address(self.name))
        self.label = self.name
        self.modifiers = (announce.modifier1, announce.modifier2)
        self.weight = max(announce.weight, 1)
        self.wrr = 0
        self.last_check = now
        # A signed announce's time: the node's later ones must be newer.
        self.unix_check = announce.unix
        # The node's connections open (uWSGI's reference count), which
        # the lrc and wlrc algorithms choose by.
        self.reference = 0

    def _set_address(self, host, port):
        """A name is resolved at the node's first connect, by the request
        that makes it: the subscription server, which reads every
        announce in turn, waits on no resolver."""
        if numeric_family(host) is not None:
            super()._set_address(host, port)
        else:
            self.family, self.address = socket.AF_INET, (host, port)
            self._name = (host, port)

    def start_connect(self):
        backend = super().start_connect()
        self.reference += 1
        backend.release = self._release
        return backend

    def _release(self):
        self.reference -= 1

    def refresh(self, announce, now):
        self.last_check = now
        self.weight = max(announce.weight, 1)

    def retag(self, packet, settings):
        """The request's packet with this node's modifiers, unless the
        router sets its own (`http-modifier1`, `http-modifier2`), as in
        uWSGI."""
        modifier1 = settings.modifier1 or self.modifiers[0]
        modifier2 = settings.modifier2 or self.modifiers[1]
        if (modifier1, modifier2) == (packet[0], packet[3]):
            return packet
        return bytes((modifier1,)) + packet[1:3] + bytes((modifier2,)) \
            + packet[4:]


def _address(name):
    """A Node address of an announced one: HOST:PORT, a unix path or
    @NAME (an empty HOST is this machine)."""
    if name.startswith(("/", "@")) or ":" not in name:
        return name
    host, _, port = name.rpartition(":")
    # ASCII digits only: str.isdigit() takes "\xb2" too, int() not.
    digits = port.isascii() and port.isdigit()
    # A port past 65535 wraps, as uWSGI's htons() of it does (connect_ex
    # raised OverflowError in the router's loop); 10**16 is a multiple
    # of 65536, so the last 16 digits say it (int() refuses 4300 digits).
    return (host or "127.0.0.1", int(port[-16:]) % 65536 if digits else 0)


class Pool:
    def __init__(self, key):
        self.key = key
        self.nodes = []
        # The public key its announces are checked with
        # (subscriptions-sign-check), once one was.
        self.public_key = None
        # Whether an announce's TLS context for the key's name was added
        # (then later announces' files are not read again, as in uWSGI).
        self.sni = False


class Table:
    """The pools of one router process, by key (bytes)."""

    def __init__(self, tolerance, clock=time.monotonic, gateway="uWSGI http",
                 algo=None, check_dirs=(), signs=None):
        self.tolerance = tolerance
        # subscriptions-credentials-check: the folders where a key's file
        # must belong to the announce's sender.
        self.check_dirs = tuple(d.encode() for d in check_dirs)
        # subscriptions-sign-check: a ugu.subscription_sign.Checker, or
        # None.
        self.signs = signs
        # How a pool's node is chosen (subscription-algo).
        self.pick = _ALGOS[algo or "wrr"]
        # The router's name in the line for a node that unsubscribes.
        self.gateway = gateway
        self.pools = {}
        self.clock = clock
        self.pid = os.getpid()
        # A TLS router's sni(name, announce): adds a context for a
        # subscribed key's name from the files an announce names, and
        # says whether it did.
        self.sni = None

    def announce(self, announce, credentials=(0, 0, 0)):
        """Take an announce from a sender of `credentials` (pid, uid,
        gid: those a unix socket passed, else uWSGI's zeros; None for
        one another process of the router has checked).  Whether it was
        taken: a subscription the credentials check refuses is not."""
        if announce.command != SUBSCRIBE:
            return self._unsubscribe(announce, credentials)
        pool = self.pools.get(announce.key)
        signs = self.signs if credentials is not None else None
        public_key = None
        if signs is not None:
            # As uWSGI: the signature before the credentials.
            if pool is not None:
                if not signs.check(pool, announce, credentials):
                    return False
            else:
                taken, public_key = signs.new_pool(announce, credentials)
                if not taken:
                    return False
        if credentials is not None and not self.accepts(announce.key,
                                                        credentials):
            return False
        return self._subscribe(announce, signs, credentials, public_key)

    def accepts(self, key, credentials):
        """uWSGI's subscriptions-credentials-check: a file named the key
        (the folder's path and the key end to end) in one of the folders,
        of the sender's uid and gid."""
        if not self.check_dirs:
            return True
        _, uid, gid = credentials
        for folder in self.check_dirs:
            try:
                st = os.stat(folder + key)
            except (OSError, ValueError):
                continue
            if (st.st_uid, st.st_gid) == (uid, gid):
                return True
        return False

    def _subscribe(self, announce, signs=None, credentials=None,
                   public_key=None):
        now = self.clock()
        key = announce.key
        pool = self.pools.get(key)
        text = key.decode("latin-1")
        if pool is None:
            pool = self.pools[key] = Pool(key)
            pool.public_key = public_key
            log(f"[uwsgi-subscription for pid {self.pid}] new pool: {text} "
                f"(hash key: {djb33x(key) % _HASH_SLOTS})")
        name = announce.address.decode("latin-1")
        checked = signs is not None and signs.checks(pool) \
            and not signs.safe(credentials)
        for node in pool.nodes:
            if node.name == name:
                # A signed node's announces must be newer than its first
                # (uWSGI's check against a packet sent again).
                if checked and announce.unix <= node.unix_check:
                    signs.sniffed(announce)
                    return False
                node.refresh(announce, now)
                break
        else:
            if checked and signs.stale(announce, credentials):
                return False
            pool.nodes.append(SubscribedNode(announce, now))
            log(f"[uwsgi-subscription for pid {self.pid}] {text} => new "
                f"node: {name}")
            if announce.notify:
                _notify(announce.notify, f"[subscription ack] {text} => "
                        f"new node: {name}")
        if not pool.sni and announce.sni_key and announce.sni_crt:
            # The name a client asks for has no port.
            name = key.partition(b":")[0]
            if self.sni is not None:
                pool.sni = self.sni(name, announce)
            else:
                # Said once per pool: only the sslrouter serves TLS by
                # the name a client asks for.
                log(f'[uwsgi-subscription for pid {self.pid}] no SSL '
                    f'context added for "{name.decode("latin-1")}": '
                    f'only an sslrouter takes sni_key and sni_crt')
                pool.sni = True
        return True

    def _unsubscribe(self, announce, credentials=None):
        pool = self.pools.get(announce.key)
        name = announce.address.decode("latin-1")
        for node in pool.nodes if pool else ():
            if node.name == name:
                if self.signs is not None and credentials is not None \
                        and not self.signs.check(pool, announce,
                                                 credentials):
                    return False
                log(f"[{self.gateway} pid {self.pid}] "
                    f"{announce.key.decode('latin-1')} => marking {name} as "
                    f"failed")
                self.remove(pool, node)
                return True
        return True

    def remove(self, pool, node):
        if node in pool.nodes:
            pool.nodes.remove(node)
        if not pool.nodes and self.pools.get(pool.key) is pool:
            del self.pools[pool.key]

    def pool(self, key):
        """The pool of `key` without its nodes gone silent, or None."""
        pool = self.pools.get(key)
        if pool is None:
            return None
        now = self.clock()
        for node in list(pool.nodes):
            if now - node.last_check > self.tolerance:
                log(f"[uwsgi-subscription for pid {self.pid}] "
                    f"{key.decode('latin-1')} => marking {node.name} as "
                    f"failed (no announce received in {self.tolerance} "
                    f"seconds)")
                self.remove(pool, node)
        return self.pools.get(key)


def _wrr(pool, tried=()):
    """The pool's next node by weighted round robin, uWSGI's `wrr`:
    each node takes as many requests in a row as its weight is times
    the smallest, the last node first."""
    nodes = [node for node in pool.nodes if node not in tried]
    if not nodes:
        return None
    for node in nodes:
        if node.wrr > 0:
            node.wrr -= 1
            return node
    smallest = min(node.weight for node in nodes)
    for node in nodes:
        node.wrr = node.weight // smallest
    chosen = nodes[-1]
    chosen.wrr -= 1
    return chosen


def _least(pool, tried, load):
    """uWSGI's lrc and wlrc: the node of the least load(node), its
    connections open (by its weight for wlrc).  As uWSGI's, a load of
    0 is taken as "none found yet", so that of a run of idle nodes the
    last is chosen, and any node after an idle one too."""
    nodes = pool.nodes
    chosen, least = None, 0
    for index, node in enumerate(nodes):
        if node in tried:
            continue
        mine = load(node)
        if least == 0 or mine < least:
            least, chosen = mine, node
            following = nodes[index + 1] if index + 1 < len(nodes) else None
            if least == 0 and not (following is not None
                                   and load(following) <= mine):
                break
    return chosen


def _lrc(pool, tried=()):
    return _least(pool, tried, lambda node: node.reference)


def _wlrc(pool, tried=()):
    return _least(pool, tried, lambda node: node.reference / node.weight)


# subscription-algo's names (ugu.subscription.ALGOS).
_ALGOS = {"wrr": _wrr, "lrc": _lrc, "wlrc": _wlrc}


def _notify(path, message):
    """A line to an instance's subscription-notify-socket (a unix
    datagram socket), as uWSGI's router sends it; a socket that is not
    there misses it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.sendto(message.encode("latin-1"), path[:102])
    except OSError:
        pass
    finally:
        sock.close()


class WatchedTable(Table):
    """The pools, telling `changed` (a function) of each change: a
    router's cheap mode starts and stops accepting by them."""

    changed = None

    def announce(self, announce, credentials=(0, 0, 0)):
        taken = super().announce(announce, credentials)
        self.changed()
        return taken

    def remove(self, pool, node):
        super().remove(pool, node)
        self.changed()


class SubscribedNodes(Nodes):
    """The nodes of a router with a subscription server: those of the
    request's key (Nodes' interface, for the fast path and the greenlet
    code)."""

    def __init__(self, table, connect_timeout, fallback_key=None,
                 dotsplit=False):
        self.table = table
        self.connect_timeout = connect_timeout
        self.fallback_key = fallback_key
        # subscription-dotsplit: a key without a pool falls back to its
        # parts after each dot (`.example.com`, then `.com`).
        self.dotsplit = dotsplit

    def start_connect(self, head):
        # The node's own start_connect: a subscribed node counts its
        # connections.
        return self._first(head, (), SubscribedNode.start_connect_in_loop)

    def _first(self, head, tried, begin):
        pool = self._pool(head.key)
        if pool is None and tried:
            # Its last node has just failed and taken the pool with it.
            raise BadGateway("no subscribed node accepted the connection")
        if pool is None:
            raise NotFound(f"no subscribed node for the key "
                           f"{head.key.decode('latin-1')}")
        retries = len(tried)
        while (node := self.table.pick(pool, tried)) is not None:
            try:
                return node, begin(node)
            except OSError as e:
                self._failed(node, retries, head.key, e)
                retries += 1
        raise BadGateway("no subscribed node accepted the connection")

    def _pool(self, key):
        if self.dotsplit:
            return self._dotsplit_pool(key)
        pool = self.table.pool(key)
        if pool is None and self.fallback_key:
            pool = self.table.pool(self.fallback_key)
        return pool

    def _dotsplit_pool(self, key):
        """uWSGI's subscription-dotsplit: the pool of the key, else of
        what follows its next dot, the dot kept, five keys at most; no
        fallback key then, as in uWSGI."""
        for _ in range(5):
            pool = self.table.pool(key)
            if pool is not None:
                return pool
            dot = key.find(b".", 1)
            if dot < 0:
                return None
            key = key[dot:]
        return None

    def failed(self, node, retries, key, error):
        """A subscribed node that refused leaves its pool, as in uWSGI."""
        super().failed(node, retries, key, error)
        for pool in list(self.table.pools.values()):
            if node in pool.nodes:
                self.table.remove(pool, node)


class SubscriptionServer:
    """Reads the announces of one datagram socket into the table, in a
    greenlet of its own; each also goes to `peers`, the router's other
    processes (ugu.router.mesh), whose inboxes are read with none."""

    def __init__(self, sock, table, peers=(), name="http",
                 resubscriber=None, credentials=False, peer_inbox=False):
        """`resubscriber`: what passes each announce on to other
        servers (ugu.router.resubscribe), or None; `credentials`:
        subscriptions-use-credentials (a unix socket's announces come
        with their sender's pid, uid and gid, and one without is
        dropped); `peer_inbox`: the socket is the one the router's other
        processes pass their announces on (ugu.router.mesh), checked
        there."""
        self.sock = sock
        self.table = table
        self.credentials = credentials and not peer_inbox \
            and sock.family == socket.AF_UNIX
        self.peer_inbox = peer_inbox
        self.resubscriber = resubscriber
        self.peers = peers
        self.name = name
        self.greenlet = None
        if peers:
            # Here, not at the first announce: the process may have
            # dropped its privileges by then (http-uid).
            from ugu.router.mesh import forward
            self._forward = forward

    def start(self):
        self.greenlet = gevent.spawn(self._serve)

    def close(self):
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
        self.sock.close()

    def _serve(self):
        sock = socket.socket(fileno=self.sock.detach())
        self.sock = sock
        if self.credentials:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        while True:
            try:
                if self.credentials:
                    data, credentials = _recv_credentials(sock)
                    if credentials is None:
                        continue
                else:
                    data = sock.recv(MAX_PACKET)
                    credentials = None if self.peer_inbox else (0, 0, 0)
            except OSError as e:
                log(f"[uwsgi-subscription for pid {self.table.pid}] "
                    f"recv(): {e.strerror or e}")
                gevent.sleep(0.1)
                continue
            announce = subscription.decode(data)
            if announce is None:
                continue
            try:
                taken = self.table.announce(announce, credentials)
            except Exception as e:
                # No packet may end the server: the nodes announced
                # after it would be dropped at their tolerance.
                log(f"[uwsgi-subscription for pid {self.table.pid}] "
                    f"{announce.key.decode('latin-1')}: cannot add "
                    f"{announce.address.decode('latin-1')}: {e}")
                taken = True
            if self.peers and taken:
                # Checked here: the others take it as it is.
                self._forward(self.peers, data, self.name)
            if self.resubscriber is not None:
                self.resubscriber.send(announce)


_CREDENTIALS = struct.calcsize("3i")


def _recv_credentials(sock):
    """(a datagram, its sender's (pid, uid, gid)), None for those of one
    that came without them, as uWSGI drops it."""
    data, ancillary, _, _ = sock.recvmsg(
        MAX_PACKET, socket.CMSG_SPACE(_CREDENTIALS))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS \
                and len(payload) >= _CREDENTIALS:
            return data, struct.unpack("3i", payload[:_CREDENTIALS])
    return data, None
