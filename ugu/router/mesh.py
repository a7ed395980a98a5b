"""The links between the processes of one router (http-processes,
fastrouter-processes...) that share a subscription server: the kernel
gives each announce to one process only, which passes it on to the
others, as uWSGI's routers pass theirs, so that every process knows
every node.

The master makes the links once, before it forks the first process, and
keeps them: a respawned process reads what was sent while it was down.
"""

import socket


class Mesh:
    """One unix datagram pair per process: the process reads its own
    inbox (`inbox(index)`) and writes to the others' (`peers(index)`)."""

    def __init__(self, count):
        self.pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
                      for _ in range(count)]
        for inbox, outbox in self.pairs:
            outbox.setblocking(False)

    def inbox(self, index):
        """The socket process `index` (from 1) reads its peers' announces
        on."""
        return self.pairs[index - 1][0]

    def peers(self, index):
        """The sockets process `index` writes its announces to."""
        return [outbox for number, (_, outbox) in
                enumerate(self.pairs, start=1) if number != index]


# The peers' sockets whose inbox was full at the last announce: said
# once, until an announce passes again, so that a flood of announces to
# a process that is slow (or stopped) does not flood the log.
_full = set()


def forward(peers, data, name):
    """Send an announce to the other processes; one that cannot take it
    now (its inbox is full) misses it, and hears of the node at its next
    announce."""
    for sock in peers:
        try:
            sock.send(data)
        except OSError as e:
            if sock in _full:
                continue
            _full.add(sock)
            from ugu.log import log
            log(f"[uwsgi-{name}] cannot pass a subscription to another "
                f"process: {e.strerror or e} (said once until one passes)")
        else:
            _full.discard(sock)
