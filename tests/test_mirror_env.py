"""Mirror overrides (ARGOCD_MIRROR_GIT_URL, ARGOCD_MIRROR_RAW_URL): the README's file:// example works, and setting
only one of the two says that the other is needed (issue #15)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.test_candidate import MANIFEST, Upstream, upstream  # noqa: F401  (fixture)
from validator import upstream as upstream_mod
from validator.cli import main
from validator.errors import FetchError
from validator.releases import Sources


def raw_tree(up: Upstream, root: Path) -> Path:
    """The README's layout: <root>/<commit>/manifests/<path>, as `git show` writes it from the clone."""
    for path, body in up.files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
    return root


def test_a_local_bare_clone_and_file_urls_serve_as_the_mirror(upstream: Upstream, tmp_path: Path,  # noqa: F811
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    raw = raw_tree(upstream, tmp_path / "argo-cd-raw")
    monkeypatch.setenv("ARGOCD_MIRROR_GIT_URL", upstream.git_url.removeprefix("file://"))  # a plain path works too
    monkeypatch.setenv("ARGOCD_MIRROR_RAW_URL", f"file://{raw}/{{ref}}/manifests/{{path}}")
    monkeypatch.setenv("ARGOCD_MIRROR_CACHE", str(tmp_path / "cache"))
    assert main(["resolve", "stable", "--variant", "ha"]) == 0
    out = capsys.readouterr().out
    commit = upstream.commits["v3.5.1"]
    assert "v3.5.1" in out and commit[:7] in out
    assert hashlib.sha256(MANIFEST % b"v3.5.1" + b"# ha\n").hexdigest() in out
    assert upstream.hits == []  # nothing over HTTP


def offline(url: str, *_args: object, **_kwargs: object) -> bytes:
    raise FetchError(f"could not fetch {url} after 4 attempts (offline?): [Errno 101] Network is unreachable")


def test_only_the_git_url_says_the_raw_url_is_needed_too(upstream: Upstream, tmp_path: Path,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("ARGOCD_MIRROR_GIT_URL", upstream.git_url)
    monkeypatch.delenv("ARGOCD_MIRROR_RAW_URL", raising=False)
    monkeypatch.setenv("ARGOCD_MIRROR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(upstream_mod, "http_get", offline)  # raw.githubusercontent.com behind the firewall
    assert main(["resolve", "stable"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "could not fetch https://raw.githubusercontent.com/argoproj/argo-cd/" in err
    assert "ARGOCD_MIRROR_GIT_URL is set but ARGOCD_MIRROR_RAW_URL is not" in err
    assert "file:///srv/argo-cd-raw/{ref}/manifests/{path}" in err


def test_only_the_raw_url_says_the_git_url_is_needed_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_github(sources: Sources) -> dict[str, str]:
        raise FetchError(f"could not list tags of {sources.git_url} after 4 attempts (offline?): unreachable")

    monkeypatch.setattr(upstream_mod, "ls_remote_tags", no_github)
    sources = Sources(raw_url="file:///srv/argo-cd-raw/{ref}/manifests/{path}", cache_dir=tmp_path, attempts=1)
    with pytest.raises(FetchError) as caught:
        upstream_mod.fetch_release("stable", "install", sources)
    assert "could not list tags of https://github.com/argoproj/argo-cd.git" in caught.value.one_line()
    assert "ARGOCD_MIRROR_RAW_URL is set but ARGOCD_MIRROR_GIT_URL is not" in caught.value.one_line()


@pytest.mark.parametrize("overrides", [{}, {"git_url": "/srv/argo-cd.git",
                                             "raw_url": "file:///srv/raw/{ref}/manifests/{path}"}],
                         ids=["neither", "both"])
def test_no_hint_when_neither_or_both_are_set(overrides: dict[str, str], tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def no_tags(sources: Sources) -> dict[str, str]:
        raise FetchError(f"could not list tags of {sources.git_url}: unreachable")

    monkeypatch.setattr(upstream_mod, "ls_remote_tags", no_tags)
    with pytest.raises(FetchError) as caught:
        upstream_mod.fetch_release("stable", "install", Sources(cache_dir=tmp_path, **overrides))  # type: ignore[arg-type]
    assert "ARGOCD_MIRROR" not in caught.value.one_line()
