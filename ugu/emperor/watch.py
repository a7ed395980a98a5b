"""Wake the Emperor as soon as a vassal file may have changed.

The Emperor scans on every wake-up, so a watcher only has to say "look
now": it never reports what changed, and a missed event costs no more than
a wait for the next `emperor-freq` scan.  Linux's inotify does it through
`inotify_simple`, chosen over watchdog because it is a bare wrapper whose
fd joins the Emperor's one select(); watchdog would run an observer thread
in a process that forks vassals.  Elsewhere, or without free inotify
instances, the Emperor falls back to its scans alone.
"""

import os

from ugu import log

try:
    from inotify_simple import INotify, flags
except ImportError:     # not Linux, or not installed: scans only
    INotify = None

if INotify is not None:
    # Not IN_CREATE for files: a new file is read once it is closed
    # (IN_CLOSE_WRITE), never half written.  `touch` is IN_ATTRIB.
    MASK = (flags.CLOSE_WRITE | flags.ATTRIB | flags.MOVED_TO
            | flags.MOVED_FROM | flags.DELETE | flags.CREATE
            | flags.DELETE_SELF | flags.MOVE_SELF)


class Watcher:
    """One inotify instance watching a changing set of directories."""

    def __init__(self, inotify):
        self.inotify = inotify
        self.watches = {}        # directory -> watch descriptor

    @classmethod
    def create(cls):
        """A Watcher, or None where the platform cannot watch files."""
        if INotify is None:
            return None
        try:
            return cls(INotify())
        except OSError as e:
            log.verbose(f"[emperor] no inotify ({e.strerror}): scanning "
                        "every emperor-freq seconds only")
            return None

    def fileno(self):
        return self.inotify.fileno()

    def watch(self, directories):
        """Watch exactly `directories` from now on."""
        for gone in set(self.watches) - set(directories):
            self._unwatch(gone)
        for directory in set(directories) - set(self.watches):
            try:
                self.watches[directory] = self.inotify.add_watch(directory,
                                                                 MASK)
            except OSError:
                # Gone already, or not readable: the scans still see it.
                continue

    def _unwatch(self, directory):
        try:
            self.inotify.rm_watch(self.watches.pop(directory))
        except OSError:
            pass    # the kernel dropped it when the directory went

    def changed(self):
        """Drain the events; whether any of them is worth a scan."""
        return any(_worth_a_scan(event, self._path(event))
                   for event in self.inotify.read(timeout=0))

    def _path(self, event):
        for directory, wd in self.watches.items():
            if wd == event.wd:
                return os.path.join(directory, event.name)
        return None

    def close(self):
        self.inotify.close()


def _worth_a_scan(event, path):
    if not event.mask & flags.CREATE:
        return True
    # A new directory may hold vassals; a new symlink is complete at once.
    return bool(event.mask & flags.ISDIR) or \
        (path is not None and os.path.islink(path))
