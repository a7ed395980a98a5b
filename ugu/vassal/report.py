"""SIGUSR1 (and the master fifo's `s`): the configuration and the
per-worker counters, in uWSGI's layout."""

from ugu import log

RULE = "-----------------"


def print_stats(config, scoreboard, apps):
    """Every worker slot, running or not, with the counts of each app the
    master loaded (app 0 where the workers load their own: lazy-apps)."""
    lines = [*config.dump(),
             f"\tworkers total requests: {scoreboard.total()}", RULE]
    named = [(app.id, app.mountpoint) for app in apps.loaded] or [(0, "")]
    for wid in range(1, scoreboard.workers + 1):
        for app_id, mountpoint in named:
            requests, exceptions = scoreboard.app_counts(wid, app_id)
            lines.append(f"\tworker {wid} app {app_id} [{mountpoint}] "
                         f"requests: {requests} exceptions: {exceptions}")
        lines.append(RULE)
    lines.append("")
    log.log_all(lines)
