"""A server's process tree as /proc shows it: members, RSS, CPU time.

The tree is every process in the setup's process group plus every
descendant of its leader (a server may move a child to a group of its own).
"""

import os
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid):
    """(ppid, pgid, utime+stime in ticks) of a live process, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    # After the command: state ppid pgrp session ... utime(12) stime(13).
    return int(fields[1]), int(fields[2]), int(fields[11]) + int(fields[12])


def _all():
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            found = _stat(int(entry))
            if found:
                table[int(entry)] = found
    return table


def tree(leader):
    """{pid: cpu ticks} of the leader's group and descendants."""
    table = _all()
    members = {pid for pid, (_, pgid, _) in table.items() if pgid == leader}
    members.add(leader)
    grew = True
    while grew:
        kids = {pid for pid, (ppid, _, _) in table.items()
                if ppid in members and pid not in members}
        members |= kids
        grew = bool(kids)
    return {pid: table[pid][2] for pid in members if pid in table}


def cpu_seconds(leader):
    """User + system CPU of the whole tree, in seconds."""
    return sum(tree(leader).values()) / TICK


def rss_bytes(leader):
    total = 0
    for pid in tree(leader):
        try:
            pages = Path(f"/proc/{pid}/statm").read_text().split()[1]
        except OSError:
            continue
        total += int(pages) * PAGE
    return total


def busy_seconds():
    """CPU time all cores spent not idle since boot (for the noise check)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    ticks = [int(f) for f in fields]
    # user nice system idle iowait irq softirq steal: idle and iowait are
    # the only idle columns.
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / TICK


def alive(pid):
    return _stat(pid) is not None


def parent(pid):
    found = _stat(pid)
    return found[0] if found else None


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(
            b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""
