"""W1..W8: what wrk asks of each setup."""

from dataclasses import dataclass

from bench.setups import STATIC_NAME

POST_SIZE = 1 << 20
IDLE_CONNECTIONS = 1000


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    path: str
    headers: tuple = ()
    script: str = ""          # a wrk Lua script's text
    idle: int = 0             # idle keepalive connections held meanwhile
    fronted_only: bool = False

    def runs_on(self, setup):
        if setup.only:
            return self.name in setup.only
        return setup.front or not self.fronted_only


POST_SCRIPT = f"""\
wrk.method = "POST"
wrk.body = string.rep("x", {POST_SIZE})
wrk.headers["Content-Type"] = "application/octet-stream"
"""

# Each request's head new: what a static file costs where the router's
# static answers (ugu.staticanswer) never repeat.
FRESH_QUERY_SCRIPT = """\
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, wrk.path .. "?" .. n)
end
"""

WORKLOADS = {w.name: w for w in (
    Workload("W1", "hello world (12 bytes)", "/"),
    Workload("W2", "10 KB static CSS file", f"/{STATIC_NAME}"),
    Workload("W3", "small Flask JSON endpoint", "/json"),
    Workload("W4", "1 MB response", "/big"),
    Workload("W5", "hello world, a new connection per request", "/",
             headers=("Connection: close",)),
    Workload("W6", f"hello world with {IDLE_CONNECTIONS} idle keepalive "
             "connections held", "/", idle=IDLE_CONNECTIONS,
             fronted_only=True),
    Workload("W7", "POST with a 1 MB body", "/upload", script=POST_SCRIPT),
    Workload("W8", "10 KB static CSS file, a new query string each time",
             f"/{STATIC_NAME}", script=FRESH_QUERY_SCRIPT),
)}
