"""The issue's targets, checked against one run's medians.

Each check returns (what was measured, met): met is None when a figure it
needs was not measured in this run (a setup or workload filtered out).
"""

GUNICORNS = ("gunicorn-sync", "gunicorn-gthread", "gunicorn-gevent")
MB = 1e6


def evaluate(summary, lifecycle):
    checks = []
    for w in ("W1", "W3"):
        checks.append(_ahead_of_gunicorn(summary, w))
    checks.append(_at_least(summary, "W3", "ugu-http", "uwsgi-http", 0.8))
    checks.append(_cpu_below_gunicorn(summary))
    for theirs in ("uwsgi-emperor", "uwsgi-emperor-ka"):
        checks.append(_at_least(summary, "W1", "ugu-emperor", theirs, 0.6))
        checks.append(_at_least(summary, "W3", "ugu-emperor", theirs, 0.8))
    # The 40 ms stall the target names is uWSGI's with keepalive on.
    checks.append(_at_least(summary, "W2", "ugu-emperor", "uwsgi-emperor-ka",
                            10))
    checks.append(_at_least(summary, "W2", "ugu-emperor", "nginx-static",
                            0.5))
    checks += _idle_connections(summary)
    checks.append(_memory(summary))
    checks += _lifecycle(lifecycle)
    return [{"target": t, "measured": m, "met": ok} for t, m, ok in checks]


def _rate(summary, workload, setup):
    return summary.get(workload, {}).get(setup, {}).get("rate")


def _at_least(summary, workload, ours, theirs, factor):
    target = f"{workload} {ours} >= {factor}x {theirs}"
    a, b = _rate(summary, workload, ours), _rate(summary, workload, theirs)
    if not a or not b:
        return target, "-", None
    return target, f"{a / b:.2f}x", a / b >= factor


def _ahead_of_gunicorn(summary, workload):
    """ugu-http ahead of sync and gthread, ugu-gevent ahead of gevent."""
    target = f"{workload} http-socket ahead of every gunicorn worker class"
    pairs = [("ugu-http", "gunicorn-sync"), ("ugu-http", "gunicorn-gthread"),
             ("ugu-gevent", "gunicorn-gevent")]
    found, verdicts = [], []
    for ours, theirs in pairs:
        a = _rate(summary, workload, ours)
        b = _rate(summary, workload, theirs)
        if a and b:
            found.append(f"{ours}/{theirs} {a / b:.2f}x")
            verdicts.append(a > b)
    return target, ", ".join(found) or "-", \
        all(verdicts) if verdicts else None


def _cpu_below_gunicorn(summary):
    target = "ugu-http CPU per request below every gunicorn's, every workload"
    worst, ok = None, None
    for workload, by_setup in summary.items():
        ours = by_setup.get("ugu-http", {}).get("cpu_per_request")
        for name in GUNICORNS:
            theirs = by_setup.get(name, {}).get("cpu_per_request")
            if ours and theirs:
                ratio = ours / theirs
                if worst is None or ratio > worst[0]:
                    worst = (ratio, workload, name)
                ok = (ok is not False) and ratio < 1
    if worst is None:
        return target, "-", None
    return target, f"worst {worst[0]:.2f}x of {worst[2]} on {worst[1]}", ok


def _idle_connections(summary):
    w6 = summary.get("W6", {}).get("ugu-emperor")
    w1 = summary.get("W1", {}).get("ugu-emperor")
    memory = "W6: 1000 idle connections cost ugu's router < 50 MB"
    latency = "W6: idle connections raise ugu-emperor's W1 p99 <= 2x"
    if not w6 or "idle_rss_cost" not in w6:
        return [(memory, "-", None), (latency, "-", None)]
    cost = w6["idle_rss_cost"] / MB
    found = [(memory, f"+{cost:.1f} MB ({w6['idle_open']} of "
              f"{w6['idle_held']} still open)", cost < 50)]
    if w1 and w1["p99"] and w6["p99"]:
        ratio = w6["p99"] / w1["p99"]
        found.append((latency, f"{ratio:.2f}x", ratio <= 2))
    else:
        found.append((latency, "-", None))
    return found


def _memory(summary):
    target = "two-vassal tree RSS <= 1.5x uWSGI's (W1)"
    by_setup = summary.get("W1", {})
    a = by_setup.get("ugu-emperor", {}).get("rss")
    b = by_setup.get("uwsgi-emperor", {}).get("rss")
    if not a or not b:
        return target, "-", None
    return target, f"{a / MB:.0f} / {b / MB:.0f} MB = {a / b:.2f}x", \
        a / b <= 1.5


def _lifecycle(lifecycle):
    cold = "cold start to first 200 <= uWSGI's + 0.5 s"
    respawn = "ugu respawn after kill -9 of the vassal < 1 s"
    ours, theirs = lifecycle.get("ugu-emperor"), lifecycle.get(
        "uwsgi-emperor")
    found = []
    if ours and theirs:
        a, b = _med(ours, "cold_start"), _med(theirs, "cold_start")
        found.append((cold, f"{a:.2f} s vs {b:.2f} s", a <= b + 0.5))
    else:
        found.append((cold, "-", None))
    if ours:
        r = _med(ours, "respawn")
        found.append((respawn, f"{r:.2f} s", r < 1))
    else:
        found.append((respawn, "-", None))
    return found


def _med(runs, key):
    values = sorted(r[key] for r in runs)
    return values[len(values) // 2]
