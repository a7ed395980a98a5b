"""One benchmark run: start the setups, warm up, interleave, measure."""

import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench import procfs, setups, wrk

SAMPLE_EVERY = 0.25
# Share of the machine other processes may take before a round is noisy.
NOISE_LIMIT = 0.15


@dataclass
class Plan:
    setups: list
    workloads: list
    rounds: int = 3
    duration: float = 5.0
    warmup: float = 1.0
    threads: int = 1
    connections: int = 16
    timings: bool = True
    noise_limit: float = NOISE_LIMIT
    shape: setups.Shape = field(default_factory=setups.Shape)


@dataclass
class Sample:
    """One wrk run against one setup."""
    setup: str
    workload: str
    round: int
    requests: int
    seconds: float
    rate: float
    p50: float
    p99: float
    errors: int
    cpu_per_request: float      # server tree, seconds
    rss: int                    # largest tree RSS seen during the run
    foreign: float              # share of all cores used by others
    idle_held: int = 0
    idle_open: int = 0
    idle_rss_cost: int = 0      # RSS the idle connections added


def raise_file_limit():
    """W6 needs a thousand sockets in the holder and the server."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def measure(running, workload, plan, binary, script, round_no):
    holder, rss_before = None, running.rss_bytes()
    if workload.idle:
        holder = start_holder(running.port, workload.idle)
    try:
        rss_idle = running.rss_bytes()
        sample = _timed_wrk(running, workload, plan, binary, script)
        sample.update(setup=running.name, workload=workload.name,
                      round=round_no)
        if holder:
            sample.update(idle_held=holder.held,
                          idle_rss_cost=rss_idle - rss_before)
    finally:
        if holder:
            open_count = stop_holder(holder)
    if holder:
        sample["idle_open"] = open_count
    return Sample(**sample)


def _timed_wrk(running, workload, plan, binary, script):
    url = f"http://127.0.0.1:{running.port}{workload.path}"
    cpu0, busy0, own0 = running.cpu_seconds(), procfs.busy_seconds(), \
        _own_cpu()
    began = time.monotonic()
    popen = wrk.start(binary, url, plan.duration, plan.threads,
                      plan.connections, workload.headers, script)
    rss = 0
    while not wrk.done(popen):
        rss = max(rss, running.rss_bytes())
        time.sleep(SAMPLE_EVERY)
    result = wrk.finish(popen)
    wall = time.monotonic() - began
    server = running.cpu_seconds() - cpu0
    others = (procfs.busy_seconds() - busy0 - server - result.wrk_cpu
              - (_own_cpu() - own0))
    return dict(requests=result.requests, seconds=result.seconds,
                rate=result.rate, p50=result.p50, p99=result.p99,
                errors=result.errors,
                cpu_per_request=server / max(result.requests, 1),
                rss=rss, foreign=max(others, 0) / (wall * os.cpu_count()))


def _own_cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def start_holder(port, count):
    popen = subprocess.Popen(
        [sys.executable, "-m", "bench.holder", str(port), str(count)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parent.parent)
    line = popen.stdout.readline().split()
    popen.held = int(line[1]) if line[:1] == ["ready"] else 0
    return popen


def stop_holder(popen):
    popen.stdin.close()
    line = popen.stdout.readline().split()
    popen.wait(30)
    return int(line[1]) if line[:1] == ["open"] else 0


def warm_up(running, setup, plan, binary, scripts):
    for workload in plan.workloads:
        if workload.runs_on(setup) and not workload.idle:
            popen = wrk.start(binary, f"http://127.0.0.1:{running.port}"
                              f"{workload.path}", plan.warmup, plan.threads,
                              plan.connections, workload.headers,
                              scripts.get(workload.name))
            wrk.finish(popen)


def write_scripts(root, plan):
    scripts = {}
    for workload in plan.workloads:
        if workload.script:
            path = Path(root) / f"{workload.name}.lua"
            path.write_text(workload.script)
            scripts[workload.name] = path
    return scripts


def throughput(plan, root, binary, log=print):
    """Every (workload, round, setup) sample, setups interleaved."""
    scripts = write_scripts(root, plan)
    running, samples = {}, []
    try:
        for setup in plan.setups:
            running[setup.name], _ = setups.launch(setup, root, plan.shape)
            warm_up(running[setup.name], setup, plan, binary, scripts)
        for workload in plan.workloads:
            for round_no in range(plan.rounds):
                for setup in plan.setups:
                    if not workload.runs_on(setup):
                        continue
                    sample = measure(running[setup.name], workload, plan,
                                     binary, scripts.get(workload.name),
                                     round_no)
                    log(_progress(sample))
                    samples.append(sample)
    finally:
        for r in running.values():
            r.stop()
    return samples


def _progress(s):
    return (f"  {s.workload} round {s.round + 1} {s.setup:17} "
            f"{s.rate:9.0f} req/s  p99 {s.p99 * 1e3 if s.p99 else 0:7.2f} ms"
            f"  {s.cpu_per_request * 1e6:6.1f} us CPU/req"
            f"{'  (noisy)' if s.foreign > NOISE_LIMIT else ''}")


def lifecycle(plan, root, log=print):
    """Cold start to the first 200, and kill -9 of the worker vassal to
    serving again, for each emperor setup, interleaved by round."""
    found = {}
    emperors = [s for s in plan.setups if s.name.endswith("-emperor")]
    for round_no in range(plan.rounds):
        for setup in emperors:
            cold, respawn = _one_lifecycle(setup, root, plan)
            log(f"  lifecycle round {round_no + 1} {setup.name:17} cold "
                f"start {cold:.2f} s, respawn after kill -9 {respawn:.2f} s")
            found.setdefault(setup.name, []).append(
                {"cold_start": cold, "respawn": respawn})
    return found


def _one_lifecycle(setup, root, plan):
    running, cold = setups.launch(setup, Path(root) / "lifecycle",
                                  plan.shape)
    try:
        setups.wait_ready(running.port, timeout=setups.START_TIMEOUT)
        victims = procfs.tree(_worker_vassal(running.leaders[0]))
        killed = time.monotonic()
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        # Only once they are gone can a 200 mean "serving again".
        while any(procfs.alive(pid) for pid in victims):
            time.sleep(0.005)
        setups.wait_ready(running.port, leaders=running.leaders)
        return cold, time.monotonic() - killed
    finally:
        running.stop()


def _worker_vassal(leader):
    """The vassal master running uwsgi.ini (its workers are its children,
    with the same command line)."""
    for pid in procfs.tree(leader):
        parent = procfs.parent(pid)
        if _runs_worker_ini(pid) and not _runs_worker_ini(parent):
            return pid
    raise RuntimeError(f"no uwsgi.ini vassal under {leader}")


def _runs_worker_ini(pid):
    return procfs.cmdline(pid).rstrip().endswith("--ini uwsgi.ini")


def as_dict(samples):
    return [asdict(s) for s in samples]


def temp_root():
    return tempfile.mkdtemp(prefix="ugu-bench-")
