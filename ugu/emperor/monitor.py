"""Which vassal files exist, and what changed since the last look.

A monitor turns one `emperor` value into the vassal files it finds now;
`diff` compares those with what the Emperor already knows and says what was
Added, Changed or Removed.  Only the monitors' `scan` reads the filesystem:
`diff` takes plain values, so tests feed it by hand.  No clock is needed:
a change is an mtime that grew, in whole seconds, as uWSGI compares them.
"""

import glob
import os
import stat
from dataclasses import dataclass, field, replace

from ugu import log
from ugu.options import registry
from ugu.options.errors import ConfigError

# uWSGI's vassal config formats, by extension, and the option reading each.
FORMATS = {".ini": "ini", ".xml": "xml", ".yml": "yaml", ".yaml": "yaml",
           ".js": "json", ".json": "json"}
# A file is a vassal only in a format ugu can read.
EXTENSIONS = tuple(ext for ext, option in FORMATS.items()
                   if registry.lookup(option))
# uWSGI skips vassal names this long or longer.
MAX_NAME = 255
GLOB_SCHEME = "glob://"
DIR_SCHEME = "dir://"


@dataclass(frozen=True)
class Found:
    name: str    # the vassal's id: what `--ini` gets and the log shows
    mtime: int
    cwd: str     # where the vassal starts
    monitor: str = field(default="", compare=False)   # the `emperor` value

    @property
    def path(self):
        return os.path.join(self.cwd, self.name)


@dataclass(frozen=True)
class Added:
    found: Found


@dataclass(frozen=True)
class Changed:
    found: Found


@dataclass(frozen=True)
class Removed:
    name: str


def diff(known, found):
    """Events that turn `known` ({name: mtime}) into `found` (Founds)."""
    events = []
    for f in found:
        if f.name not in known:
            events.append(Added(f))
        elif f.mtime > known[f.name]:
            events.append(Changed(f))
    names = {f.name for f in found}
    events.extend(Removed(name) for name in known if name not in names)
    return events


class GlobMonitor:
    """Vassals are the pattern's matches from folder `cwd` (the Emperor's
    start folder), named as matched (absolute only if the pattern is);
    they start in that folder."""

    def __init__(self, pattern, spec=None, nofollow=False, cwd=None):
        self.pattern = pattern
        self.spec = spec or pattern   # the `emperor` value, for the stats
        self.cwd = cwd or os.getcwd()
        self.nofollow = nofollow

    def scan(self):
        paths = sorted(glob.glob(self.pattern, root_dir=self.cwd))
        found = (_found(os.path.join(self.cwd, p), p, self.cwd,
                        self.nofollow) for p in paths)
        return [f for f in found if f]

    def home(self):
        """The folder its vassals are named from (UWSGI_VASSALS_DIR)."""
        return self.cwd

    def directories(self):
        """Where a new match would appear: the folders the pattern's last
        part is matched in, and the deepest folder free of wildcards (for
        a new folder of `/srv/www/*/uwsgi.ini`)."""
        parent = os.path.join(self.cwd, os.path.dirname(self.pattern))
        fixed = parent
        while glob.has_magic(fixed):
            fixed = os.path.dirname(fixed)
        found = [d for d in glob.glob(parent) if os.path.isdir(d)]
        return [os.path.normpath(d) for d in {fixed, *found}]


class DirMonitor:
    """Vassals are the directory's files, named bare and started in it."""

    def __init__(self, directory, spec=None, nofollow=False):
        self.directory = os.path.abspath(directory)
        self.spec = spec or directory
        self.nofollow = nofollow

    def scan(self):
        try:
            names = sorted(os.listdir(self.directory))
        except OSError as e:
            # Its vassals are then stopped, as if their files were removed.
            log.verbose(f"[emperor] cannot scan {self.directory}: "
                        f"{e.strerror}")
            return []
        found = (_found(os.path.join(self.directory, name), name,
                        self.directory, self.nofollow) for name in names)
        return [f for f in found if f]

    def directories(self):
        return [self.directory]

    def home(self):
        return os.path.realpath(self.directory)


def _found(path, name, cwd, nofollow=False):
    """`nofollow` (emperor-nofollow): a symlink is a vassal file of its
    own, its mtime the link's, as uWSGI's lstat() gives them."""
    if not name.endswith(EXTENSIONS) or len(name) >= MAX_NAME:
        return None
    try:
        st = os.lstat(path) if nofollow else os.stat(path)
    except OSError:
        # Gone since the listing, or a dangling symlink: not a vassal now.
        return None
    if not (stat.S_ISREG(st.st_mode)
            or (nofollow and stat.S_ISLNK(st.st_mode))):
        return None
    return Found(name, int(st.st_mtime), cwd)


def config_option(name):
    """The option that loads vassal file `name`: `ini`, `json`, ..."""
    return FORMATS[os.path.splitext(name)[1]]


def monitor_for(spec, nofollow=False, home=None):
    """The monitor an `emperor` value asks for, as uWSGI chooses it: a
    pattern whose only match is a directory watches that directory.  A
    glob pattern matches from `home` (by default, this folder); a
    directory is taken from this folder."""
    if spec.startswith(GLOB_SCHEME):
        return GlobMonitor(spec[len(GLOB_SCHEME):], spec, nofollow, home)
    if spec.startswith(DIR_SCHEME):
        return DirMonitor(spec[len(DIR_SCHEME):], spec, nofollow)
    if "://" in spec:
        raise ConfigError(f"ugu has only the glob:// and dir:// monitors, "
                          f"not '{spec}'", option="emperor")
    matches = glob.glob(spec)
    if len(matches) == 1 and os.path.isdir(matches[0]):
        return DirMonitor(matches[0], spec, nofollow)
    return GlobMonitor(spec, nofollow=nofollow, cwd=home)


def scan_all(monitors):
    """Every monitor's files; a name found twice keeps its first find."""
    found = {}
    for monitor in monitors:
        for f in monitor.scan():
            found.setdefault(f.name, replace(f, monitor=monitor.spec))
    return list(found.values())
