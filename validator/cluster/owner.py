"""Who owns a kind cluster this tool created: a marker file per cluster, read by `sweep --orphans`.

Why a file and not a label: kind cannot put labels on its node containers, and a label on the Node objects is
only readable through the cluster's API, which a half-created or wedged cluster (the usual leftover of a kill -9)
may not answer. A small JSON file in a per-user state directory is written before `kind create` (so a run killed
during create still leaves its owner behind) and removed after a successful `kind delete`. It holds the host name,
the kernel boot id (/proc/sys/kernel/random/boot_id, when there is one) and the pid of the run.

Directory: $ARGOCD_MIRROR_STATE, else $ARGOCD_MIRROR_CACHE/clusters, else ~/.cache/argocd-mirror/clusters.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
OUR_PROCESSES = ("argocd-mirror", "argocd_mirror", "pytest")  # what a live owner's /proc/<pid>/cmdline contains


def state_dir(env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if env.get("ARGOCD_MIRROR_STATE"):
        return Path(env["ARGOCD_MIRROR_STATE"])
    cache = env.get("ARGOCD_MIRROR_CACHE")
    return (Path(cache) if cache else Path.home() / ".cache" / "argocd-mirror") / "clusters"


def boot_id() -> str:
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def me() -> dict[str, Any]:
    return {"host": socket.gethostname(), "boot_id": boot_id(), "pid": os.getpid(),
            "argv0": Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""}


def marker_path(name: str) -> Path:
    return state_dir() / f"{name}.json"


def write_marker(name: str, kept: bool = False) -> None:
    """Record this process as the owner of cluster NAME (best effort: a marker that cannot be written only means
    `sweep --orphans` leaves the cluster to `--older-than`)."""
    path = marker_path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"cluster": name, **me(), "kept": kept}) + "\n")
        tmp.replace(path)
    except OSError:
        pass


def remove_marker(name: str) -> None:
    with contextlib.suppress(OSError):
        marker_path(name).unlink(missing_ok=True)


@dataclass(frozen=True)
class Ownership:
    orphaned: bool  # True: the owner is certainly gone, the cluster may be deleted
    why: str


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return None


def judge(name: str) -> Ownership | None:
    """Is the run that created cluster NAME gone? None when there is no marker (left to --older-than)."""
    path = marker_path(name)
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Ownership(False, f"owner marker {path} unreadable ({exc})")
    try:
        data = json.loads(raw)
        host, boot, pid, kept = str(data["host"]), str(data.get("boot_id") or ""), int(data["pid"]), data.get("kept")
    except (ValueError, KeyError, TypeError):
        return Ownership(False, f"owner marker {path} is not one this tool wrote")
    if kept:
        return Ownership(False, "kept on purpose (--keep-cluster); delete it yourself or with --older-than")
    here = me()
    if host != here["host"]:
        return Ownership(False, f"owned by a run on host {host[:64]!r}, not this one")
    if boot and here["boot_id"] and boot != here["boot_id"]:
        return Ownership(True, f"owner pid {pid} ran before this host rebooted")
    if pid <= 0 or not _alive(pid):
        return Ownership(True, f"owner pid {pid} is gone")
    cmdline = _cmdline(pid)
    if cmdline is None:
        return Ownership(False, f"owner pid {pid} is alive (cannot read its command line to tell more)")
    if any(word in cmdline for word in OUR_PROCESSES):
        return Ownership(False, f"owner pid {pid} is alive")
    return Ownership(True, f"owner pid {pid} is gone (the pid now belongs to another program)")


def stale_markers(existing: set[str]) -> list[str]:
    """Names with a marker but no cluster any more whose owner is gone (a run killed after `kind delete` but before it
    removed its marker, or a failed create kept with no node): nothing to delete, only the marker to forget."""
    try:
        names = sorted(p.stem for p in state_dir().glob("*.json"))
    except OSError:
        return []
    return [n for n in names if n not in existing and (judged := judge(n)) is not None and judged.orphaned]
