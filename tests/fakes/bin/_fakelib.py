"""Shared plumbing of the fake kind/docker/kubectl executables: argv log, state, cues.

Env: FAKE_LOG (JSON lines of every call), FAKE_KIND_STATE (directory with clusters.json/images.json),
FAKE_KIND_FAIL (comma-separated cues, e.g. docker-down,wait-timeout).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

DOCKER_DOWN = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
               "Is the docker daemon running?")


def record(tool: str, argv: list[str]) -> None:
    log = os.environ.get("FAKE_LOG")
    if not log:
        return
    entry = {"tool": tool, "argv": argv, "kubeconfig_env": os.environ.get("KUBECONFIG"), "pid": os.getpid(),
             "time": dt.datetime.now(dt.UTC).isoformat()}
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")
        fh.flush()


def cues() -> set[str]:
    return {c.strip() for c in os.environ.get("FAKE_KIND_FAIL", "").split(",") if c.strip()}


def state_dir() -> Path:
    path = Path(os.environ.get("FAKE_KIND_STATE") or Path(tempfile.gettempdir()) / "fake-kind-state")
    path.mkdir(parents=True, exist_ok=True)
    return path


def load(name: str) -> dict[str, Any]:
    try:
        data = json.loads((state_dir() / name).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save(name: str, data: dict[str, Any]) -> None:
    path = state_dir() / name
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def flag(argv: list[str], name: str, default: str | None = None) -> str | None:
    """Value of --name VALUE or --name=VALUE (cobra accepts both)."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def positional(argv: list[str], with_values: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in with_values:
            skip = True
            continue
        if not arg.startswith("-"):
            out.append(arg)
    return out


def die(message: str, code: int = 1) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.exit(code)


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000Z")
