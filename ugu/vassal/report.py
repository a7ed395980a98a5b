"""SIGUSR1 (and the master fifo's `s`): the configuration and the
per-worker counters, in uWSGI's layout."""

from ugu import log

RULE = "-----------------"


def print_stats(config, scoreboard, wids):
    lines = ["", ";uWSGI instance configuration", "[uwsgi]"]
    lines += [f"{e.key} = {e.value}" for e in config.entries]
    lines += [";end of configuration", ""]
    total = sum(scoreboard.requests(wid) for wid in wids)
    lines += [f"\tworkers total requests: {total}", RULE]
    for wid in wids:
        lines.append(f"\tworker {wid} app 0 [] requests: "
                     f"{scoreboard.requests(wid)} exceptions: "
                     f"{scoreboard.exceptions(wid)}")
        lines.append(RULE)
    lines.append("")
    log.log("\n".join(lines))
