"""`python -m bench`: run the benchmark, write bench/results/."""

import argparse
import datetime
import json
import os
import sys
from pathlib import Path

from bench import peers, report, run, setups, targets
from bench.workloads import WORKLOADS

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench",
                                description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="1 round of 3 s, 1 s warm-up, setups "
                   + ", ".join(setups.QUICK) + " (unless --setups)")
    p.add_argument("--setups", help="comma-separated: "
                   + ", ".join(setups.SETUPS))
    p.add_argument("--workloads", help="comma-separated: "
                   + ", ".join(WORKLOADS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=5,
                   help="seconds per wrk run")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--threads", type=int, default=2,
                   help="threads per worker (ugu, uWSGI, gunicorn gthread)")
    p.add_argument("--no-lifecycle", action="store_true",
                   help="skip the cold start and kill -9 timings")
    p.add_argument("--baseline", type=Path,
                   help="a folder holding another copy of the ugu package: "
                   "each ugu setup also runs from it, as NAME-base, to "
                   "measure a change side by side")
    p.add_argument("--output", type=Path, default=RESULTS,
                   help="folder for the JSON and Markdown files")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 3, 1
    return args


def _pick(text, known, default):
    if not text:
        return list(default)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown: {', '.join(unknown)} (choose from "
                         f"{', '.join(known)})")
    return names


def make_plan(args):
    default = setups.QUICK if args.quick else setups.DEFAULT
    names = _pick(args.setups, setups.SETUPS, default)
    chosen, skipped = [], {}
    for name in names:
        why = setups.unavailable(setups.SETUPS[name])
        if why:
            skipped[name] = why
        else:
            chosen.append(setups.SETUPS[name])
    if args.baseline:
        setups.BASELINE.append(str(args.baseline.resolve()))
        chosen += [setups.baseline_twin(s) for s in list(chosen)
                   if "ugu" in s.name]
    workloads = [WORKLOADS[n] for n in
                 _pick(args.workloads, WORKLOADS, WORKLOADS)]
    plan = run.Plan(chosen, workloads, args.rounds, args.duration,
                    args.warmup, args.wrk_threads, args.connections,
                    not args.no_lifecycle,
                    shape=setups.Shape(args.processes, args.threads))
    return plan, skipped


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        binary = peers.wrk()
    except peers.Missing as e:
        print(f"bench: {e}", file=sys.stderr)
        return 2
    plan, skipped = make_plan(args)
    for name, why in skipped.items():
        print(f"skipping {name}: {why}")
    run.raise_file_limit()
    setups.compile_bytecode()
    root = run.temp_root()
    print(f"setup folders and logs: {root}")
    samples = run.throughput(plan, root, binary)
    lifecycle = run.lifecycle(plan, root) if plan.timings else {}
    result = build_result(plan, skipped, samples, lifecycle)
    paths = write(result, args.output)
    print(report.markdown(result))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def build_result(plan, skipped, samples, lifecycle):
    summary = report.summarize(samples, plan.noise_limit)
    return {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "plan": {"rounds": plan.rounds, "duration": plan.duration,
                 "warmup": plan.warmup, "threads": plan.threads,
                 "connections": plan.connections,
                 "processes": plan.shape.processes,
                 "threads_per_worker": plan.shape.threads,
                 "noise_limit": plan.noise_limit,
                 "setups": [s.name for s in plan.setups]},
        "workloads": {w.name: w.title for w in plan.workloads},
        "skipped": skipped,
        "summary": summary,
        "ratios": report.ratios(summary),
        "lifecycle": lifecycle,
        "targets": targets.evaluate(summary, lifecycle),
        "samples": run.as_dict(samples),
    }


def write(result, folder):
    folder.mkdir(parents=True, exist_ok=True)
    stamp = result["date"].replace(":", "")
    paths = [folder / f"bench-{stamp}.json", folder / f"bench-{stamp}.md"]
    paths[0].write_text(json.dumps(result, indent=1) + "\n")
    paths[1].write_text(report.markdown(result))
    return paths


if __name__ == "__main__":
    sys.exit(main())
