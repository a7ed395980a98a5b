"""The servers under test, each started as its own process group.

Every setup serves the same app (bench/app.py) and the same static folder,
with the same number of worker processes (and threads where the server has
them).  The emperor setups are the tutorial's examples/ files with the ports,
the worker count and the app swapped; `cheaper` is dropped so that both
servers keep all their workers for the whole run.
"""

import compileall
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import peers, procfs

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
UGU = [sys.executable, "-m", "ugu"]
STATIC_NAME = "bench.css"
STATIC_SIZE = 10 * 1024
START_TIMEOUT = 60
STOP_TIMEOUT = 10
BASE_SUFFIX = "-base"
# The folder holding another copy of the `ugu` package, set by --baseline.
BASELINE = []


@dataclass
class Shape:
    """What every setup is given alike."""
    processes: int = 2
    threads: int = 2
    async_cores: int = 100


@dataclass
class Running:
    name: str
    port: int
    leaders: list
    folder: Path
    logs: list = field(default_factory=list)

    def cpu_seconds(self):
        return sum(procfs.cpu_seconds(pid) for pid in self.leaders)

    def rss_bytes(self):
        return sum(procfs.rss_bytes(pid) for pid in self.leaders)

    def pids(self):
        found = set()
        for pid in self.leaders:
            found |= set(procfs.tree(pid))
        return found

    def stop(self):
        stop_processes(self.leaders)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_site(folder):
    """examples/ with the bench app and a 10 KB stylesheet in it."""
    site = folder / "site"
    shutil.copytree(EXAMPLES, site,
                    ignore=shutil.ignore_patterns("logs", "__pycache__"))
    shutil.copy(Path(__file__).with_name("app.py"), site / "code" / "app.py")
    line = b"body { margin: 0; padding: 0; color: #123456; }\n"
    css = (line * (STATIC_SIZE // len(line) + 1))[:STATIC_SIZE]
    (site / "static" / STATIC_NAME).write_bytes(css)
    for path in (folder, site, site / "static"):
        path.chmod(0o755)
    return site


def start(argv, folder, cwd, label):
    """A process in a session of its own, its output in a log file.  A
    setup folder named `*-base` runs ugu from the --baseline copy."""
    log_path = folder / f"{label}.log"
    log = open(log_path, "ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if folder.name.endswith(BASE_SUFFIX) and BASELINE:
        env["PYTHONPATH"] = os.pathsep.join(
            [BASELINE[0], env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    popen = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log,
                             stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL,
                             start_new_session=True)
    log.close()
    return popen.pid, log_path


def stop_processes(leaders):
    """SIGINT to each group, then SIGKILL to whatever of the trees is left."""
    pids = set()
    for leader in leaders:
        pids |= set(procfs.tree(leader))
        _signal_group(leader, signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and _alive(pids):
        _reap(leaders)
        time.sleep(0.05)
    for pid in _alive(pids):
        _kill(pid)
    for leader in leaders:
        _signal_group(leader, signal.SIGKILL)
    _reap(leaders)


def _signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(leaders):
    for leader in leaders:
        try:
            os.waitpid(leader, os.WNOHANG)
        except ChildProcessError:
            pass


def _alive(pids):
    return [pid for pid in pids if procfs.alive(pid)]


def http_status(port, path="/", timeout=2):
    """The status code of one HTTP/1.0 GET, or None."""
    request = f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout) as s:
            s.sendall(request)
            head = s.recv(64)
    except OSError:
        return None
    match = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return int(match.group(1)) if match else None


def wait_ready(port, path="/", timeout=START_TIMEOUT, leaders=()):
    """Seconds until the first 200; raises when it never comes."""
    began = time.monotonic()
    while http_status(port, path) != 200:
        if time.monotonic() - began > timeout:
            stop_processes(leaders)
            raise RuntimeError(f"no 200 from port {port} within {timeout}s")
        time.sleep(0.01)
    return time.monotonic() - began


# -- the setups ------------------------------------------------------------

def emperor_inis(site, shape, http_port, worker_port, keepalive="true"):
    """Point the tutorial's two INI files at our ports and worker count."""
    for name in ("http.ini", "uwsgi.ini"):
        path = site / name
        text = path.read_text()
        text = text.replace("http-keepalive = true",
                            f"http-keepalive = {keepalive}")
        # Whatever ports the examples name (the README invites edits).
        text = re.sub(r"(?m)^http = .*$", f"http = 127.0.0.1:{http_port}",
                      text)
        text = re.sub(r"(?m)^(http-to|socket) = .*$",
                      rf"\1 = 127.0.0.1:{worker_port}", text)
        text = re.sub(r"(?m)^processes = [1-9]\d*$",
                      f"processes = {shape.processes}", text)
        text = re.sub(r"(?m)^threads = \d+$", f"threads = {shape.threads}",
                      text)
        text = re.sub(r"(?m)^cheaper = .*\n", "", text)
        path.write_text(text)


def worker_args(shape, socket_option, port):
    """The vassal options of uwsgi.ini, for a server started alone."""
    return ["--master", f"--{socket_option}", f"127.0.0.1:{port}",
            "--processes", str(shape.processes),
            "--threads", str(shape.threads), "--pythonpath", "code/",
            "--module", "app", "--offload-threads", "1",
            "--check-static", "static/", "--static-gzip-all"]


def launch_emperor(binary, folder, shape, keepalive="true"):
    site = make_site(folder)
    port, worker_port = free_port(), free_port()
    emperor_inis(site, shape, port, worker_port, keepalive)
    pid, log = start([*binary, "--master", "--emperor", "*.ini"], folder,
                     site, "emperor")
    return Running(folder.name, port, [pid], folder, [log])


def launch_http_socket(binary, folder, shape, extra=()):
    site = make_site(folder)
    port = free_port()
    argv = [*binary, *worker_args(shape, "http-socket", port), *extra]
    pid, log = start(argv, folder, site, "server")
    return Running(folder.name, port, [pid], folder, [log])


def launch_behind_nginx(binary, folder, shape):
    site = make_site(folder)
    port, worker_port = free_port(), free_port()
    server, server_log = start(
        [*binary, *worker_args(shape, "socket", worker_port)], folder, site,
        "server")
    location = (f"include {nginx_uwsgi_params()};\n"
                f"uwsgi_pass 127.0.0.1:{worker_port};")
    nginx, nginx_log = start_nginx(folder, port, location)
    return Running(folder.name, port, [nginx, server], folder,
                   [nginx_log, server_log])


def launch_router_alone(router_argv, folder, shape):
    """A router in front of a uWSGI worker: the worker is C and the same
    for every router, so the differences are the routers' own."""
    site = make_site(folder)
    port, worker_port = free_port(), free_port()
    worker, worker_log = start(
        [*_uwsgi(), *worker_args(shape, "socket", worker_port)], folder,
        site, "worker")
    router, router_log = start(router_argv(port, worker_port), folder, site,
                               "router")
    return Running(folder.name, port, [router, worker], folder,
                   [router_log, worker_log])


def _http_router(binary):
    def argv(port, worker_port):
        return [*binary, "--master", "--http", f"127.0.0.1:{port}",
                "--http-to", f"127.0.0.1:{worker_port}", "--http-keepalive",
                "--processes", "0"]
    return argv


def _gevent_relay(port, worker_port):
    return [sys.executable, str(Path(__file__).with_name("relay.py")),
            str(port), str(worker_port)]


def launch_nginx_static(folder, shape):
    site = make_site(folder)
    port = free_port()
    pid, log = start_nginx(folder, port, f"root {site / 'static'};")
    return Running(folder.name, port, [pid], folder, [log])


def launch_gunicorn(worker_class, folder, shape):
    site = make_site(folder)
    port = free_port()
    argv = [*peers.gunicorn(), "--workers", str(shape.processes),
            "--worker-class", worker_class, "--bind", f"127.0.0.1:{port}",
            "--chdir", str(site / "code"), "app:application"]
    if worker_class == "gthread":
        argv += ["--threads", str(shape.threads)]
    pid, log = start(argv, folder, site, "gunicorn")
    return Running(folder.name, port, [pid], folder, [log])


def nginx_uwsgi_params():
    for folder in ("/etc/nginx", "/usr/share/nginx"):
        path = Path(folder) / "uwsgi_params"
        if path.exists():
            return path
    raise peers.Missing("nginx's uwsgi_params file is missing")


NGINX_CONF = """\
worker_processes 1;
daemon off;
{user}
pid {folder}/nginx.pid;
error_log {folder}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    keepalive_requests 1000000;
    client_max_body_size 8m;
    client_body_temp_path {folder}/tmp-body;
    proxy_temp_path {folder}/tmp-proxy;
    fastcgi_temp_path {folder}/tmp-fastcgi;
    uwsgi_temp_path {folder}/tmp-uwsgi;
    scgi_temp_path {folder}/tmp-scgi;
    default_type text/css;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            {location}
        }}
    }}
}}
"""


def start_nginx(folder, port, location):
    conf = folder / "nginx.conf"
    user = "user root root;" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(folder=folder, port=port, user=user,
                                      location=location))
    return start([peers.nginx(), "-p", str(folder), "-c", str(conf)],
                 folder, folder, "nginx")


@dataclass(frozen=True)
class Setup:
    name: str
    title: str
    launch: object          # (folder, shape) -> Running
    ready_path: str = "/"
    only: tuple = ()        # the workloads it runs; empty means all
    front: bool = False     # a front process holds idle client connections
    gevent: bool = False    # compared with gunicorn's gevent worker


def _uwsgi():
    return [peers.uwsgi()]


SETUPS = {s.name: s for s in (
    Setup("ugu-emperor", "ugu two-vassal (router + worker)",
          lambda f, sh: launch_emperor(UGU, f, sh), front=True),
    Setup("uwsgi-emperor", "uWSGI two-vassal (router + worker)",
          lambda f, sh: launch_emperor(_uwsgi(), f, sh), front=True),
    # uWSGI reads the tutorial's `http-keepalive = true` as 0 and closes
    # every client connection after its response (DEVIATIONS.md 7); given
    # the 1 the tutorial means, it keeps them open as ugu does, and shows
    # the 40 ms stall on static files the issue measured.
    Setup("uwsgi-emperor-ka", "uWSGI two-vassal, http-keepalive = 1",
          lambda f, sh: launch_emperor(_uwsgi(), f, sh, keepalive="1"),
          front=True),
    Setup("ugu-http", "ugu http-socket",
          lambda f, sh: launch_http_socket(UGU, f, sh)),
    Setup("uwsgi-http", "uWSGI http-socket",
          lambda f, sh: launch_http_socket(_uwsgi(), f, sh)),
    Setup("nginx-ugu", "nginx uwsgi_pass -> ugu worker",
          lambda f, sh: launch_behind_nginx(UGU, f, sh), front=True),
    Setup("nginx-uwsgi", "nginx uwsgi_pass -> uWSGI worker",
          lambda f, sh: launch_behind_nginx(_uwsgi(), f, sh), front=True),
    Setup("gunicorn-sync", "gunicorn sync",
          lambda f, sh: launch_gunicorn("sync", f, sh)),
    Setup("gunicorn-gthread", "gunicorn gthread",
          lambda f, sh: launch_gunicorn("gthread", f, sh), front=True),
    Setup("gunicorn-gevent", "gunicorn gevent",
          lambda f, sh: launch_gunicorn("gevent", f, sh), front=True,
          gevent=True),
    Setup("ugu-gevent", "ugu http-socket, gevent = N",
          lambda f, sh: launch_http_socket(
              UGU, f, sh, ("--gevent", str(sh.async_cores))),
          front=True, gevent=True),
    Setup("nginx-static", "nginx serving the file itself",
          lambda f, sh: launch_nginx_static(f, sh),
          ready_path=f"/{STATIC_NAME}", only=("W2",)),
    Setup("ugu-router", "ugu router alone, before a uWSGI worker",
          lambda f, sh: launch_router_alone(_http_router(UGU), f, sh),
          front=True),
    Setup("uwsgi-router", "uWSGI router alone, before a uWSGI worker",
          lambda f, sh: launch_router_alone(_http_router(_uwsgi()), f, sh),
          front=True),
    Setup("gevent-relay", "bare gevent relay (bench/relay.py), before a "
          "uWSGI worker",
          lambda f, sh: launch_router_alone(_gevent_relay, f, sh),
          only=("W1", "W2", "W3")),
)}

# The routers alone: on request (--setups), to study the router.
ROUTER_ALONE = ("ugu-router", "uwsgi-router", "gevent-relay")
DEFAULT = tuple(name for name in SETUPS if name not in ROUTER_ALONE)

QUICK = ("ugu-emperor", "uwsgi-emperor", "uwsgi-emperor-ka", "ugu-http",
         "uwsgi-http", "gunicorn-sync")


def compile_bytecode():
    """Write the .pyc files of each ugu copy under test, as pip does when it
    installs a package and Python does on the first import.  Where
    PYTHONDONTWRITEBYTECODE is set (some CI images and sandboxes set it),
    every ugu process would otherwise compile its 300 modules again, and
    the cold start would time the compiler, which no installed ugu runs."""
    for folder in [REPO, *BASELINE]:
        compileall.compile_dir(Path(folder) / "ugu", quiet=1)


def baseline_twin(setup):
    """The same setup, running ugu from the baseline copy."""
    return Setup(setup.name + BASE_SUFFIX, setup.title + " (baseline)",
                 setup.launch, setup.ready_path, setup.only, setup.front,
                 setup.gevent)


def unavailable(setup):
    """Why a setup cannot run here, or None."""
    if setup.name == "ugu-gevent" and not peers.ugu_has_option("gevent"):
        return "ugu has no `gevent` option yet"
    try:
        if "uwsgi" in setup.name or setup.name in ROUTER_ALONE:
            peers.uwsgi()
        if "nginx" in setup.name:
            peers.nginx()
        if "gunicorn" in setup.name:
            peers.gunicorn()
    except peers.Missing as e:
        return str(e)
    return None


def launch(setup, root, shape):
    """Start a setup in its own folder under root; wait for its first 200.
    Returns (Running, seconds to the first 200)."""
    folder = Path(root) / setup.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    began = time.monotonic()
    running = setup.launch(folder, shape)
    running.name = setup.name
    wait_ready(running.port, setup.ready_path, leaders=running.leaders)
    return running, time.monotonic() - began
