"""uWSGI's mules: processes beside the workers, for work a request
should not wait for.

`mule = FILE.py` runs that script as __main__ in mule N (numbered in
the order of the `mule` and `mules` lines), `mule = module:callable`
calls that; a bare mule (`mule =`, `mules = N`) waits for messages and
hands each to the app's `uwsgi.mule_msg_hook`, or says it got one.  A
script that ends ends its mule, which the master then respawns, as
uWSGI's does.  `farm = NAME:1,2` groups mules under a name.

Messages travel as uWSGI sends them: over non-blocking SEQPACKET
socket pairs made before any fork (one per mule, one per farm, one that
any mule reads), so that a message is a datagram, a send to a full
queue fails at once, and a read with a smaller buffer cuts the message
short.  `mule-msg-size` sets their socket buffers (uWSGI leaves the
kernel's default without it).

A mule also runs the uWSGI signal handlers meant for it (signals.py):
a bare mule as they come, a script's mule while it waits in
mule_get_msg, under mule-harakiri.
"""

import importlib
import os
import select
import signal
import socket
import sys

from ugu import log, proc
from ugu.options.errors import ConfigError
from ugu.options.expand import atoi

# What uWSGI's mules read a message into, unless mule_get_msg is told.
MESSAGE_BUFFER = 65536


class Queue:
    """A message queue: the workers send into one end, mules read the
    other."""

    def __init__(self, size):
        self.send_end, self.receive_end = socket.socketpair(
            socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for end in (self.send_end, self.receive_end):
            end.setblocking(False)
            if size:
                end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
                end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def send(self, message):
        """True once queued; False, said in uWSGI's words, when not."""
        try:
            self.send_end.send(message)
            return True
        except BlockingIOError:
            size = self.send_end.getsockopt(socket.SOL_SOCKET,
                                            socket.SO_SNDBUF)
            log.log(f"*** MULE MSG QUEUE IS FULL: buffer size {size} bytes "
                    f"(you can tune it with --mule-msg-size) ***")
        except OSError as e:
            log.log(f"mule_send_msg(): {e.strerror} [core/mule.c line 28]")
        return False


class Farm:
    def __init__(self, name, ids, size):
        self.name, self.ids = name, ids
        self.queue = Queue(size)


class Mules:
    """The instance's mules and farms, made in the master before any
    fork and inherited by every process."""

    def __init__(self, patches, farms, size):
        self.patches = patches      # mule id - 1 -> its script, or ""
        self.queues = [Queue(size) for _ in patches]
        self.shared = Queue(size)   # read by whichever mule is free
        self.farms = farms

    @classmethod
    def from_config(cls, config):
        """None without mules; the farms' lines logged as uWSGI logs
        them."""
        patches = _patches(config)
        if not patches and not config["farm"]:
            return None
        size = config["mule-msg-size"]
        farms = []
        for index, value in enumerate(config["farm"], 1):
            farms.append(_farm(value, len(patches), size))
            log.log(f"created farm {index} name: {farms[-1].name} "
                    f"mules:{value.partition(':')[2]}")
        return cls(patches, farms, size)

    def __len__(self):
        return len(self.patches)

    def farm(self, name):
        found = [farm for farm in self.farms if farm.name == name]
        return found[0] if found else None

    def farms_of(self, mule_id):
        return [farm for farm in self.farms if mule_id in farm.ids]

    def inbox(self, mule_id, farms=True):
        """The sockets mule `mule_id` reads, its own first."""
        ends = [self.queues[mule_id - 1].receive_end,
                self.shared.receive_end]
        if farms:
            ends += [farm.queue.receive_end
                     for farm in self.farms_of(mule_id)]
        return ends


def count(config):
    """How many mules the config asks for."""
    return len(_patches(config))


def _patches(config):
    """Each mule's script ("" for a bare one), in the order the `mule`
    and `mules` lines came, as uWSGI numbers them."""
    scripts, counts = iter(config["mule"]), iter(config["mules"])
    patches = []
    for entry in config.entries:
        if entry.placeholder:
            continue
        if entry.key == "mule":
            patches.append(next(scripts, ""))
        elif entry.key == "mules":
            patches += [""] * max(next(counts, 0), 0)
    return patches


def _farm(value, count, size):
    name, colon, ids = value.partition(":")
    if not colon:
        raise ConfigError(f"invalid farm value ({value}) must be in the "
                          f"form name:mule[,muleN].", option="farm")
    numbers = []
    for text in ids.split(","):
        if not 1 <= atoi(text) <= count:
            raise ConfigError(f"invalid mule id: {text}", option="farm")
        numbers.append(atoi(text))
    return Farm(name, numbers, size)


def receive(ends, buffer_size, timeout=None, uwsgi_signals=None):
    """The first message waiting on `ends`, cut to `buffer_size`; b""
    when `timeout` seconds pass first; None once a uWSGI signal came
    and its handler ran, where `uwsgi_signals` are taken."""
    inbox = uwsgi_signals.inbox if uwsgi_signals else []
    poller = select.poll()
    for end in ends + inbox:
        poller.register(end, select.POLLIN)
    wait = None if timeout is None else timeout * 1000
    while True:
        ready = {fd for fd, _ in poller.poll(wait)}
        if not ready:
            return b""
        for end in ends:
            if end.fileno() in ready:
                try:
                    return end.recv(buffer_size)
                except BlockingIOError:
                    # Another mule took it first.
                    break
        for end in inbox:
            if end.fileno() in ready and uwsgi_signals.receive(end):
                return None


def run(mules, mule_id, config, master, listeners, enter, hook,
        uwsgi_signals=None, hooks=None):
    """Mule `mule_id`'s life, after fork, `enter` called with its id once
    it is one, `hook` giving the app's mule_msg_hook, then the as-mule
    `hooks` run (a fatal failure asks the master to end the instance,
    and the mule goes on, as uWSGI's).  Never returns."""
    # As uWSGI's mules: ended by HUP, INT and TERM (the defaults).
    proc.enter_side_process(
        config, master, listeners,
        (signal.SIGUSR1, signal.SIGUSR2, signal.SIGPIPE),
        f"uWSGI mule {mule_id}")
    proc.unblock_signals()
    enter(mule_id)
    if hooks:
        from ugu.vassal.hooks import signal_master
        hooks.run("as-mule", on_fatal=signal_master(master))
    patch = mules.patches[mule_id - 1]
    try:
        if patch.endswith(".py"):
            import runpy
            runpy.run_path(patch, run_name="__main__")
        elif ":" in patch:
            module, _, name = patch.partition(":")
            getattr(importlib.import_module(module), name)()
        else:
            _wait_for_messages(mules, mule_id, hook, uwsgi_signals)
    except SystemExit:
        pass
    except BaseException:
        log.app_traceback()
    # Its script over, the mule ends, and the master respawns it.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def _wait_for_messages(mules, mule_id, hook, uwsgi_signals):
    """A bare mule: each message to the app's mule_msg_hook, or said;
    each uWSGI signal to its handler."""
    ends = mules.inbox(mule_id)
    while True:
        message = receive(ends, MESSAGE_BUFFER, None, uwsgi_signals)
        if message is None:
            continue
        found = hook()
        if found is None:
            log.log(f"*** mule {mule_id} received a {len(message)} bytes "
                    f"message ***")
            continue
        try:
            found(message)
        except Exception:
            log.app_traceback()
