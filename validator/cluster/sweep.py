"""Find and delete leaked mirror clusters: our name prefix only, older than a threshold only.

Age = creation time of the cluster's control-plane node container as recorded by the Docker engine
(`docker inspect`), not a timestamp encoded in the name: the engine's record cannot drift from reality or
be forged by a name, needs no naming convention, and covers clusters left by any version of this tool.

`--orphans` selects by owner instead of age: the kind provider leaves an owner marker per cluster
(validator/cluster/owner.py); a cluster whose owning run is certainly gone on this host (same host and boot, pid
not alive or now another program) is deleted at once, one whose owner is alive or elsewhere is spared, and one
without a marker is left to --older-than.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from validator.cluster import owner
from validator.cluster.kind import cluster_names, delete_argv, is_generated_name, kind_binary
from validator.cluster.lifecycle import signals_deferred
from validator.cluster.tools import Progress, docker_ping, find_tool, last_error, run
from validator.errors import InputError

# Each unit at most once, largest first, ASCII digits only (Go's time.ParseDuration spelling, plus days).
_NUMBER = r"([0-9]{1,9}(?:\.[0-9]{1,9})?)"
_DURATION = re.compile("".join(f"(?:{_NUMBER}{unit})?" for unit in "dhms"))
_UNIT_S = (86400, 3600, 60, 1)


def parse_duration(text: str) -> float:
    """'2h', '90m', '1h30m', '45s', '0' -> seconds."""
    text = text.strip()
    if text == "0":
        return 0.0
    match = _DURATION.fullmatch(text)
    if not text or not match:
        raise InputError(f"not a duration: {text!r} (use e.g. 2h, 90m, 1h30m, 45s)")
    return sum(float(n) * unit for n, unit in zip(match.groups(), _UNIT_S, strict=True) if n)


def format_age(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def parse_created(text: str) -> dt.datetime:
    """Docker's RFC 3339 with nanoseconds ('2026-11-28T00:18:22.123456789Z') as an aware datetime."""
    value = json.loads(text) if text.strip().startswith('"') else text.strip()
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value)
    if not match:
        raise ValueError(f"unexpected creation time {value!r}")
    frac = (match[2] or "0")[:6].ljust(6, "0")
    tz = "+00:00" if match[3] == "Z" else match[3]
    return dt.datetime.fromisoformat(f"{match[1]}.{frac}{tz}")


@dataclass(frozen=True)
class Decision:
    name: str
    age_s: float | None
    action: str  # "delete" | "keep" | "unknown-age" | "no-marker" (--orphans)
    why: str = ""  # --orphans: what the owner marker says


def decide(ages: dict[str, float | None], older_than_s: float) -> list[Decision]:
    """Pure selection: only names the tool generates, and only when certainly older than the threshold."""
    out = []
    for name in sorted(ages):
        if not is_generated_name(name):
            continue
        age = ages[name]
        action = "unknown-age" if age is None else "delete" if age >= older_than_s else "keep"
        out.append(Decision(name, age, action))
    return out


def decide_orphans(names: list[str]) -> list[Decision]:
    """Only names the tool generates; delete only when the marker shows the owning run is gone."""
    out = []
    for name in sorted(names):
        if not is_generated_name(name):
            continue
        judged = owner.judge(name)
        if judged is None:
            out.append(Decision(name, None, "no-marker", "no owner marker: left to --older-than"))
        else:
            out.append(Decision(name, None, "delete" if judged.orphaned else "keep", judged.why))
    return out


@dataclass
class SweepResult:
    decisions: list[Decision] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)  # --orphans: owner markers of clusters already gone


def cluster_age(docker: str, name: str, now: dt.datetime) -> float | None:
    proc = run([docker, "inspect", "--type", "container", "--format", "{{json .Created}}", f"{name}-control-plane"],
               timeout_s=30)
    if proc.returncode != 0:
        return None
    try:
        return (now - parse_created(proc.stdout.strip().splitlines()[0])).total_seconds()
    except (ValueError, IndexError):
        return None


def sweep(older_than_s: float, dry_run: bool, progress: Progress, orphans: bool = False) -> SweepResult:
    kind = kind_binary()
    docker = find_tool("docker", "install Docker (kind runs every node as a Docker container)")
    docker_ping()
    now = dt.datetime.now(dt.UTC)
    every = cluster_names(kind)
    ours = [n for n in every if is_generated_name(n)]
    if orphans:
        result = SweepResult(decide_orphans(ours))
        if not dry_run:
            result.forgotten = owner.stale_markers(set(every))
            for name in result.forgotten:
                owner.remove_marker(name)
    else:
        result = SweepResult(decide({n: cluster_age(docker, n, now) for n in ours}, older_than_s))
    with tempfile.TemporaryDirectory(prefix="argocd-mirror-sweep-") as tmp:
        # kind edits the kubeconfig it is given on delete: give it a throwaway one, never the user's.
        scratch = Path(tmp) / "kubeconfig"
        scratch.write_text("apiVersion: v1\nkind: Config\n")
        for d in result.decisions:
            if d.action != "delete" or dry_run:
                continue
            with signals_deferred(progress):  # a Ctrl-C stops the sweep after this delete, never halfway through it
                proc = run(delete_argv(kind, d.name, scratch), timeout_s=300)
            if proc.returncode == 0:
                result.deleted.append(d.name)
                owner.remove_marker(d.name)
            else:
                result.errors.append(f"{d.name}: {last_error(proc)}")
    return result
