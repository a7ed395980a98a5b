"""The routers' processes ("uWSGI http N", "uWSGI fastrouter N"...),
forked by a vassal's master.

The master binds the `http` and `https` listeners, logs them, resets signals and asks
for death with itself, then calls `run` in the child.  Only this process
uses gevent, so it patches the standard library here, before any gevent
machinery exists; that is also why nothing at this module's top imports
gevent or the modules that use it.
"""

import os
import sys

from ugu import proc


def run(config, listeners, backends, index, mesh=None, names=(),
        ids=None):
    """Serve HTTP on `listeners` ((socket, ssl.SSLContext, Redirect or
    None) pairs), forwarding to `backends` (("host", port) tuples or unix
    socket paths), until a stop signal; then exit the process.  `mesh`:
    the links to the router's other processes (ugu.router.mesh), or
    None; `names`: the listeners' addresses, for the stats server;
    `ids`: (its name, uid, gid) for drop_to."""
    _patch_stdlib()
    _watch()
    _fast_open(config)
    from ugu.router.server import serve
    from ugu.router.settings import Settings

    proc.set_title(config, f"uWSGI http {index}")
    proc.trim_heap()
    serve(Settings.from_config(config), listeners, backends, index, mesh,
          names, ready=lambda: drop_to(*ids) if ids else None)
    sys.stdout.flush()
    sys.stderr.flush()
    # A forked child: the parent's exit handlers are not ours to run.
    os._exit(0)


def run_corerouter(config, listeners, index, gateway, server, settings,
                   mesh=None, ids=None, to=None):
    """Serve as `gateway` `index` (the fastrouter, rawrouter or
    sslrouter) on `listeners` until a stop signal, then exit the process:
    `server()` gives the router's class, from a module imported once
    gevent has patched the standard library; `mesh` links it to the
    router's other processes (ugu.router.mesh), or is None; `to`: the
    instance's socket its -use-socket names, its only node."""
    _patch_stdlib()
    _watch()
    _fast_open(config)
    proc.set_title(config, f"{gateway} {index}")
    if to is not None:
        import dataclasses
        settings = dataclasses.replace(settings, static=(to,))
    router = server()(settings, listeners, index, mesh)
    proc.trim_heap()
    router.serve(ready=lambda: drop_to(*ids) if ids else None)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _fast_open(config):
    if config["tcp-fast-open-client"]:
        from ugu.router.backends import use_fast_open
        use_fast_open()


def _watch():
    """The router's harakiri (ugu.router.watchdog), where it has one."""
    watchdog = sys.modules.get("ugu.router.watchdog")
    if watchdog is not None:
        watchdog.start()


def _patch_stdlib():
    """gevent's patches of the standard library, less two costs a router
    need not pay: ssl's (the routers speak TLS through memory BIOs, never
    an SSLSocket, and the patch loads OpenSSL's 3 MB whether or not TLS
    is configured) and, at each patch, the search of every installed
    package's metadata for gevent plugins (4 MB of modules; no user code
    runs in a router to plug into it)."""
    from gevent import events, monkey
    events.notify_and_call_entry_points = events.notify
    monkey.patch_all(ssl=False)


def drop_to(name, uid, gid):
    """A router process's setgid() and setuid() (http-uid, fastrouter-gid
    ...), with uWSGI's lines, once it is set up: what it imports later
    might not be readable by that user (a Python under /root).  A
    failure ends the process, as uWSGI's."""
    if not (uid or gid):
        return
    # What the process may still load: the idna codec (a node's name),
    # gevent's resolver (a subscribed node's).
    "localhost".encode("idna")
    import socket
    socket.getaddrinfo("127.0.0.1", None)
    call = None
    try:
        if gid:
            call = "setgid"
            proc_log(f"{name} setgid() to {gid}")
            # And no supplementary group of root's (uWSGI keeps them).
            if os.getuid() == 0:
                os.setgroups([])
            os.setgid(gid)
        if uid:
            call = "setuid"
            proc_log(f"{name} setuid() to {uid}")
            os.setuid(uid)
    except OSError as e:
        proc_log(f"gateway_respawn()/{call}(): {e.strerror}")
        sys.stdout.flush()
        os._exit(1)


def proc_log(line):
    from ugu.log import log
    log(line)
