"""`stats`: the instance's state as one JSON document per connection.

The master builds it when a client connects, from the scoreboard (what
the workers write), its own records of the workers (pids, spawns,
harakiri kills) and the sockets, with uWSGI's keys and nesting
(reference 10), and ugu/stats.py frames and serves it.
"""

from ugu import stats
from ugu.vassal import metrics, recycle, sockets


def accounted(config):
    """Whether the workers keep what only the stats document, the
    metrics and carbon read (their traffic, their cores' counts)."""
    return bool(config["stats"] or config["carbon"]
                or metrics.enabled(config))


def document(master):
    listeners = [l for l in master.listeners
                 if l.proto not in sockets.GATEWAYS]
    queues = [sockets.listen_queue(l) or (0, 0) for l in listeners]
    # uWSGI's listen_queue: the longest queue of any socket.
    backlog = max((waiting for waiting, _ in queues), default=0)
    can_offload = int(bool(master.config["offload-threads"]))
    uwsgi_signals = master.shared.uwsgi_signals
    found = master.shared.metrics
    return stats.instance(
        backlog,
        [_socket(l, queue, can_offload)
         for l, queue in zip(listeners, queues)],
        [_worker(master, wid)
         for wid in range(1, master.config["processes"] + 1)],
        [_daemon(d) for d in master.daemons.daemons],
        [c.stats() for c in master.shared.caches.all]
        if master.shared.caches else (),
        master.shared.spoolers.stats() if master.shared.spoolers else (),
        uwsgi_signals.queue() if uwsgi_signals else 0,
        found.stats() if found else None,
        not master.config["stats-no-metrics"], master.config["locks"])


def _daemon(daemon):
    # uWSGI's respawns is always 0 (its test is the wrong way round):
    # ugu counts the spawns after the first.
    return {"cmd": daemon.command, "pid": max(daemon.pid or 0, 0),
            "respawns": max(daemon.respawns - 1, 0)}


def _socket(listener, queue, can_offload):
    return {"name": listener.name, "proto": listener.proto,
            "queue": queue[0], "max_queue": queue[1], "shared": 0,
            "can_offload": can_offload}


def _worker(master, wid):
    board = master.shared.scoreboard
    child = master.worker(wid)
    pid = child.pid if child else 0
    delta, tx, running_time, avg_rt = board.traffic(wid)
    apps = [_app(board, wid, *app) for app in board.apps_of(wid)]
    # uWSGI measures them only with memory-report; ugu reads them when
    # asked, which costs the workers nothing.
    rss, vsz = recycle.memory(pid) if pid else (0, 0)
    spawns, last_spawn = master.spawns.get(wid, (0, 0))
    signals, signal_queue = (master.shared.uwsgi_signals.worker_signals(wid)
                             if master.shared.uwsgi_signals else (0, 0))
    worker = {
        # As uWSGI: a slot gets its id when its first worker spawns.
        "id": wid if spawns else 0, "pid": pid,
        "accepting": int(board.accepting(wid)),
        "requests": board.requests(wid), "delta_requests": delta,
        "exceptions": sum(app["exceptions"] for app in apps),
        "harakiri_count": master.harakiri_kills.get(wid, 0),
        "signals": signals, "signal_queue": signal_queue,
        "status": _status(master, wid),
        "rss": rss, "vsz": vsz, "running_time": running_time,
        "last_spawn": last_spawn, "respawn_count": spawns, "tx": tx,
        "avg_rt": avg_rt, "apps": apps,
    }
    if not master.config["stats-no-cores"]:
        worker["cores"] = [_core(board, wid, core)
                           for core in range(board.cores)]
    return worker


def _status(master, wid):
    # A slot the cheaper algorithm keeps empty, or has not filled yet;
    # every slot in cheap mode.
    if master.cheap or master.cheaper and (
            master.cheaper.is_cheaped(wid) or master.worker(wid) is None):
        return "cheap"
    return "busy" if master.shared.scoreboard.busy(wid) else "idle"


def _app(board, wid, app_id, startup_time, mountpoint):
    requests, exceptions = board.app_counts(wid, app_id)
    # uWSGI's chdir is the UWSGI_CHDIR var of an app that a request's
    # vars load, which ugu's workers never do.
    return {"id": app_id, "modifier1": 0, "mountpoint": mountpoint,
            "startup_time": startup_time, "requests": requests,
            "exceptions": exceptions, "chdir": ""}


def _core(board, wid, core):
    requests, static, offloaded, write_errors, routed, _ = \
        board.core_counts(wid, core)
    running = board.running(wid, core)
    # uWSGI also lists a running request's vars: ugu's workers keep them
    # in their own memory, not the scoreboard, so none are listed.
    return {"id": core, "requests": requests, "static_requests": static,
            "routed_requests": routed, "offloaded_requests": offloaded,
            "write_errors": write_errors, "read_errors": 0,
            "in_request": int(running is not None), "vars": [],
            "req_info": {"request_start": int(running[0])} if running
            else {}}
