"""uWSGI's carbon plugin: the master pushes the instance's statistics to
Graphite's carbon servers (`carbon = HOST:PORT`), in carbon's plaintext
protocol, one TCP connection a server a push:

    uwsgi.HOSTNAME.ID.requests 12 1796520487

every `carbon-freq` seconds (60), the first a second after the start, and
once more as the master ends or reloads.  The lines are uWSGI's: the
instance's requests, then per worker (unless `carbon-no-workers`) its
requests, memory (with memory-report), average response time, bytes
sent, busyness and harakiri kills, then the totals; or, with
`carbon-use-metrics`, every metric by its name.  A server that fails is
tried again `carbon-max-retry` times, `carbon-retry-delay` seconds apart,
with uWSGI's stats-pusher lines.

uWSGI pushes from a thread of its master.  ugu's master takes the values
in its tick and a thread sends them, so that a server slow to answer
(up to `carbon-timeout` seconds) never holds the master up; the lines a
push has to say are said in the next tick.  A metric's
`reset_after_push` takes off what was pushed once a server has it, as
uWSGI resets only what it wrote: with every server down the metric
keeps counting, and what was counted while the push was under way
stays.
"""

import socket
import threading
import time

from ugu import log
from ugu.options.errors import ConfigError
from ugu.vassal import metrics, recycle

_MEMORY_OPTIONS = ("memory-report", "reload-on-rss", "reload-on-as",
                   "evil-reload-on-rss", "evil-reload-on-as")
_MASK = (1 << 64) - 1


class Server:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.healthy, self.errors = True, 0


class Carbon:
    def __init__(self, config, servers, carbon_id):
        self.servers = servers
        self.id = carbon_id
        root = config["carbon-root"]
        root = "uwsgi." if root is None else root
        if root and not root.endswith("."):
            root += "."
        self.root = root
        self.freq = max(config["carbon-freq"], 0) or 60
        self.timeout = max(config["carbon-timeout"], 0) or 3
        self.max_retries = max(config["carbon-max-retry"], 0)
        self.retry_delay = max(config["carbon-retry-delay"], 0) or 7
        self.no_workers = config["carbon-no-workers"]
        self.use_metrics = config["carbon-use-metrics"]
        self.resolve = config["carbon-name-resolve"]
        self.hostname = socket.gethostname()
        dots = config["carbon-hostname-dots"]
        if dots:
            self.hostname = self.hostname.replace(".", dots[0])
        idle = config["carbon-idle-avg"] or "last"
        self.push_avg, self.zero_avg = idle != "none", idle == "zero"
        self.memory = any(config[name] for name in _MEMORY_OPTIONS)
        self.cheaper = bool(config["cheaper"])
        workers = config["processes"]
        self.last_busy = [0] * workers
        self.was_busy = [0] * workers
        self.last_requests = 0
        self.measured = {}      # wid -> its last (rss, vsz)
        # The stats pusher's schedule (uWSGI's uspi).
        self.last_run = 0
        self.needs_retry = False
        self.retries = 0
        self.next_retry = 0
        self._pushing = None    # (thread, results, resets) under way

    @classmethod
    def from_config(cls, config, listeners):
        """None without `carbon`; the servers said as uWSGI says them."""
        if not config["carbon"]:
            return None
        idle = config["carbon-idle-avg"]
        if idle not in (None, "last", "zero", "none"):
            raise ConfigError(f'[carbon] invalid value for carbon-idle-avg: '
                              f'"{idle}"', option="carbon-idle-avg")
        if config["carbon-use-metrics"] and not metrics.enabled(config):
            raise ConfigError("carbon-use-metrics pushes the metrics, and "
                              "they are off (uWSGI then pushes nothing): "
                              "add enable-metrics", option="carbon-use-metrics")
        if config["carbon-hostname-dots"] == "":
            raise ConfigError("carbon-hostname-dots needs the character to "
                              "put for each dot of the hostname",
                              option="carbon-hostname-dots")
        if not listeners:
            raise ConfigError("carbon names the instance by its first "
                              "socket, and it has none: add a socket "
                              "(uWSGI pushes nothing then)", option="carbon")
        servers = []
        for value in config["carbon"]:
            host, _, port = value.partition(":")
            port = port.partition(":")[0]
            if not host or not port:
                raise ConfigError(f"[carbon] invalid carbon server address "
                                  f"({value}): write HOST:PORT",
                                  option="carbon")
            # uWSGI pushes to the last one first.
            servers.insert(0, Server(host, port))
            log.log(f"[carbon] added server {host}:{port}")
        carbon_id = config["carbon-id"] or \
            listeners[0].name.replace(".", "_")
        found = cls(config, servers, carbon_id)
        log.log(f"[carbon] carbon plugin started, {found.freq}s frequency, "
                f"{found.timeout}s timeout, max retries "
                f"{found.max_retries}, retry delay {found.retry_delay}s")
        return found

    # -- the master's side ----------------------------------------------
    def tick(self, master):
        """Each second of the master: say how the last push went, and
        push when due (uWSGI's stats pusher loop)."""
        if self._pushing:
            thread, results, resets = self._pushing
            if thread.is_alive():
                return
            self._pushing = None
            self._pushed(master, results, resets)
        now = int(time.time())
        if not (self.last_run + self.freq <= now or
                (self.needs_retry and self.next_retry <= now)):
            return
        if self.needs_retry:
            self.retries += 1
        retry_cycle = self.retries
        self.last_run = now
        jobs, resets = self._jobs(master, now, retry_cycle)
        results = []
        thread = threading.Thread(target=self._send_all,
                                  args=(jobs, results), daemon=True)
        self._pushing = (thread, results, resets)
        thread.start()

    def cleanup(self, master):
        """The master ends or reloads: one last push, as uWSGI's
        carbon_cleanup, waited for."""
        if self._pushing:
            thread, results, resets = self._pushing
            thread.join(self.timeout * 2)
            self._pushing = None
            if not thread.is_alive():
                self._say(results)
                self._reset(master, results, resets)
        jobs, resets = self._jobs(master, int(time.time()), 0)
        results = []
        self._send_all(jobs, results)
        self._say(results)
        self._reset(master, results, resets)

    def _reset(self, master, results, resets):
        """The reset_after_push metrics, once a server has their values."""
        if any(sent for *_, sent in results):
            for metric, pushed in resets:
                master.shared.metrics.reset_after_push(metric, pushed)

    def _pushed(self, master, results, resets):
        self._say(results)
        self._reset(master, results, resets)
        failed = any(not ok for _, ok, _, _ in results)
        self.needs_retry = failed
        if failed and self.max_retries > 0 and \
                self.retries < self.max_retries:
            log.log(f"[uwsgi-stats-pusher] carbon failed ({self.retries}), "
                    f"retry in {self.retry_delay}s")
            self.next_retry = self.last_run + self.retry_delay
        elif failed and self.retries >= self.max_retries:
            log.log(f"[uwsgi-stats-pusher] carbon failed and maximum number "
                    f"of retries was reached ({self.retries})")
            self.needs_retry = False
            self.retries = 0
        elif self.retries:
            log.log("[uwsgi-stats-pusher] retry succeeded for carbon")
            self.retries = 0

    def _say(self, results):
        for server, ok, lines, _ in results:
            for line in lines:
                log.log(line)
            if ok:
                server.healthy, server.errors = True, 0
            else:
                server.healthy = False
                server.errors += 1

    def _jobs(self, master, now, retry_cycle):
        """(server, its lines to say first, the bytes to send) of each
        server this push goes to; the values taken now, as uWSGI takes
        them at each push."""
        board = master.shared.scoreboard
        busy_times = []
        for index in range(len(self.last_busy)):
            wid = index + 1
            running = board.running_time(wid)
            busy_times.append(running - self.last_busy[index])
            self.last_busy[index] = running
            self.was_busy[index] += board.busy(wid)
        resets = []
        payload = self._payload(master, now, busy_times, resets)
        self.last_requests = board.total()
        jobs = []
        for server in self.servers:
            if retry_cycle and server.healthy:
                continue
            said = []
            if retry_cycle:
                said.append(f"[carbon] Retrying failed server at "
                            f"{server.host} ({server.errors})")
            if not retry_cycle:
                server.healthy, server.errors = True, 0
            jobs.append((server, said, payload))
        return jobs, resets

    def _payload(self, master, now, busy_times, resets):
        prefix = f"{self.root}{self.hostname}.{self.id}."
        lines = []

        def add(name, value):
            lines.append(f"{prefix}{name} {value & _MASK} {now}\n")
        if self.use_metrics:
            found = master.shared.metrics
            for metric in found.all:
                value = found.value(metric)
                add(metric.name, value)
                if metric.reset_after_push and \
                        all(m.slot != metric.slot for m, _ in resets):
                    resets.append((metric, value))
            return "".join(lines).encode()
        board = master.shared.scoreboard
        total_requests = board.total()
        add("requests", total_requests)
        idle = not self.last_requests or \
            self.last_requests == total_requests
        totals = dict.fromkeys(("rss", "vsz", "tx", "avg_rt", "busyness",
                                "harakiri"), 0)
        active = 0
        for wid in range(1, len(self.last_busy) + 1):
            _, tx, _, avg_rt = board.traffic(wid)
            harakiri = master.harakiri_kills.get(wid, 0)
            totals["tx"] += tx
            totals["harakiri"] += harakiri
            rss = vsz = 0
            if _cheaped(master, wid):
                avg_rt = busyness = 0
            else:
                active += 1
                totals["avg_rt"] += avg_rt
                spent = busy_times[wid - 1]
                if spent == 0 and self.was_busy[wid - 1]:
                    busyness = 100
                else:
                    busyness = min(spent * 100 // (self.freq * 1000000),
                                   100)
                totals["busyness"] += busyness
                self.was_busy[wid - 1] = 0
                if self.memory:
                    rss, vsz = self._memory_of(master, wid)
                    totals["rss"] += rss
                    totals["vsz"] += vsz
            if self.no_workers:
                continue
            worker = f"worker{wid}."
            add(worker + "requests", board.requests(wid))
            if self.memory:
                add(worker + "rss_size", rss)
                add(worker + "vsz_size", vsz)
            if self.push_avg or not idle:
                add(worker + "avg_rt", 0 if idle and self.zero_avg
                    else avg_rt)
            add(worker + "tx", tx)
            add(worker + "busyness", busyness)
            add(worker + "harakiri", harakiri)
        if self.memory:
            add("rss_size", totals["rss"])
            add("vsz_size", totals["vsz"])
        if self.push_avg or not idle:
            average = totals["avg_rt"] // active if active else 0
            add("avg_rt", 0 if idle and self.zero_avg else average)
        add("tx", totals["tx"])
        add("busyness", min(totals["busyness"] // active, 100) if active
            else 0)
        add("active_workers", active)
        if self.cheaper:
            add("cheaped_workers", len(self.last_busy) - active)
        add("harakiri", totals["harakiri"])
        return "".join(lines).encode()

    def _memory_of(self, master, wid):
        """The worker's memory now; for one gone (a last push), its last
        measure, as uWSGI keeps it."""
        child = master.worker(wid)
        if child:
            self.measured[wid] = recycle.memory(child.pid)
        return self.measured.get(wid, (0, 0))

    # -- the sending thread ---------------------------------------------
    def _send_all(self, jobs, results):
        for server, said, payload in jobs:
            ok, sent = self._send(server, said, payload)
            results.append((server, ok, said, sent))

    def _send(self, server, said, payload):
        """(whether the server is well, whether it has the payload)."""
        host = server.host
        if self.resolve:
            try:
                host = socket.getaddrinfo(host, None, socket.AF_INET,
                                          socket.SOCK_STREAM)[0][4][0]
            except (OSError, UnicodeError):
                said.append(f"[carbon] Could not resolve hostname "
                            f"{server.host}")
                return True, False  # as uWSGI: skipped, not retried
        address = f"{host}:{server.port}"
        try:
            sock = socket.create_connection((host, int(server.port)),
                                            self.timeout)
        except (OSError, ValueError):
            said.append(f"[carbon] Could not connect to carbon server at "
                        f"{address}")
            return False, False
        with sock:
            try:
                sock.settimeout(self.timeout)
                sock.sendall(payload)
            except OSError as e:
                said.append(f"carbon_write(): {e.strerror or e} "
                            f"[plugins/carbon/carbon.c line 182]")
                return True, False
        return True, True


def _cheaped(master, wid):
    """A slot the cheaper keeps empty (or all, in cheap mode), as
    uWSGI's cheaped flag."""
    if master.cheap:
        return True
    return bool(master.cheaper and (master.cheaper.is_cheaped(wid) or
                                    master.worker(wid) is None))
