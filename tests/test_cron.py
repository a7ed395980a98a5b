"""The master's cron (`cron`, `unique-cron`, `cron2`, `cron-harakiri`).

A schedule is tested without waiting for minutes to pass: the matching
function on chosen times, the master's once-a-second check (Crons.tick)
given chosen clocks and running real shells, and one run of ugu beside the
real uWSGI with rules that match now (every field -1, or this hour of
today) and one that never does, comparing their cron lines.

A cron command runs in a session of its own and, as in uWSGI, may outlive
the instance: every group a test's commands ran in is emptied at its end,
after checking that only the ones meant to be left were still alive.
"""

import os
import re
import signal
import textwrap
import time

import pytest

from tests import support
from tests.support import group_members, wait_until
from ugu.options.errors import ConfigError
from ugu.vassal.cron import ANY, Cron, Crons, matches, parse

APP = textwrap.dedent('''
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')


def at(text):
    """The local time struct of 'YYYY-MM-DD HH:MM'."""
    return time.strptime(text, "%Y-%m-%d %H:%M")


@pytest.fixture
def groups():
    """Process groups of cron commands; each must be empty (or listed in
    `groups.left`) at the test's end, and is emptied either way."""
    class Groups(set):
        left = set()
    found = Groups()
    yield found
    alive = {pgid for pgid in found if group_members(pgid)}
    for pgid in alive:
        os.killpg(pgid, signal.SIGKILL)
    for pgid in alive:
        wait_until(lambda: not group_members(pgid), 5,
                   what=f"group {pgid} to empty")
    assert alive <= found.left, f"cron commands left running: {alive}"


# -- matching, on chosen times -----------------------------------------
# 2026-12-06 is a Sunday, 2026-12-07 a Monday, 2026-12-09 a Wednesday.

@pytest.mark.parametrize("rule, when, expected", [
    ({}, "2026-12-06 14:30", True),
    ({"minute": 30}, "2026-12-06 14:30", True),
    ({"minute": 30}, "2026-12-06 14:31", False),
    ({"minute": -15}, "2026-12-06 14:45", True),
    ({"minute": -15}, "2026-12-06 14:00", True),
    ({"minute": -15}, "2026-12-06 14:50", False),
    ({"minute": 0, "hour": -2}, "2026-12-06 14:00", True),
    ({"minute": 0, "hour": -2}, "2026-12-06 13:00", False),
    ({"hour": 14}, "2026-12-06 14:59", True),
    ({"hour": 14}, "2026-12-06 15:00", False),
    # months count from 1, as in crontab
    ({"month": 12}, "2026-12-06 14:30", True),
    ({"month": 11}, "2026-12-06 14:30", False),
    ({"month": -3}, "2026-12-06 14:30", True),
    ({"month": -5}, "2026-12-06 14:30", False),
    ({"day": -2}, "2026-12-06 14:30", True),
    ({"day": -2}, "2026-12-07 14:30", False),
    # weekdays count from Sunday, as 0 or 7
    ({"week": 0}, "2026-12-06 14:30", True),
    ({"week": 7}, "2026-12-06 14:30", True),
    ({"week": 1}, "2026-12-07 14:30", True),
    ({"week": 1}, "2026-12-06 14:30", False),
    ({"week": 3}, "2026-12-09 14:30", True),
    ({"week": -2}, "2026-12-06 14:30", True),
    ({"week": -2}, "2026-12-09 14:30", False),
    ({"week": -2}, "2026-12-07 14:30", False),
    # a day and a weekday both given: either one is enough
    ({"day": 6, "week": 3}, "2026-12-06 14:30", True),
    ({"day": 6, "week": 3}, "2026-12-09 14:30", True),
    ({"day": 6, "week": 3}, "2026-12-07 14:30", False),
    # one of them an interval: both must match
    ({"day": -2, "week": 3}, "2026-12-09 14:30", False),
    ({"day": -2, "week": 0}, "2026-12-06 14:30", True),
    ({"day": 6, "week": -1}, "2026-12-07 14:30", False),
    ({"minute": 30, "hour": 14, "day": 6, "month": 12},
     "2026-12-06 14:30", True),
    ({"minute": 30, "hour": 14, "day": 6, "month": 1},
     "2026-12-06 14:30", False),
])
def test_a_rule_matches_as_uwsgi_reads_it(rule, when, expected):
    assert matches(Cron("true", **rule), at(when)) is expected


# -- option lines --------------------------------------------------------

def fields(cron):
    return (cron.minute, cron.hour, cron.day, cron.month, cron.week,
            cron.command, cron.unique, cron.mercy)


@pytest.mark.parametrize("option, value, expected", [
    ("cron", "5 -1 -1 -1 -1 echo a  b",
     (5, ANY, ANY, ANY, ANY, "echo a  b", False, 0)),
    ("cron", " 0  3 +1 12 7\tbackup.sh",
     (0, 3, 1, 12, 7, "backup.sh", False, 0)),
    ("unique-cron", "-5 -1 -1 -1 -1 sleep 1",
     (-5, ANY, ANY, ANY, ANY, "sleep 1", True, 0)),
    ("cron2", "echo hello world",
     (ANY, ANY, ANY, ANY, ANY, "echo hello world", False, 0)),
    ("cron2", "minute=5,hour=-2,day=3,month=4,week=1 run it",
     (5, -2, 3, 4, 1, "run it", False, 0)),
    ("cron2", "unique=1,harakiri=30 x", (ANY,) * 5 + ("x", True, 30)),
    ("cron2", "unique=0,harakiri=0 x", (ANY,) * 5 + ("x", False, -1)),
])
def test_cron_lines_are_read(option, value, expected):
    assert fields(parse(option, value)) == expected


@pytest.mark.parametrize("option, value, words", [
    ("cron", "* * * * * echo x", "invalid cron syntax: * * * * *"),
    ("cron", "-1 -1 -1 -1 echo x", "invalid cron syntax"),
    ("cron", "-1 -1 -1 -1 -1", "invalid cron syntax"),
    ("cron", "-1 -1 -1 -1 -1x echo", "invalid cron syntax"),
    ("cron2", "minute=5", "unable to parse cron definition: minute=5"),
    ("cron2", "minute=5 ", "no command"),
    ("cron2", "legion=mine echo x", "key 'legion': legions are not"),
    ("cron2", "minutes=5 echo x", "unknown key 'minutes'"),
    ("cron2", "minute=*/5 echo x", "'*/5' is not a number"),
])
def test_a_malformed_cron_line_is_refused(option, value, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        parse(option, value)


@pytest.mark.parametrize("option", ["legion-cron", "cron-legion",
                                    "unique-legion-cron",
                                    "unique-cron-legion"])
def test_legion_crons_stay_refused(procs, tmp_path, option):
    port = support.free_port()
    ini = support.write_ini(tmp_path / "app.ini", uwsgi=[
        ("master", "true"), ("http-socket", f"127.0.0.1:{port}"),
        (option, "mine -1 -1 -1 -1 -1 true")])
    p = procs.ugu("--ini", str(ini))
    assert p.wait() == 1
    assert f"option '{option}': this uWSGI option is not implemented" in \
        p.output()


# -- the master's check, on chosen clocks ---------------------------------

def reap(pid):
    return os.waitpid(pid, 0)[1]


def test_a_matching_rule_runs_once_per_matching_minute(capfd, groups):
    cron = Cron("exit 7")
    crons = Crons([cron])
    now = int(time.time())
    crons.tick(now)
    first = cron.pid
    groups.add(first)
    crons.tick(now + 59)
    assert cron.pid == first
    crons.tick(now + 60)
    second = cron.pid
    groups.add(second)
    assert second != first
    # The first run, replaced before its end was reaped, is told as any
    # subprocess the master no longer follows.
    assert crons.died(first, reap(first))
    assert crons.died(second, reap(second))
    assert not crons.died(os.getpid(), 0)
    err = capfd.readouterr().err
    assert err.count('[uwsgi-cron] running "exit 7"') == 2
    assert f"subprocess {first} exited with code 7\n" in err
    assert (f'[uwsgi-cron] command "exit 7" running with pid {second} '
            f'exited after ') in err


def test_a_unique_command_is_not_started_again_while_it_runs(groups):
    cron = Cron("exit 0", unique=True)
    crons = Crons([cron])
    now = int(time.time())
    crons.tick(now)
    first = cron.pid
    groups.add(first)
    crons.tick(now + 120)
    assert cron.pid == first
    crons.died(first, reap(first))
    crons.tick(now + 121)
    groups.add(cron.pid)
    assert cron.pid not in (None, first)
    crons.died(cron.pid, reap(cron.pid))


def test_a_command_runs_through_the_shell_in_a_session_of_its_own(
        tmp_path, groups):
    out = tmp_path / "ids"
    cron = Cron(f"echo $$ $(ps -o pgid= -p $$) $(ps -o sid= -p $$) > {out}")
    crons = Crons([cron])
    crons.tick(int(time.time()))
    groups.add(cron.pid)
    assert os.waitstatus_to_exitcode(reap(cron.pid)) == 0
    pid, pgid, sid = map(int, out.read_text().split())
    assert pid == pgid == sid == cron.pid


@pytest.mark.parametrize("mercy, cron_harakiri, killed", [
    (1, 0, True),       # cron2's harakiri=1
    (0, 1, True),       # cron-harakiri = 1
    (-1, 1, False),     # cron2's harakiri=0 turns cron-harakiri off
    (0, 0, False),
])
def test_harakiri_kills_the_commands_group(capfd, groups, mercy,
                                           cron_harakiri, killed):
    # The shell's child holds the group even once the shell is gone.
    cron = Cron("sleep 30 & sleep 30", mercy=mercy)
    crons = Crons([cron], cron_harakiri)
    now = int(time.time())
    crons.tick(now)
    pid = cron.pid
    groups.add(pid)
    # The child is its group once it has started its session.
    wait_until(lambda: group_members(pid), 5, what="the command's group")
    crons.tick(now + 1)
    assert group_members(pid)
    crons.tick(now + 2)
    err = capfd.readouterr().err
    said = f'*** HARAKIRI ON CRON "sleep 30 & sleep 30" (pid: {pid}) ***'
    assert (said in err) is killed
    if killed:
        assert os.WTERMSIG(reap(pid)) == signal.SIGKILL
        wait_until(lambda: not group_members(pid), 5,
                   what="the command's group to empty")
        crons.tick(now + 3)
        assert said not in capfd.readouterr().err
    else:
        groups.left.add(pid)


# -- side by side with uWSGI ------------------------------------------------

def cron_lines(output):
    """The cron lines of a log, dates, pids and seconds taken out."""
    lines = []
    for line in output.splitlines():
        if "[uwsgi-cron]" not in line and "ON CRON" not in line:
            continue
        line = re.sub(r"^\w{3} \w{3} [ \d]\d [\d:]{8} \d{4} - ", "", line)
        line = re.sub(r"pid:? \d+", "pid N", line)
        lines.append(re.sub(r"after \d+ second", "after S second", line))
    return lines


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_the_master_runs_matching_commands_as_uwsgi(
        start_server, tmp_path, groups, server):
    (tmp_path / "app.py").write_text(APP)
    now = time.localtime()
    other_month = now.tm_mon % 12 + 1
    ini = support.write_ini(tmp_path / "app.ini", uwsgi=[
        ("master", "true"),
        ("http-socket", f"127.0.0.1:{support.free_port()}"),
        ("wsgi-file", str(tmp_path / "app.py")),
        ("cron", "-1 -1 -1 -1 -1 echo every-minute; exit 3"),
        ("unique-cron", "-1 -1 -1 -1 -1 sleep 60"),
        ("cron2", "harakiri=1 sleep 30"),
        ("cron2", f"hour={now.tm_hour},day={now.tm_mday} echo this-hour"),
        ("cron2", f"month={other_month} echo never"),
    ])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    for command in ("echo every-minute; exit 3", "sleep 60", "sleep 30",
                    "echo this-hour"):
        found = p.wait_for_log(
            rf'\[uwsgi-cron\] running "{re.escape(command)}" \(pid (\d+)\)')
        groups.add(int(found.group(1)))
    p.wait_for_log(r'command "sleep 30" running with pid \d+ exited', 10)
    p.wait_for_log(r'command "echo every-minute; exit 3" running .* exited')
    assert p.stop() == 0
    output = p.output()
    assert "every-minute\n" in output
    lines = cron_lines(output)
    assert lines[:5] == [
        '[uwsgi-cron] command "echo every-minute; exit 3" registered as '
        'cron task',
        '[uwsgi-cron] command "sleep 60" registered as cron task',
        '[uwsgi-cron] command "sleep 30" registered as cron task',
        '[uwsgi-cron] command "echo this-hour" registered as cron task',
        '[uwsgi-cron] command "echo never" registered as cron task',
    ]
    assert [l for l in lines if "running" in l and "exited" not in l] == [
        '[uwsgi-cron] running "echo every-minute; exit 3" (pid N)',
        '[uwsgi-cron] running "sleep 60" (pid N)',
        '[uwsgi-cron] running "sleep 30" (pid N)',
        '[uwsgi-cron] running "echo this-hour" (pid N)',
    ]
    assert '*** HARAKIRI ON CRON "sleep 30" (pid N) ***' in lines
    assert ('[uwsgi-cron] command "sleep 30" running with pid N exited '
            'after S second(s)') in lines
    # The unique command still runs: the instance leaves it behind.
    running = [pgid for pgid in groups if group_members(pgid)]
    assert len(running) == 1
    groups.left.update(running)
