"""Candidate resolution from every source, with upstream played by a local bare git repo and HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from validator.candidate import classify, resolve
from validator.cli import main
from validator.errors import EnvironmentNotReady, FetchError, InputError
from validator.releases import Sources, semver_key

MANIFEST = b"""apiVersion: apps/v1
kind: Deployment
metadata: {name: argocd-server}
spec:
  template:
    spec:
      containers: [{name: server, image: quay.io/argoproj/argocd:%s}]
---
apiVersion: v1
kind: Service
metadata: {name: argocd-server}
"""


@dataclass
class Upstream:
    """A stand-in for github.com/argoproj/argo-cd: bare repo for ls-remote, HTTP for raw files."""

    git_url: str
    commits: dict[str, str]
    files: dict[str, bytes]
    http_port: int
    hits: list[str] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # HTTP status codes to answer before succeeding

    def sources(self, tmp: Path) -> Sources:
        return Sources(git_url=self.git_url,
                       raw_url=f"http://127.0.0.1:{self.http_port}/{{ref}}/manifests/{{path}}",
                       cache_dir=tmp / "cache", timeout_s=5, attempts=3, backoff_s=0)


def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Upstream]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "master")
    commits: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for version in ("v2.11.2", "v3.5.0-rc1", "v3.5.1"):
        (work / "VERSION").write_text(version)
        _git(work, "add", "VERSION")
        _git(work, "commit", "-q", "-m", version)
        commits[version] = _git(work, "rev-parse", "HEAD")
        _git(work, "tag", "-a", version, "-m", version)  # annotated, as Argo CD's release tags are
        files[f"/{commits[version]}/manifests/install.yaml"] = MANIFEST % version.encode()
        files[f"/{commits[version]}/manifests/ha/install.yaml"] = MANIFEST % version.encode() + b"# ha\n"
    _git(work, "tag", "stable", commits["v3.5.1"])  # lightweight, moving
    (work / "VERSION").write_text("dev")
    _git(work, "commit", "-qam", "dev")
    _git(work, "tag", "untagged-moving", "HEAD")
    bare = tmp_path / "argo-cd.git"
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))

    up = Upstream(git_url=f"file://{bare}", commits=commits, files=files, http_port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            up.hits.append(self.path)
            if up.fail_next:
                self.send_error(up.fail_next.pop(0))
                return
            body = up.files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    up.http_port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield up
    server.shutdown()
    server.server_close()


def test_stable_resolves_to_the_release_tag_and_commit_it_points_to(upstream: Upstream, tmp_path: Path) -> None:
    bundle = resolve("stable", sources=upstream.sources(tmp_path))
    prov = bundle.provenance
    assert (prov.source, prov.version, prov.commit) == ("stable", "v3.5.1", upstream.commits["v3.5.1"])
    assert prov.url.endswith(f"/{upstream.commits['v3.5.1']}/manifests/install.yaml")  # fetched by commit
    assert prov.sha256 == hashlib.sha256(MANIFEST % b"v3.5.1").hexdigest()
    assert prov.image_version == "v3.5.1" and len(bundle) == 2
    assert prov.label == f"stable=v3.5.1 (commit {upstream.commits['v3.5.1'][:7]})"


def test_tag_and_variant(upstream: Upstream, tmp_path: Path) -> None:
    bundle = resolve("v2.11.2", variant="ha", sources=upstream.sources(tmp_path))
    assert bundle.provenance.version == "v2.11.2"
    assert bundle.provenance.url.endswith("/manifests/ha/install.yaml")


def test_unknown_tag_and_unnamed_commit_fail_instead_of_falling_back(upstream: Upstream, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="tag 'v9.9.9' does not exist"):
        resolve("v9.9.9", sources=upstream.sources(tmp_path))
    moving = upstream.sources(tmp_path)
    with pytest.raises(FetchError, match="no release tag names; refusing to guess"):
        from validator.upstream import resolve_ref

        resolve_ref("untagged-moving", moving)


def test_downloads_retry_transient_errors_then_cache_by_sha256(upstream: Upstream, tmp_path: Path) -> None:
    sources = upstream.sources(tmp_path)
    upstream.fail_next = [503, 502]
    first = resolve("v3.5.1", sources=sources)
    assert len(upstream.hits) == 3
    second = resolve("v3.5.1", sources=sources)  # commit-pinned URL: served from the cache
    assert len(upstream.hits) == 3
    assert second.provenance.sha256 == first.provenance.sha256
    blob = tmp_path / "cache" / "blobs" / f"{first.provenance.sha256}.yaml"
    blob.write_bytes(b"tampered")  # a corrupt cache entry is never trusted
    resolve("v3.5.1", sources=sources)
    assert len(upstream.hits) == 4


def test_http_404_fails_at_once_and_persistent_5xx_gives_up(upstream: Upstream, tmp_path: Path) -> None:
    sources = upstream.sources(tmp_path)
    upstream.files.clear()
    with pytest.raises(FetchError, match="HTTP 404"):
        resolve("v3.5.1", sources=sources)
    assert len(upstream.hits) == 1
    upstream.fail_next = [500] * 5
    with pytest.raises(FetchError, match="after 3 attempts"):
        resolve("v2.11.2", sources=sources)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_is_could_not_validate_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    offline = replace(Sources(), git_url=f"http://127.0.0.1:{port}/argo-cd.git", cache_dir=tmp_path, backoff_s=0,
                      attempts=2)
    monkeypatch.setattr(Sources, "from_env", classmethod(lambda cls: offline))
    assert main(["resolve", "stable"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("argocd-mirror resolve: could not resolve: could not list tags") and "(offline?)" in err
    assert err.count("\n") == 1


def test_url_file_and_kustomize_sources(upstream: Upstream, tmp_path: Path) -> None:
    sources = upstream.sources(tmp_path)
    url = f"http://127.0.0.1:{upstream.http_port}/{upstream.commits['v2.11.2']}/manifests/install.yaml"
    by_url = resolve(url, sources=sources)
    assert (by_url.provenance.source, by_url.provenance.url, by_url.provenance.image_version) == (
        "url", url, "v2.11.2")

    local = tmp_path / "install.yaml"
    local.write_bytes(MANIFEST % b"v3.5.1")
    by_file = resolve(str(local), sources=sources)
    assert by_file.provenance.source == "file" and by_file.provenance.path == str(local)
    assert by_file.provenance.sha256 == hashlib.sha256(local.read_bytes()).hexdigest()

    empty_dir = tmp_path / "notkustomize"
    empty_dir.mkdir()
    with pytest.raises(InputError, match="no kustomization.yaml"):
        resolve(str(empty_dir), sources=sources)


def test_kustomize_directory_is_rendered_with_kubectl(tmp_path: Path) -> None:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    kdir = tmp_path / "overlay"
    kdir.mkdir()
    (kdir / "install.yaml").write_bytes(MANIFEST % b"v3.5.1")
    (kdir / "kustomization.yaml").write_text("resources: [install.yaml]\nnamespace: argocd\n")
    bundle = resolve(str(kdir))
    assert bundle.provenance.source == "kustomize" and len(bundle) == 2
    (kdir / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(InputError, match="kubectl kustomize .* failed"):
        resolve(str(kdir))


def test_kustomize_without_kubectl_is_an_environment_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\n")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(EnvironmentNotReady, match="kubectl is not installed"):
        resolve(str(tmp_path))


def test_classify_and_bad_specs(tmp_path: Path) -> None:
    assert classify("stable") == "stable" and classify("v2.11.2") == "tag"
    assert classify("https://x/y.yaml") == "url" and classify(str(tmp_path)) == "kustomize"
    with pytest.raises(InputError, match="neither 'stable'"):
        classify("2.11")
    with pytest.raises(InputError, match="unknown variant"):
        resolve("stable", variant="mega")
    assert sorted(["v3.5.0", "v3.5.0-rc2", "v3.10.0", "v3.5.1"], key=semver_key) == [
        "v3.5.0-rc2", "v3.5.0", "v3.5.1", "v3.10.0"]


def test_resolve_cli_json_on_the_real_v3_5_1_install(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import real_manifest

    path = real_manifest("v3.5.1/install.yaml")
    assert main(["resolve", str(path), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert out["objects"] == 59 and out["image_version"] == "v3.5.1" and out["source"] == "file"


def test_resolve_json_is_spelled_like_kubectl_and_json_still_works(capsys: pytest.CaptureFixture[str],
                                                                    tmp_path: Path) -> None:
    manifest = tmp_path / "install.yaml"
    manifest.write_bytes(MANIFEST % b"v3.5.1")
    assert main(["resolve", str(manifest), "--json"]) == 0  # the old spelling, for one release
    out, err = capsys.readouterr()
    assert json.loads(out)["image_version"] == "v3.5.1"
    assert "argocd-mirror resolve: note: --json is deprecated and will be removed in the next release; " \
           "use -o json" in err
    target = tmp_path / "resolved.json"
    assert main(["resolve", str(manifest), "-o", "json", "--output-file", str(target)]) == 0
    out, err = capsys.readouterr()
    assert out == "" and json.loads(target.read_text())["objects"] == 2 and err.startswith("resolved ")


def test_a_local_file_never_loads_the_network_edge(tmp_path: Path) -> None:
    """`preflight FILE` is the common CI call: urllib, ssl and tenacity are start-up it must not pay."""
    manifest = tmp_path / "install.yaml"
    manifest.write_bytes(MANIFEST % b"v3.5.1")
    probe = ("import sys; from validator.cli import main\n"
             "try: main(['preflight', sys.argv[1], '-o', 'json'])\n"
             "except SystemExit: pass\n"
             "edge = ('validator.upstream', 'urllib.request', 'ssl', 'tenacity')\n"
             "print(sorted(m for m in edge if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe, str(manifest)], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_nightly_newest_release_step_runs_against_upstream(upstream: Upstream) -> None:
    """nightly.yml finds the newest release with an inline script: run that very script, so a moved import
    (it once still named validator.candidate after the network edge moved out) fails here, not at 04:17 UTC."""
    import re

    import yaml

    workflow = yaml.safe_load((Path(__file__).resolve().parents[1] / ".github/workflows/nightly.yml").read_text())
    (run,) = [s["run"] for s in workflow["jobs"]["newest"]["steps"] if s.get("id") == "newest"]
    match = re.search(r"python -c '(.*?)'\)", run, re.DOTALL)
    assert match, run
    env = {**os.environ, "ARGOCD_MIRROR_GIT_URL": upstream.git_url}
    out = subprocess.run([sys.executable, "-c", match.group(1)], capture_output=True, text=True, env=env,
                         timeout=60, check=False)
    assert (out.returncode, out.stdout.strip()) == (0, "v3.5.1"), out.stderr  # v3.5.0-rc1 sorts before it

