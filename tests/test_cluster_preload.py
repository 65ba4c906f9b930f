"""Image preload through fake docker/kind: single-platform archives, a cache for digest-pinned images."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.apidouble import ApiDouble
from tests.fakes import FakeTools, fake_tools  # noqa: F401
from validator.cluster import Cluster, mirror_cluster
from validator.cluster.preload import preload_images
from validator.errors import InputError
from validator.profiles import load_profile

PINNED = "quay.io/argoproj/argocd@sha256:" + hashlib.sha256(b"x").hexdigest()


@pytest.fixture
def cluster(fake_tools: FakeTools, tmp_path: Path) -> Cluster:  # noqa: F811
    fake_tools.add_cluster("argocd-mirror-9e10ad00", age_s=1)
    return Cluster("argocd-mirror-9e10ad00", tmp_path / "kubeconfig", "kind-argocd-mirror-9e10ad00", "kind", True)


def test_pull_save_single_platform_and_load(fake_tools: FakeTools, cluster: Cluster, tmp_path: Path) -> None:  # noqa: F811
    seen: list[str] = []
    loaded = preload_images(cluster, ["busybox:1.37.0", PINNED, "busybox:1.37.0"], seen.append,
                            cache_dir=tmp_path / "cache", platform="linux/amd64")
    assert loaded == ["busybox:1.37.0", PINNED]
    assert fake_tools.calls("docker", "pull") == [["pull", "--platform", "linux/amd64", "busybox:1.37.0"],
                                                  ["pull", "--platform", "linux/amd64", PINNED]]
    saves = fake_tools.calls("docker", "save")
    assert all(s[:3] == ["save", "--platform", "linux/amd64"] for s in saves) and len(saves) == 2
    load = fake_tools.calls("kind", "load", "image-archive")
    assert len(load) == 1 and load[0][-2:] == ["--name", cluster.name] and len(load[0]) == 6


def test_second_run_reuses_cached_archive_of_pinned_image(fake_tools: FakeTools, cluster: Cluster,  # noqa: F811
                                                          tmp_path: Path) -> None:
    for _ in range(2):
        preload_images(cluster, [PINNED, "busybox:1.37.0"], lambda m: None, cache_dir=tmp_path / "c")
    saved = [s[-1] for s in fake_tools.calls("docker", "save")]
    assert saved == [PINNED, "busybox:1.37.0", "busybox:1.37.0"]  # a tag may move: re-saved; a digest cannot
    assert len(fake_tools.calls("docker", "pull")) == 2  # second run: already on the host


def test_engine_too_old_to_save_one_platform_saves_the_pulled_image(fake_tools: FakeTools,  # noqa: F811
                                                                       cluster: Cluster, tmp_path: Path) -> None:
    fake_tools.fail("old-engine")  # Docker < 28: no `docker save --platform`
    assert preload_images(cluster, ["busybox:1.37.0"], lambda m: None, cache_dir=tmp_path) == ["busybox:1.37.0"]
    assert [s[:2] for s in fake_tools.calls("docker", "save")] == [["save", "--platform"], ["save", "-o"]]
    assert len(fake_tools.calls("kind", "load", "image-archive")) == 1


def test_pull_failure_only_warns(fake_tools: FakeTools, cluster: Cluster, tmp_path: Path) -> None:  # noqa: F811
    seen: list[str] = []
    assert preload_images(cluster, ["example.com/does-not-exist:1"], seen.append, cache_dir=tmp_path) == []
    assert "pull access denied" in seen[0] and "the nodes will pull it" in seen[0]
    assert not fake_tools.calls("kind", "load")


def test_preload_behind_an_option_of_mirror_cluster(fake_tools: FakeTools, tmp_path: Path) -> None:  # noqa: F811
    with ApiDouble(simulate=False) as double:
        double.create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
                       "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        fake_tools.api_server(double.url)
        with mirror_cluster(load_profile("default"), tmp_path, progress=lambda m: None, ready_timeout_s=1,
                            ready_interval_s=0.05, preload_images=["busybox:1.37.0"],
                            image_cache=tmp_path / "cache") as c:
            assert fake_tools.calls("kind", "load", "image-archive")[0][-1] == c.name
        with mirror_cluster(load_profile("default"), tmp_path / "b", progress=lambda m: None, ready_timeout_s=1,
                            ready_interval_s=0.05):
            pass
    assert len(fake_tools.calls("kind", "load")) == 1  # off unless asked for


def test_kind_only_options_refused_for_existing(tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"preload_images": ["x"]}
    with pytest.raises(InputError, match="preload_images only apply to the kind provider"), \
            mirror_cluster(load_profile("default"), tmp_path, provider="existing", kubeconfig=tmp_path / "k",
                           context="c", **kwargs):
        pass
