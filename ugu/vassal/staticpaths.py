"""static-cache-paths: the real path each static file's name resolved to,
kept in a cache for N seconds, as uWSGI keeps it.

The key is the name as the lookup makes it (a root, "/", and PATH_INFO:
`/srv/static//a.txt`; a file mapped, or a `static:` route's path, as it
is); the value, its real path.  As in uWSGI, the cache is read before the
name is resolved, and a name that resolves to anything (a folder, a file
outside its root) is stored, at once, for the seconds given; a name that
resolves to nothing is not.  While its item lives the name keeps its old
target (a symlink pointed elsewhere still serves the file it led to, and
a file gone is not served: the app has the request).  The app and the
routes see the items, as uWSGI's do.

ugu still opens what the item names and checks that the file lies inside
its root (README difference 10): a cached path is no way out.

Imported only where static-cache-paths is set.
"""

import os

from ugu.options.errors import ConfigError
from ugu.vassal import cache
from ugu.vassal.static import PATH_MAX, real_path


class ResolvedPaths:
    """The real paths of static files' names, in a cache."""

    def __init__(self, paths_cache, seconds):
        self.cache = paths_cache
        self.seconds = seconds

    @classmethod
    def from_config(cls, config, caches):
        """The cache static-cache-paths-name names (else the first),
        checked at start-up as uWSGI checks it."""
        name = config["static-cache-paths-name"]
        if name is None:
            if caches is None:
                raise ConfigError("caching of static paths requires uWSGI "
                                  "caching !!! (add a cache2 or a cache)",
                                  option="static-cache-paths")
            return cls(caches.by_name(None), config["static-cache-paths"])
        found = caches.by_name(name) if caches else None
        if found is None:
            raise ConfigError(f'unable to find cache "{name}"',
                              option="static-cache-paths-name")
        return cls(found, config["static-cache-paths"])

    def real_path(self, name):
        """The real path of the file `name`, from the cache, else
        resolved and stored; None where it resolves to nothing."""
        key = os.fsencode(name)
        with self.cache:
            found = self.cache.get(key)
        if found and len(found) <= PATH_MAX:
            # An item the app stored there is a path too, which ends at
            # a NUL as uWSGI's system calls read it.
            return os.fsdecode(found.partition(b"\0")[0])
        try:
            resolved = real_path(name)
        except OSError:
            return None
        with self.cache:
            self.cache.set(key, os.fsencode(resolved), self.seconds,
                           cache.UPDATE)
        return resolved
