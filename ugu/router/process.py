"""The HTTP router process ("uWSGI http N"), forked by a vassal's master.

The master binds the `http` and `https` listeners, logs them, resets signals and asks
for death with itself, then calls `run` in the child.  Only this process
uses gevent, so it patches the standard library here, before any gevent
machinery exists; that is also why nothing at this module's top imports
gevent or the modules that use it.
"""

import os
import sys

from ugu import proc


def run(config, listeners, backends, index):
    """Serve HTTP on `listeners` ((socket, ssl.SSLContext, Redirect or
    None) pairs), forwarding to `backends` (("host", port) tuples or unix
    socket paths), until a stop signal; then exit the process."""
    from gevent import monkey
    monkey.patch_all()
    from ugu.router.server import serve
    from ugu.router.settings import Settings

    proc.set_title(config, f"uWSGI http {index}")
    serve(Settings.from_config(config), listeners, backends)
    sys.stdout.flush()
    sys.stderr.flush()
    # A forked child: the parent's exit handlers are not ours to run.
    os._exit(0)
