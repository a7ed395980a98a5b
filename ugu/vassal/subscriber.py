"""The master's subscriptions (`subscribe-to`, `subscribe2`): it
announces the instance to each router's subscription server once it has
spawned its processes, again every `subscribe-freq` seconds so that the
router keeps it (a node not heard from for the router's
`subscription-tolerance` is dropped), and takes it back when it stops, as
uWSGI's master does.  `start-unsubscribed` holds every packet until the
master fifo's `S` lets them go.
"""

import os
import socket
import struct

from ugu import log, subscription
from ugu.options.errors import ConfigError
from ugu.subscription import SUBSCRIBE, UNSUBSCRIBE, Announce


class Subscriber:
    def __init__(self, config, subscriptions, default_address, cores):
        self.subscriptions = subscriptions
        self.default_address = default_address
        self.cores = cores
        self.weight = config["weight"]
        # auto-weight: the cores, over every other weight, as uWSGI's.
        self.auto_weight = bool(config["auto-weight"])
        self.freq = max(config["subscribe-freq"], 1)
        self.on_graceful_reload = config["unsubscribe-on-graceful-reload"]
        self.blocked = config["start-unsubscribed"]
        forced = config["subscribe-with-modifier1"]
        # subscribe-with-modifier1: over each subscription's own, as
        # uWSGI reads it (atoi, one byte).
        self.modifier1 = None if forced is None \
            else subscription.atoi(forced) % 256
        self.credentials = config["subscriptions-use-credentials"]
        notify = config["subscription-notify-socket"]
        self.notify = notify.encode() if notify else b""
        self.cycles = 0
        self._sockets = {}
        # Each signed subscription's Signer.
        self._signers = {}
        for sub in subscriptions:
            if sub.sign:
                from ugu.subscription_sign import Signer
                option = "subscribe-to" if sub.text in \
                    config["subscribe-to"] else "subscribe2"
                self._signers[sub] = Signer(sub.sign, option)

    @classmethod
    def from_config(cls, config, socket_names):
        """A Subscriber, or None where the config subscribes nowhere;
        `socket_names`: the instance's sockets as written, in order."""
        found = [subscription.parse_subscribe(text, socket_names)
                 for text in config["subscribe-to"]]
        found += [subscription.parse_subscribe2(text, socket_names)
                  for text in config["subscribe2"]]
        if not found:
            return None
        if not socket_names and any(s.address is None for s in found):
            option = "subscribe-to" if config["subscribe-to"] \
                else "subscribe2"
            raise ConfigError(
                "the instance has no socket to announce: add `socket = "
                "ADDR` (or name the address, ADDR=SERVER:KEY)",
                option=option)
        cores = config["processes"] * config["threads"]
        return cls(config, found, socket_names[0] if socket_names else "",
                   cores)

    def subscribe_all(self, verbose=True):
        self._send_all(SUBSCRIBE, verbose)

    def unsubscribe_all(self):
        self._send_all(UNSUBSCRIBE, True)

    def tick(self):
        """Once a master cycle (a second): the announce after the first
        cycle and every subscribe-freq cycles, as uWSGI counts them."""
        self.cycles += 1
        if self.cycles == 1 or self.cycles % self.freq == 0:
            self.subscribe_all(verbose=False)

    def toggle_block(self):
        """The master fifo's `S`, in uWSGI's words."""
        self.blocked = not self.blocked
        log.verbose("subscriptions blocked" if self.blocked
                    else "subscriptions re-enabled")

    def close(self):
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def _send_all(self, command, verbose):
        if self.blocked:
            return
        verb = "unsubscribing from" if command else "subscribing to"
        for sub in self.subscriptions:
            if verbose:
                log.log(f"{verb} {sub.text}")
            if sub.check and os.path.exists(sub.check):
                continue
            for key, modifier1 in sub.keys():
                self._send(sub, command, key, modifier1)

    def _send(self, sub, command, key, modifier1):
        weight = self.weight if sub.weight is None else sub.weight
        if self.auto_weight:
            weight = self.cores
        address = sub.address or self.default_address
        if self.modifier1 is not None:
            modifier1 = self.modifier1
        data = subscription.encode(Announce(
            command, key.encode(), address.encode(), modifier1,
            sub.modifier2, self.cores, 0, weight, **dict(sub.sni),
            notify=self.notify), self._signers.get(sub))
        unix = sub.server.startswith("/")
        try:
            sock = self._socket(unix)
            if unix and self.credentials:
                # The sender's ids, as uWSGI sends them: the real ones.
                ids = struct.pack("3i", os.getpid(), os.getuid(),
                                  os.getgid())
                sock.sendmsg([data], [(socket.SOL_SOCKET,
                                       socket.SCM_CREDENTIALS, ids)],
                              0, sub.server)
            elif unix:
                sock.sendto(data, sub.server)
            else:
                host, _, port = sub.server.rpartition(":")
                sock.sendto(data, (host or "127.0.0.1", int(port)))
        except OSError as e:
            # uWSGI's words for a packet that could not go.
            log.log(f"send_subscription()/sendto(): {e.strerror or e} "
                    f"[{sub.server}]")

    def _socket(self, unix):
        sock = self._sockets.get(unix)
        if sock is None:
            family = socket.AF_UNIX if unix else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            self._sockets[unix] = sock
        return sock
