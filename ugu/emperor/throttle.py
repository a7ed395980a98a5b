"""uWSGI's blacklist: back off from a vassal that keeps dying unloyal.

Each death of a vassal that never became loyal is a failure.  After the
first, the vassal is held back for the step read as microseconds (as
uWSGI's: 1 ms by default, which still misses the scan that follows the
death); each further failure adds one step to the wait, counted from the
death.  A wait that has reached the ceiling is halved
instead, so a hopeless vassal is still retried now and then.  Loyalty
forgives everything.  Pure: the caller passes the clock's reading.
"""

import enum
from dataclasses import dataclass

# The failure at which uWSGI calls a vassal "bad behaving".
BAD_BEHAVING_AT = 3


class Verdict(enum.Enum):
    BAD_BEHAVING = "bad behaving"
    MAX_THROTTLE = "max throttle"


@dataclass
class _Entry:
    first: float         # when it first failed
    last: float          # when it last failed
    wait: float = 0.0    # seconds it must stay away after `last`
    failures: int = 1


class Blacklist:
    def __init__(self, step, ceiling):
        """`step` and `ceiling` in seconds."""
        self.step = step
        self.ceiling = ceiling
        self._entries = {}

    def failed(self, name, now):
        """Record a failure; return the Verdicts worth logging."""
        entry = self._entries.get(name)
        if entry is None:
            self._entries[name] = _Entry(first=now, last=now,
                                         wait=self.step / 1000)
            return []
        verdicts = []
        if entry.wait >= self.ceiling:
            entry.wait /= 2
            verdicts.append(Verdict.MAX_THROTTLE)
        else:
            entry.wait += self.step
        entry.failures += 1
        entry.last = now
        if entry.failures == BAD_BEHAVING_AT:
            verdicts.insert(0, Verdict.BAD_BEHAVING)
        return verdicts

    def due(self, name):
        """When `name` may be spawned again; 0.0 if it is not listed."""
        entry = self._entries.get(name)
        return entry.last + entry.wait if entry else 0.0

    def forgive(self, name):
        self._entries.pop(name, None)

    def clear(self):
        """SIGURG: every listed vassal may come back at once."""
        self._entries.clear()

    def entries(self):
        return dict(self._entries)
