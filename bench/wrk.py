"""Running wrk and reading its report."""

import os
import re
import subprocess
from dataclasses import dataclass

UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass
class WrkResult:
    requests: int
    seconds: float
    p50: float              # seconds
    p99: float
    errors: int             # socket errors and non-2xx/3xx answers
    wrk_cpu: float          # CPU seconds wrk itself used

    @property
    def rate(self):
        return self.requests / self.seconds if self.seconds else 0.0


class WrkFailed(Exception):
    pass


def start(binary, url, duration, threads, connections, headers=(),
          script_path=None):
    """wrk takes whole seconds only."""
    argv = [binary, "-t", str(threads), "-c", str(connections),
            "-d", f"{max(1, round(duration))}s", "--latency", "--timeout", "10s"]
    for header in headers:
        argv += ["-H", header]
    if script_path:
        argv += ["-s", str(script_path)]
    argv.append(url)
    return subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def done(popen, block=False):
    """Whether wrk has exited; reaps it with wait4 to learn its CPU."""
    if popen.returncode is None:
        pid, status, usage = os.wait4(popen.pid, 0 if block else os.WNOHANG)
        if pid:
            popen.returncode = os.waitstatus_to_exitcode(status)
            popen.usage = usage
    return popen.returncode is not None


def finish(popen):
    """Wait for wrk; its result with the CPU it used."""
    out = popen.stdout.read()
    done(popen, block=True)
    usage = popen.usage
    if popen.returncode:
        raise WrkFailed(f"wrk exited {popen.returncode}: {out.strip()}")
    return parse(out, usage.ru_utime + usage.ru_stime)


def parse(text, wrk_cpu=0.0):
    match = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise WrkFailed(f"no request count in wrk's output: {text.strip()}")
    requests = int(match.group(1))
    seconds = float(match.group(2)) * UNITS[match.group(3)]
    return WrkResult(requests, seconds, _percentile(text, "50"),
                     _percentile(text, "99"), _errors(text), wrk_cpu)


def _percentile(text, which):
    match = re.search(rf"^\s*{which}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text,
                      re.M)
    return float(match.group(1)) * UNITS[match.group(2)] if match else None


def _errors(text):
    total = 0
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write "
                      r"(\d+), timeout (\d+)", text)
    if match:
        total += sum(int(n) for n in match.groups())
    match = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if match:
        total += int(match.group(1))
    return total
