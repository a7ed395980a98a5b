"""`emperor-stats`: the Emperor's state as one JSON document per connection.

The document has uWSGI's keys (reference 5.6); ugu/stats.py serves it,
as it serves the vassal's.  Keys for features ugu has no part of (a
global throttle) keep uWSGI's "none" values, so that dashboards reading
them still work.
"""

import os
import time

from ugu import UWSGI_VERSION


def document(emperor):
    return {
        "version": UWSGI_VERSION, "pid": os.getpid(), "uid": os.getuid(),
        "gid": os.getgid(), "cwd": os.getcwd(),
        "emperor": [m.spec for m in emperor.monitors],
        "emperor_tyrant": int(emperor.tyrant), "throttle_level": 0,
        "vassals": [_vassal(v, emperor.clock)
                    for v in emperor.vassals.values()]
        + [_sleeper(s) for s in emperor.sleepers.values()],
        "blacklist": _blacklist(emperor.blacklist, emperor.clock),
    }


def _vassal(v, clock):
    stamps = v.stamps
    return {
        "id": v.name, "pid": v.pid, "born": stamps["born"],
        "last_mod": v.mtime, "last_heartbeat": _wall(v.beat, clock),
        "loyal": int(v.loyal), "ready": int(v.ready),
        "accepting": int(v.accepting),
        "last_loyal": stamps.get("loyal", 0),
        "last_ready": stamps.get("spawned", 0),
        "last_accepting": stamps.get("accepting", 0),
        "first_run": stamps["born"],
        "last_run": stamps.get("run", stamps["born"]),
        "cursed": stamps.get("cursed", 0), "zerg": int(v.zerg),
        "on_demand": v.on_demand.socket_name if v.on_demand else "",
        "uid": v.owner[0], "gid": v.owner[1],
        "monitor": v.monitor, "respawns": v.respawns,
    }


def _sleeper(s):
    """An on-demand vassal waiting on its socket: no process (pid -1),
    as uWSGI lists it."""
    owner = s.owner or (os.getuid(), os.getgid())
    return {
        "id": s.name, "pid": -1, "born": s.born, "last_mod": s.mtime,
        "last_heartbeat": 0, "loyal": 0, "ready": 0, "accepting": 0,
        "last_loyal": 0, "last_ready": 0, "last_accepting": 0,
        "first_run": s.born, "last_run": s.born, "cursed": 0, "zerg": 0,
        "on_demand": s.socket_name, "uid": owner[0], "gid": owner[1],
        "monitor": s.monitor, "respawns": 0,
    }


def _blacklist(blacklist, clock):
    if blacklist is None:
        return []
    return [{"id": name, "throttle_level": int(entry.wait),
             # uWSGI counts the failures after the first.
             "attempt": entry.failures - 1,
             "first_attempt": _wall(entry.first, clock),
             "last_attempt": _wall(entry.last, clock)}
            for name, entry in blacklist.entries().items()]


def _wall(moment, clock):
    """Epoch seconds of a reading of `clock`; 0 for none."""
    if moment is None:
        return 0
    return int(time.time() - (clock() - moment))
