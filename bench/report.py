"""Medians, ratios and flags from the samples; the JSON and Markdown."""

import statistics

# Rounds of one setup whose req/s spread ((max - min) / median) passes
# this are flagged, as are rounds where other processes took more than the
# plan's noise_limit of the machine: neither is a figure to trust.
SPREAD_LIMIT = 0.25
MB = 1e6


def summarize(samples, noise_limit):
    """{workload: {setup: figures}} with medians over rounds."""
    grouped = {}
    for s in samples:
        grouped.setdefault(s.workload, {}).setdefault(s.setup, []).append(s)
    return {w: {name: _figures(runs, noise_limit)
                for name, runs in by_setup.items()}
            for w, by_setup in grouped.items()}


def _figures(runs, noise_limit):
    rates = [r.rate for r in runs]
    median_rate = statistics.median(rates)
    spread = (max(rates) - min(rates)) / median_rate if median_rate else 0
    figures = {
        "rounds": len(runs),
        "rate": median_rate,
        "p50": _median(r.p50 for r in runs),
        "p99": _median(r.p99 for r in runs),
        "cpu_per_request": _median(r.cpu_per_request for r in runs),
        "rss": _median(r.rss for r in runs),
        "errors": sum(r.errors for r in runs),
        "spread": spread,
        "noisy_rounds": sum(r.foreign > noise_limit for r in runs),
        "foreign": max(r.foreign for r in runs),
    }
    if any(r.idle_held for r in runs):
        figures["idle_held"] = min(r.idle_held for r in runs)
        figures["idle_open"] = min(r.idle_open for r in runs)
        figures["idle_rss_cost"] = _median(r.idle_rss_cost for r in runs)
    figures["trusted"] = spread <= SPREAD_LIMIT and not \
        figures["noisy_rounds"] * 2 > len(runs)
    return figures


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratios(summary):
    """{workload: {a: {b: rate_a / rate_b}}} and the same for CPU."""
    out = {}
    for workload, by_setup in summary.items():
        rate, cpu = {}, {}
        for a, fa in by_setup.items():
            rate[a] = {b: _ratio(fa["rate"], fb["rate"])
                       for b, fb in by_setup.items() if b != a}
            cpu[a] = {b: _ratio(fa["cpu_per_request"],
                                fb["cpu_per_request"])
                      for b, fb in by_setup.items() if b != a}
        out[workload] = {"rate": rate, "cpu_per_request": cpu}
    return out


def _ratio(a, b):
    return a / b if a and b else None


# -- Markdown --------------------------------------------------------------

def markdown(result):
    lines = [f"# ugu benchmark, {result['date']}", "", _conditions(result),
             ""]
    for name, skipped in result["skipped"].items():
        lines.append(f"- skipped `{name}`: {skipped}")
    for workload, by_setup in result["summary"].items():
        lines += ["", f"## {workload}: {result['workloads'][workload]}", ""]
        lines += _workload_table(by_setup)
        lines += [""] + _ratio_table(result["ratios"][workload]["rate"])
    if result.get("lifecycle"):
        lines += ["", "## Lifecycle (median seconds)", "",
                  "| setup | cold start to first 200 | kill -9 of the worker "
                  "vassal to serving again |", "|---|---:|---:|"]
        for name, runs in result["lifecycle"].items():
            lines.append(f"| {name} | {_median(r['cold_start'] for r in runs):.2f}"
                         f" | {_median(r['respawn'] for r in runs):.2f} |")
    if result.get("targets"):
        lines += ["", "## The issue's targets", "",
                  "| target | measured | met |", "|---|---|---|"]
        for t in result["targets"]:
            lines.append(f"| {t['target']} | {t['measured']} | "
                         f"{_verdict(t['met'])} |")
    return "\n".join(lines) + "\n"


def _conditions(r):
    p = r["plan"]
    return (f"{p['rounds']} interleaved rounds of {p['duration']} s, wrk "
            f"-t{p['threads']} -c{p['connections']}, {p['processes']} "
            f"processes x {p['threads_per_worker']} threads per server, "
            f"{r['cpus']} CPUs. Medians over rounds; CPU is user+system "
            f"of the server's whole process tree per request; RSS is the "
            f"tree's largest during the run. `?` marks a figure not to "
            f"trust (rounds spread over {SPREAD_LIMIT:.0%}, or most rounds "
            f"ran while other processes took over "
            f"{p['noise_limit']:.0%} of the machine).")


def _workload_table(by_setup):
    rows = ["| setup | req/s | p50 ms | p99 ms | CPU us/req | RSS MB | "
            "errors | notes |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for name, f in by_setup.items():
        mark = "" if f["trusted"] else " ?"
        rows.append(
            f"| {name} | {f['rate']:.0f}{mark} | {_ms(f['p50'])} | "
            f"{_ms(f['p99'])} | {f['cpu_per_request'] * 1e6:.1f} | "
            f"{f['rss'] / MB:.0f} | {f['errors']} | {_notes(f)} |")
    return rows


def _notes(f):
    notes = [f"spread {f['spread']:.0%}"]
    if f["noisy_rounds"]:
        notes.append(f"{f['noisy_rounds']} noisy round(s)")
    if "idle_held" in f:
        notes.append(f"{f['idle_held']} idle held, {f['idle_open']} still "
                     f"open, +{f['idle_rss_cost'] / MB:.1f} MB")
    return ", ".join(notes)


def _ratio_table(rate):
    names = list(rate)
    rows = ["req/s ratio, row / column:", "",
            "| | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names)]
    for a in names:
        cells = ["1" if a == b else _num(rate[a].get(b)) for b in names]
        rows.append(f"| {a} | " + " | ".join(cells) + " |")
    return rows


def _num(x):
    return "-" if x is None else f"{x:.2f}"


def _ms(seconds):
    return "-" if seconds is None else f"{seconds * 1e3:.2f}"


def _verdict(met):
    return {True: "met", False: "NOT met", None: "not measured"}[met]
