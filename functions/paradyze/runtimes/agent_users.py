"""Each agent's own unprivileged uid on this host: allocated once, recorded host-wide, never reused.

Why a host-wide ledger and not a column in the platform's database: uids are a property of the
host, not of one platform instance. Several platform instances (state folders, each with its own
database) can share a host (the test suite runs many emulators at once), and two databases each
counting from the same base would hand the same uid to two agents, which could then read each
other's /proc/<pid>/environ and memory. One ledger per host, appended to under an exclusive lock,
cannot collide. A uid is never reused, even after its agent is deleted, so a file left behind by
a deleted agent can never become readable to a new one.

The uids come from a range far above regular and system accounts (and above the subordinate
ranges that Docker's user namespaces take by default); any uid or gid already known to the
system's user and group databases, or owning a process, is skipped.
"""

from __future__ import annotations

import fcntl
import grp
import logging
import os
import pwd
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..errors import AgentStartFailed

log = logging.getLogger(__name__)

LEDGER = Path("/var/lib/paradyze/agent-uids")
UID_BASE = 1_500_000_000
# Keep below 2**31: some tools still treat uids as signed 32-bit numbers.
UID_LAST = 2_000_000_000


@dataclass(frozen=True)
class AgentUser:
    uid: int
    gid: int  # a group of its own, numbered as the uid: no group is shared between agents


class AgentUsers:
    """The ledger of agent uids on this host (only usable by root, who can switch to them)."""

    def __init__(self, ledger: Path = LEDGER) -> None:
        self.ledger = ledger

    def for_agent(self, agent_id: str) -> AgentUser:
        """The agent's uid: the one it was given before, or the next free one, recorded at once."""
        self.ledger.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.ledger, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "r+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file is closed
            fh.seek(0)
            highest = UID_BASE - 1
            for line in fh:
                parts = line.split()
                if len(parts) != 2 or not parts[0].isdigit():
                    continue
                uid = int(parts[0])
                if parts[1] == agent_id:
                    return AgentUser(uid, uid)
                highest = max(highest, uid)
            uid = _next_free(highest + 1)
            fh.write(f"{uid} {agent_id}\n")
            fh.flush()
            os.fsync(fh.fileno())
        log.info("agent %s runs as uid %s", agent_id, uid)
        return AgentUser(uid, uid)


def _next_free(candidate: int) -> int:
    in_use = {p.info["uids"].real for p in psutil.process_iter(["uids"]) if p.info["uids"] is not None}
    while candidate <= UID_LAST:
        if candidate not in in_use and not _known(candidate):
            return candidate
        candidate += 1
    raise AgentStartFailed(f"no agent uid is left below {UID_LAST} on this host")


def _known(uid: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
            return True
        except KeyError:
            pass
    return False


def prepare_home(home: Path, user: AgentUser | None) -> None:
    """Create the agent's home, readable by the agent alone (its owner when user is given).

    A home restored from a backup or made by an earlier run under another uid is handed over
    whole, so the agent can open its own database.
    """
    home.mkdir(parents=True, exist_ok=True)
    if user is not None and (home.stat().st_uid, home.stat().st_gid) != (user.uid, user.gid):
        for root, dirs, files in os.walk(home):
            for name in (root, *(os.path.join(root, n) for n in dirs + files)):
                os.lchown(name, user.uid, user.gid)
    home.chmod(0o700)


def lock_down_state(state_dir: Path, agents_dir: Path) -> None:
    """Let agent users reach their own homes and nothing else of the platform's state folder.

    The state folder and the folder of homes may be entered but not listed (0711); everything
    else in the state folder (keys, tokens, the database, logs, characters, backups) is closed to
    other users. Folders above the state folder must let others pass through: one that does
    not gets o+x, and the change is logged.
    """
    for parent in reversed(state_dir.parents):
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            log.warning("letting agent users pass through %s (o+x) to reach their homes", parent)
            parent.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    for folder in (state_dir, agents_dir):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o711)
    for entry in state_dir.iterdir():
        if entry == agents_dir or entry.is_symlink():
            continue
        mode = stat.S_IMODE(entry.lstat().st_mode)
        if mode & 0o007:
            entry.chmod(mode & ~0o007)


def python_for(user: AgentUser | None) -> str:
    """A Python the agent's user may run: ours, unless it lives where others cannot reach."""
    if user is None:
        return sys.executable
    for candidate in (sys.executable, "/usr/local/bin/python3", "/usr/bin/python3"):
        if _others_can_run(Path(candidate)):
            return candidate
    raise AgentStartFailed("no Python that other users may run: install python3 in /usr/bin")


def _others_can_run(path: Path) -> bool:
    try:
        real = path.resolve(strict=True)
    except OSError:
        return False
    if not real.stat().st_mode & stat.S_IXOTH:
        return False
    return all(parent.stat().st_mode & stat.S_IXOTH for parent in real.parents)

