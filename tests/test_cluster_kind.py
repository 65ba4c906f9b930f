"""The kind provider through fake kind/docker executables and the API double (real kubernetes client)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.apidouble import ApiDouble
from tests.fakes import FakeTools, fake_tools  # noqa: F401
from validator.cluster import images, mirror_cluster
from validator.cluster.kindconfig import kind_config, validate_kind_config
from validator.cluster.lifecycle import TeardownIncomplete
from validator.errors import EnvironmentNotReady, InputError
from validator.profiles import load_profile, profile_from_dict

FAST = {"ready_timeout_s": 1.0, "ready_interval_s": 0.05}


def ready_node(name: str, ready: bool = True) -> dict[str, Any]:
    cond = {"type": "Ready", "status": "True" if ready else "False",
            "reason": "KubeletReady" if ready else "KubeletNotReady",
            "message": "kubelet is posting ready status" if ready else
            "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady"}
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": {"conditions": [cond]}}


@pytest.fixture
def double() -> Any:
    with ApiDouble(simulate=False) as d:
        yield d


@pytest.fixture
def kind_env(fake_tools: FakeTools, double: ApiDouble) -> FakeTools:  # noqa: F811
    """Fake kind whose kubeconfig points at the API double, where one Ready node exists."""
    double.create(ready_node("argocd-mirror-control-plane"))
    fake_tools.api_server(double.url)
    return fake_tools


def messages() -> tuple[list[str], Any]:
    seen: list[str] = []
    return seen, seen.append


# ---------------------------------------------------------------------------------------------------------
# pure parts: config per profile, pinned images, kind version
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["default", "calico", "ha"])
def test_config_per_profile_is_valid_v1alpha4(name: str) -> None:
    profile = load_profile(name)
    config = kind_config(profile, "argocd-mirror-abcd1234")
    validate_kind_config(yaml.safe_load(yaml.safe_dump(config)))
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4" and config["kind"] == "Cluster"
    assert [n["role"] for n in config["nodes"]] == [n.role for n in profile.nodes]
    assert all("image" not in n for n in config["nodes"])  # --image pins every node by digest
    if profile.cni == "calico":
        assert config["networking"] == {"disableDefaultCNI": True, "podSubnet": "192.168.0.0/16"}
    else:
        assert "networking" not in config  # kindnet: the default CNI, which enforces NetworkPolicy


def test_runtime_config_and_feature_gates_reach_kind_as_its_own_fields() -> None:
    """kind hands runtimeConfig to kube-apiserver's --runtime-config and featureGates to every component."""
    profile = profile_from_dict({"runtimeConfig": {"resource.k8s.io/v1beta2": "true"},
                                 "featureGates": {"DynamicResourceAllocation": True}}, "p")
    config = kind_config(profile, "n")
    validate_kind_config(yaml.safe_load(yaml.safe_dump(config)))
    assert config["runtimeConfig"] == {"resource.k8s.io/v1beta2": "true"}
    assert config["featureGates"] == {"DynamicResourceAllocation": True}
    assert "runtimeConfig" not in kind_config(load_profile("default"), "n")


def test_ha_profile_has_three_workers_and_no_taint_patch_for_default_taint() -> None:
    config = kind_config(load_profile("ha"), "n")
    assert [n["role"] for n in config["nodes"]] == ["control-plane", "worker", "worker", "worker"]
    assert not any("kubeadmConfigPatches" in n for n in config["nodes"])


def test_custom_labels_and_taints_become_node_labels_and_kubeadm_patches() -> None:
    profile = profile_from_dict({"nodes": [{"role": "control-plane"}, {"role": "worker", "labels": {"pool": "infra"},
                                 "taints": [{"key": "dedicated", "value": "infra", "effect": "NoSchedule"}]}]}, "t")
    worker = kind_config(profile, "n")["nodes"][1]
    assert worker["labels"] == {"pool": "infra"}
    taints = {"taints": [{"key": "dedicated", "effect": "NoSchedule", "value": "infra"}]}
    assert [yaml.safe_load(p) for p in worker["kubeadmConfigPatches"]] == [  # whichever the node runs: init or join
        {"kind": "InitConfiguration", "nodeRegistration": taints},
        {"kind": "JoinConfiguration", "nodeRegistration": taints}]


def test_an_untainted_control_plane_beside_workers_is_untainted_on_the_mirror() -> None:
    """Preflight counts a `taints: []` control plane as schedulable; without a patch kubeadm would taint it (kind
    keeps that taint when there are workers), and the mirror would have one node fewer than the profile."""
    profile = profile_from_dict({"nodes": [{"role": "control-plane", "taints": []}, {"role": "worker"},
                                           {"role": "worker"}]}, "t")
    control_plane, *workers = kind_config(profile, "n")["nodes"]
    assert [yaml.safe_load(p) for p in control_plane["kubeadmConfigPatches"]] == [
        {"kind": "InitConfiguration", "nodeRegistration": {"taints": []}},
        {"kind": "JoinConfiguration", "nodeRegistration": {"taints": []}}]
    assert not any("kubeadmConfigPatches" in w for w in workers)  # untainted already
    single = kind_config(profile_from_dict({"nodes": [{"role": "control-plane", "taints": []}]}, "s"), "n")
    assert "kubeadmConfigPatches" not in single["nodes"][0]  # kind untaints a lone control plane itself


@pytest.mark.parametrize("bad, where", [
    ({"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [{"role": "master"}]}, "nodes.0.role"),
    ({"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [{"role": "worker", "taints": []}]},
     "nodes.0"),
    ({"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha3"}, "apiVersion"),
    ({"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "networking": {"podCIDR": "x"}}, "networking"),
    ({"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "extra": 1}, "<root>"),
])
def test_field_list_rejects_what_kind_strict_decoding_rejects(bad: dict[str, Any], where: str) -> None:
    with pytest.raises(ValueError, match=f"at {where}"):
        validate_kind_config(bad)


def test_pinned_images_are_digests_for_every_minor() -> None:
    for minor, image in images.NODE_IMAGES.items():
        repo_tag, _, digest = image.partition("@sha256:")
        assert repo_tag.startswith(f"kindest/node:v{minor}.") and len(digest) == 64
        int(digest, 16)
    assert images.node_image("1.35") == images.NODE_IMAGES["1.35"]
    with pytest.raises(InputError, match="no node image pinned for Kubernetes 1.29"):
        images.node_image("1.29")


@pytest.mark.parametrize("output, ok", [
    ("kind v0.33.0 go1.25.1 linux/amd64", True),
    ("kind v0.34.0-alpha.12+0123456789abcd go1.25.1 linux/amd64", True),
    ("0.33.0", True),
    ("kind v0.32.0 go1.24.3 linux/amd64", True),
    ("kind v0.31.0 go1.24.3 linux/amd64", False),
    ("kind v0.23.0 go1.22.2 linux/amd64", False),
    ("kind v0.17.0 go1.19.2 linux/amd64", False),
])
def test_kind_version_gate(output: str, ok: bool) -> None:
    version = images.parse_kind_version(output)
    if ok:
        images.check_kind_version(version)
    else:
        with pytest.raises(EnvironmentNotReady):
            images.check_kind_version(version)


def test_garbled_version_is_could_not_validate() -> None:
    with pytest.raises(EnvironmentNotReady, match="could not understand"):
        images.parse_kind_version("command not found")


# ---------------------------------------------------------------------------------------------------------
# lifecycle through the fakes
# ---------------------------------------------------------------------------------------------------------


def test_create_and_delete_argv(kind_env: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "someone-elses-kubeconfig"))
    run_dir = tmp_path / "run"
    seen, progress = messages()
    with mirror_cluster(load_profile("default"), run_dir, progress=progress, **FAST) as cluster:
        name = cluster.name
        assert name.startswith("argocd-mirror-") and len(name) == len("argocd-mirror-") + 8
        assert cluster.context == f"kind-{name}" and cluster.kubeconfig == run_dir / f"{name}.kubeconfig"
        assert cluster.created_by_us and cluster.managed and cluster.provider == "kind"
        nodes = cluster.api_client().call_api("GET", f"{kind_env.env['FAKE_KIND_API_SERVER']}/api/v1/nodes")
        assert nodes.status == 200
        assert name in kind_env.clusters()
    kind = [c for c in kind_env.calls("kind")]
    assert kind[0] == ["version"]
    assert kind[1] == ["create", "cluster", "--name", name, "--config", str(run_dir / "kind-config.yaml"),
                       "--image", images.NODE_IMAGES["1.35"], "--kubeconfig", str(run_dir / f"{name}.kubeconfig"),
                       "--wait", "5m"]
    assert kind[2:] == [["delete", "cluster", "--name", name, "--kubeconfig", str(run_dir / f"{name}.kubeconfig")],
                        ["get", "clusters"]]  # and verified gone
    assert name not in kind_env.clusters()
    assert all(e["kubeconfig_env"] is None for e in kind_env.entries())  # children never see KUBECONFIG
    assert not (run_dir / "kind-logs").exists()  # passed: no log export
    assert any("is ready" in m for m in seen)


def test_wait_timeout_exit_0_is_caught_by_our_readiness_check(kind_env: FakeTools, double: ApiDouble,
                                                              tmp_path: Path) -> None:
    double.set_status("Node", "argocd-mirror-control-plane", "", ready_node("x", ready=False)["status"])
    kind_env.fail("wait-timeout")
    with pytest.raises(EnvironmentNotReady) as err, \
            mirror_cluster(load_profile("default"), tmp_path, progress=lambda m: None, **FAST):
        pytest.fail("the body must not run on a cluster that never became ready")
    assert "cluster not ready after 1s: node argocd-mirror-control-plane is not Ready (KubeletNotReady" \
        in str(err.value)
    assert kind_env.calls("kind", "delete", "cluster")  # torn down
    (exported,) = (tmp_path / "kind-logs").iterdir()  # one directory per cluster: runs never mix their logs
    assert (exported / "docker-info.txt").exists()  # and diagnostics exported first


def test_missing_nodes_are_not_ready(kind_env: FakeTools, tmp_path: Path) -> None:
    with pytest.raises(EnvironmentNotReady, match="1 of 4 nodes registered"), \
            mirror_cluster(load_profile("ha"), tmp_path, progress=lambda m: None, **FAST):
        pass


def test_docker_down_is_exit_2_with_remedy_before_kind_runs(fake_tools: FakeTools, tmp_path: Path) -> None:  # noqa: F811
    fake_tools.fail("docker-down")
    with pytest.raises(EnvironmentNotReady) as err, mirror_cluster(load_profile("default"), tmp_path):
        pass
    assert str(err.value).startswith("Docker engine not reachable")
    assert "start the Docker engine" in str(err.value)
    assert err.value.exit_code == 2
    assert not fake_tools.calls("kind", "create")


@pytest.fixture
def no_engine_at_the_default_socket(fake_tools: FakeTools, monkeypatch: pytest.MonkeyPatch) -> FakeTools:  # noqa: F811
    """DOCKER_HOST unset and nothing at the SDK's default location (docker.from_env points at a closed port),
    as on a machine whose engine is reachable only through a docker CLI context."""
    import docker

    dead = "tcp://127.0.0.1:9"
    monkeypatch.delenv("DOCKER_HOST")
    monkeypatch.setattr(docker, "from_env", lambda **kw: docker.DockerClient(base_url=dead, **kw))
    return fake_tools


def test_engine_reachable_only_through_the_docker_context_is_found(no_engine_at_the_default_socket: FakeTools) -> None:
    from validator.cluster.tools import docker_ping

    tools = no_engine_at_the_default_socket
    tools.setenv("FAKE_DOCKER_CONTEXT_HOST", f"tcp://127.0.0.1:{tools.dockerd.port}")  # colima, OrbStack, Desktop
    docker_ping(timeout_s=3)
    assert tools.calls("docker", "context", "inspect") == [
        ["context", "inspect", "--format", "{{.Endpoints.docker.Host}}"]]


def test_no_engine_at_the_context_either_names_the_endpoint(no_engine_at_the_default_socket: FakeTools) -> None:
    from validator.cluster.tools import docker_ping

    no_engine_at_the_default_socket.setenv("FAKE_DOCKER_CONTEXT_HOST", "tcp://127.0.0.1:9")
    with pytest.raises(EnvironmentNotReady, match="docker context endpoint tcp://127.0.0.1:9.*start the Docker engine"):
        docker_ping(timeout_s=3)


def test_the_default_context_is_not_tried_twice(no_engine_at_the_default_socket: FakeTools) -> None:
    from validator.cluster.tools import docker_ping

    with pytest.raises(EnvironmentNotReady) as err:  # FAKE_DOCKER_CONTEXT_HOST unset: the default socket
        docker_ping(timeout_s=3)
    assert "docker context endpoint" not in str(err.value)


def test_docker_host_wins_over_contexts_as_in_the_cli(fake_tools: FakeTools) -> None:  # noqa: F811
    from validator.cluster.tools import docker_ping

    fake_tools.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    with pytest.raises(EnvironmentNotReady, match="Docker engine not reachable"):
        docker_ping(timeout_s=3)
    assert not fake_tools.calls("docker", "context")


def test_docker_down_reported_by_kind_itself_is_classified(fake_tools: FakeTools, tmp_path: Path,  # noqa: F811
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("validator.cluster.kind.docker_ping", lambda: None)  # engine vanished after our ping
    fake_tools.fail("docker-down")
    with pytest.raises(EnvironmentNotReady, match="Docker engine not reachable .*failed to get docker info"), \
            mirror_cluster(load_profile("default"), tmp_path, progress=lambda m: None):
        pass


def test_kind_missing(fake_tools: FakeTools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    with pytest.raises(EnvironmentNotReady, match=r"kind is not installed .*install kind v0\.33\.0"), \
            mirror_cluster(load_profile("default"), tmp_path / "run"):
        pass


def test_pinned_kind_binary_from_env(fake_tools: FakeTools, tmp_path: Path,  # noqa: F811
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = tmp_path / "tool-cache" / "kind"
    pinned.parent.mkdir()
    pinned.write_text("#!/bin/sh\necho 'kind v0.24.0 go1.22.5 linux/amd64'\n")
    pinned.chmod(0o755)
    monkeypatch.setenv("ARGOCD_MIRROR_KIND", str(pinned))
    with pytest.raises(EnvironmentNotReady, match="kind v0.24.0 cannot run the pinned node images"), \
            mirror_cluster(load_profile("default"), tmp_path / "run"):
        pass
    assert not fake_tools.calls("kind")  # the kind on PATH was not used
    monkeypatch.setenv("ARGOCD_MIRROR_KIND", str(tmp_path / "nope"))
    with pytest.raises(EnvironmentNotReady, match="ARGOCD_MIRROR_KIND=.*nope is not an executable file"), \
            mirror_cluster(load_profile("default"), tmp_path / "run"):
        pass


def test_old_kind_refused_before_creating(fake_tools: FakeTools, tmp_path: Path) -> None:  # noqa: F811
    fake_tools.kind_version("v0.23.0")
    with pytest.raises(EnvironmentNotReady, match="kind v0.23.0 is too old: kind enforces NetworkPolicy only from"), \
            mirror_cluster(load_profile("default"), tmp_path):
        pass
    assert fake_tools.calls("kind") == [["version"]]


def test_name_clash_is_exit_2_and_the_other_cluster_is_left_alone(fake_tools: FakeTools, tmp_path: Path) -> None:  # noqa: F811
    fake_tools.fail("create-exists")
    with pytest.raises(EnvironmentNotReady, match="already exists .*kind delete cluster --name argocd-mirror-"), \
            mirror_cluster(load_profile("default"), tmp_path, progress=lambda m: None):
        pass
    assert not fake_tools.calls("kind", "delete")
    assert not fake_tools.calls("kind", "export")


def test_create_failure_is_exit_2_and_cleaned(fake_tools: FakeTools, tmp_path: Path) -> None:  # noqa: F811
    fake_tools.fail("create-error")
    with pytest.raises(EnvironmentNotReady, match="kind failed: ERROR: failed to create cluster: failed to init"), \
            mirror_cluster(load_profile("default"), tmp_path, progress=lambda m: None):
        pass
    assert fake_tools.calls("kind", "delete", "cluster")


@pytest.mark.parametrize("cue, server, why", [
    ("", "https://10.0.0.8:6443", "must point at a loopback address"),
    ("wrong-context", None, "context 'kind-argocd-mirror-"),
])
def test_foreign_kubeconfig_refused(kind_env: FakeTools, tmp_path: Path, cue: str, server: str | None,
                                    why: str) -> None:
    if server:
        kind_env.api_server(server)
    kind_env.fail(cue)
    with pytest.raises(EnvironmentNotReady, match=why), \
            mirror_cluster(load_profile("default"), tmp_path, progress=lambda m: None, **FAST):
        pass
    assert kind_env.calls("kind", "delete", "cluster")


def test_exception_in_body_tears_down_and_exports_logs(kind_env: FakeTools, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), \
            mirror_cluster(load_profile("default"), tmp_path, progress=lambda m: None, **FAST) as cluster:
        raise RuntimeError("boom")
    assert kind_env.calls("kind", "export", "logs") == [["export", "logs", str(tmp_path / "kind-logs" / cluster.name),
                                                         "--name", cluster.name]]
    assert kind_env.calls("kind", "delete", "cluster")
    assert cluster.name not in kind_env.clusters()


def test_keep_on_failure_prints_how_to_reach_it(kind_env: FakeTools, tmp_path: Path) -> None:
    seen, progress = messages()
    with mirror_cluster(load_profile("default"), tmp_path, keep="on-failure", progress=progress, **FAST) as cluster:
        cluster.mark_failed()
    assert not kind_env.calls("kind", "delete")
    assert cluster.name in kind_env.clusters()
    text = "\n".join(seen)
    assert f"keeping cluster {cluster.name} (--keep-cluster=on-failure)" in text
    kubeconfig = tmp_path / f"{cluster.name}.kubeconfig"
    assert f"kubeconfig: {kubeconfig} (context kind-{cluster.name})" in text
    assert f"kubectl --kubeconfig {kubeconfig} --context kind-{cluster.name} get pods -A" in text
    assert (tmp_path / "kind-logs" / cluster.name / f"{cluster.name}-control-plane" / "kubelet.log").exists()


def test_keep_on_failure_deletes_on_success_and_always_keeps(kind_env: FakeTools, tmp_path: Path) -> None:
    with mirror_cluster(load_profile("default"), tmp_path / "a", keep="on-failure", progress=lambda m: None,
                        **FAST) as passed:
        pass
    with mirror_cluster(load_profile("default"), tmp_path / "b", keep="always", progress=lambda m: None,
                        **FAST) as kept:
        pass
    with mirror_cluster(load_profile("default"), tmp_path / "c", keep="never", progress=lambda m: None,
                        **FAST) as failed:
        failed.mark_failed()
    assert set(kind_env.clusters()) == {kept.name}
    assert passed.name != kept.name != failed.name
    assert (tmp_path / "c" / "kind-logs").is_dir() and not (tmp_path / "a" / "kind-logs").exists()


def test_failed_delete_after_a_pass_names_the_exact_delete_command(kind_env: FakeTools, tmp_path: Path) -> None:
    """Not `argocd-mirror sweep`: its default --older-than 2h would spare a cluster this new."""
    with pytest.raises(TeardownIncomplete) as err, \
            mirror_cluster(load_profile("default"), tmp_path, progress=lambda m: None, **FAST) as cluster:
        kind_env.fail("delete-error")
    assert f"kind delete cluster --name {cluster.name} failed: ERROR: failed to delete" in str(err.value)
    assert str(err.value).endswith(f"(delete it later with `{cluster.delete_command()}`)")
    assert "sweep" not in str(err.value)


def test_delete_is_verified(kind_env: FakeTools, tmp_path: Path) -> None:
    with pytest.raises(TeardownIncomplete, match="still exists after deletion") as err, \
            mirror_cluster(load_profile("default"), tmp_path, progress=lambda m: None, **FAST) as cluster:
        kind_env.fail("delete-noop")
    assert str(err.value).endswith(f"(delete it with `{cluster.delete_command()}`)")


@pytest.mark.parametrize("how", ["timeout", "error"])
@pytest.mark.parametrize("verdict", ["failed", "exception"])
def test_log_export_is_best_effort_and_never_skips_the_delete(kind_env: FakeTools, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, how: str,
                                                             verdict: str) -> None:
    """`kind export logs` runs on exactly the failure path; a hang or failure there must not leak the cluster."""
    import validator.cluster.kind as kind_module

    if how == "timeout":  # tools.run's own timeout path, with a deadline no child can meet
        real_run = kind_module.run
        monkeypatch.setattr(kind_module, "run", lambda argv, timeout_s: real_run(
            argv, 0.001 if argv[1:3] == ["export", "logs"] else timeout_s))
    else:
        kind_env.fail("export-error")
    seen, progress = messages()
    with pytest.raises(RuntimeError, match="boom") if verdict == "exception" else nullcontext(), \
            mirror_cluster(load_profile("default"), tmp_path, progress=progress, **FAST) as cluster:
        cluster.mark_failed()
        if verdict == "exception":
            raise RuntimeError("boom")
    assert [d[d.index("--name") + 1] for d in kind_env.calls("kind", "delete", "cluster")] == [cluster.name]
    assert cluster.name not in kind_env.clusters()
    (warning,) = [m for m in seen if m.startswith("warning: cluster logs not exported: ")]
    assert ("kind export logs` did not finish within" if how == "timeout" else "kind export logs failed: ERROR:") \
        in warning


def test_cluster_kept_after_a_failed_create_is_announced(fake_tools: FakeTools, tmp_path: Path) -> None:  # noqa: F811
    """keep=always keeps a cluster whose nodes never became Ready; mirror_cluster never yielded it, so only
    on_kept can tell the caller (reproduce) how to reach and delete it."""
    kept: list[Any] = []
    with ApiDouble(simulate=False) as double:
        double.create(ready_node("argocd-mirror-control-plane", ready=False))
        fake_tools.api_server(double.url)
        with pytest.raises(EnvironmentNotReady, match="cluster not ready"), \
                mirror_cluster(load_profile("default"), tmp_path, keep="always", progress=lambda m: None,
                               on_kept=kept.append, **FAST):
            pytest.fail("create() should have failed")
    (cluster,) = kept
    assert cluster.name in fake_tools.clusters() and not fake_tools.calls("kind", "delete")
    assert cluster.delete_command() == (f"kind delete cluster --name {cluster.name} "
                                        f"--kubeconfig {tmp_path / (cluster.name + '.kubeconfig')}")


def test_nothing_is_kept_when_kinds_failed_create_left_no_node(fake_tools: FakeTools,  # noqa: F811
                                                                tmp_path: Path) -> None:
    """A create that failed before any node existed (the node image pull) leaves nothing, --retain or not: reproduce
    must not list a cluster that is not there, with a delete line that deletes nothing."""
    fake_tools.fail("pull-error")
    kept: list[Any] = []
    lines: list[str] = []
    with pytest.raises(EnvironmentNotReady), \
            mirror_cluster(load_profile("default"), tmp_path, keep="always", progress=lines.append,
                           on_kept=kept.append, **FAST):
        pytest.fail("create() should have failed")
    assert kept == [] and fake_tools.clusters() == {}
    assert any(line.startswith("nothing to keep of cluster argocd-mirror-") for line in lines), lines


def test_on_kept_only_for_kept_clusters(kind_env: FakeTools, tmp_path: Path) -> None:
    kept: list[Any] = []
    with mirror_cluster(load_profile("default"), tmp_path / "a", keep="on-failure", progress=lambda m: None,
                        on_kept=kept.append, **FAST):
        pass
    with mirror_cluster(load_profile("default"), tmp_path / "b", keep="on-failure", progress=lambda m: None,
                        on_kept=kept.append, **FAST) as failed:
        failed.mark_failed()
    assert kept == [failed]


def test_reproduce_reports_a_cluster_kept_after_a_failed_create(fake_tools: FakeTools, tmp_path: Path,  # noqa: F811
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """It said "No cluster was created" while the cluster was left running."""
    import validator.cluster.kind as kind_module
    from tests.conftest import real_manifest
    from validator.cli import main

    candidate = real_manifest("v2.11.2/install.yaml")
    real_wait = kind_module.wait_ready
    monkeypatch.setattr(kind_module, "wait_ready", lambda api, **kw: real_wait(api, **{**kw, "timeout_s": 1}))
    with ApiDouble() as double:
        double.create(ready_node("argocd-mirror-control-plane", ready=False))
        fake_tools.api_server(double.url)
        code = main(["reproduce", str(candidate), "--scenario", "fresh-install", "--artifacts", str(tmp_path / "a")])
    out = capsys.readouterr().out
    assert code == 2
    (name,) = fake_tools.clusters()
    kubeconfig = tmp_path / "a" / "clusters" / "main" / f"{name}.kubeconfig"
    assert "The cluster is kept for you to explore" in out and "No cluster was" not in out
    assert f"  delete main: kind delete cluster --name {name} --kubeconfig {kubeconfig}\n" in out
    assert f"  cluster main: kubectl --kubeconfig {kubeconfig} --context kind-{name} get pods -A\n" in out


def test_bad_keep_and_provider_flags(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--keep-cluster must be one of"), \
            mirror_cluster(load_profile("default"), tmp_path, keep="sometimes"):
        pass
    with pytest.raises(InputError, match="only apply to --provider existing"), \
            mirror_cluster(load_profile("default"), tmp_path, kubeconfig=tmp_path / "k", context="c"):
        pass
    with pytest.raises(InputError, match="unknown cluster provider 'k3d'"), \
            mirror_cluster(load_profile("default"), tmp_path, provider="k3d"):
        pass


def test_calico_profile_skips_kind_wait_and_installs_operator(kind_env: FakeTools, tmp_path: Path) -> None:
    with mirror_cluster(load_profile("calico"), tmp_path, progress=lambda m: None, **FAST) as cluster:
        pass
    create = kind_env.calls("kind", "create")[0]
    assert "--wait" not in create
    config = yaml.safe_load((tmp_path / "kind-config.yaml").read_text())
    assert config["networking"] == {"disableDefaultCNI": True, "podSubnet": "192.168.0.0/16"}
    ours = ["--kubeconfig", str(tmp_path / f"{cluster.name}.kubeconfig"), "--context", cluster.context]
    crds, operator, resources = images.CALICO_MANIFESTS
    assert crds.endswith("/v3.31.3/manifests/operator-crds.yaml") and resources.endswith("/custom-resources.yaml")
    assert kind_env.calls("kubectl") == [  # CRDs Established before the operator and the Installation
        [*ours, "create", "-f", crds], [*ours, "wait", "--for=condition=Established", "--timeout=120s", "-f", crds],
        [*ours, "create", "-f", operator], [*ours, "create", "-f", resources]]


def test_calico_install_failure(kind_env: FakeTools, tmp_path: Path) -> None:
    kind_env.fail("kubectl-error")
    with pytest.raises(EnvironmentNotReady, match="installing Calico failed"), \
            mirror_cluster(load_profile("calico"), tmp_path, progress=lambda m: None, **FAST):
        pass
    assert kind_env.calls("kind", "delete")


def test_context_safety_ambient_kubeconfig_is_never_used(kind_env: FakeTools, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """KUBECONFIG and HOME point at a recording "production" server: zero requests may reach it."""
    from tests.fakes import RecordingServer

    with RecordingServer() as production:
        home = tmp_path / "home"
        ambient = production.kubeconfig(home / ".kube" / "config")
        monkeypatch.setenv("KUBECONFIG", str(ambient))
        monkeypatch.setenv("HOME", str(home))
        before = ambient.read_text()
        with mirror_cluster(load_profile("default"), tmp_path / "run", progress=lambda m: None, **FAST) as c:
            c.api_client().call_api("GET", f"{kind_env.env['FAKE_KIND_API_SERVER']}/api/v1/nodes")
            c.mark_failed()  # exercise the failure path too (log export)
        assert production.requests == []
        assert ambient.read_text() == before
    for argv in kind_env.calls("kind", "create") + kind_env.calls("kind", "delete"):
        assert argv[argv.index("--kubeconfig") + 1] == str(tmp_path / "run" / f"{c.name}.kubeconfig")
    assert all(e["kubeconfig_env"] is None for e in kind_env.entries())


def test_an_engine_that_answers_a_byte_at_a_time_is_not_reachable(fake_tools: FakeTools) -> None:  # noqa: F811
    """The SDK's timeout is per read: a DOCKER_HOST that drips its answer held `validate` for minutes."""
    import socket
    import threading
    import time

    from validator.cluster.tools import docker_ping

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK":
                if stop.wait(0.3):
                    return
                conn.sendall(bytes([byte]))

    threading.Thread(target=drip, daemon=True).start()
    fake_tools.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{listener.getsockname()[1]}")
    started = time.monotonic()
    try:
        with pytest.raises(EnvironmentNotReady, match=r"Docker engine not reachable \(no complete answer to /_ping "
                                                      r"within 1 s\)"):
            docker_ping(timeout_s=1)
    finally:
        stop.set()
        listener.close()
    assert time.monotonic() - started < 5  # the drip alone would take 12 s


def test_runs_sharing_a_directory_never_share_a_kubeconfig(kind_env: FakeTools, tmp_path: Path) -> None:
    """Two runs with the same --artifacts (the default), one overlapping the other: each has its own kubeconfig, a
    kept cluster's survives the later run, a deleted one's goes with it. Old: one run_dir/kubeconfig, which the
    second run's prepare() deleted under the first (`kind-<first> not in contexts`)."""
    with mirror_cluster(load_profile("default"), tmp_path, keep="always", progress=lambda m: None, **FAST) as kept:
        with mirror_cluster(load_profile("default"), tmp_path, progress=lambda m: None, **FAST) as other:
            assert other.kubeconfig != kept.kubeconfig
            assert f"kind-{kept.name}" in kept.kubeconfig.read_text()  # the overlapping run left it alone
        assert not other.kubeconfig.exists()  # deleted with its cluster
        kept.api_client().call_api("GET", f"{kind_env.env['FAKE_KIND_API_SERVER']}/api/v1/nodes")
    assert kept.kubeconfig.is_file() and f"kind-{kept.name}" in kept.kubeconfig.read_text()
    assert set(kind_env.clusters()) == {kept.name}


def test_owner_marker_is_written_at_create_and_removed_at_teardown(kind_env: FakeTools, tmp_path: Path) -> None:
    """What `sweep --orphans` reads: this process as the owner while the cluster exists, nothing once it is gone,
    and `kept` for a cluster kept on purpose (its run exits, yet it is no orphan)."""
    import json
    import os

    from validator.cluster import owner

    with mirror_cluster(load_profile("default"), tmp_path / "run", progress=lambda m: None, **FAST) as cluster:
        marker = json.loads(owner.marker_path(cluster.name).read_text())
        assert (marker["pid"], marker["host"], marker["kept"]) == (os.getpid(), owner.me()["host"], False)
        assert owner.marker_path(cluster.name).parent == Path(kind_env.env["ARGOCD_MIRROR_STATE"])
        assert owner.judge(cluster.name) == owner.Ownership(False, f"owner pid {os.getpid()} is alive")
    assert not owner.marker_path(cluster.name).exists()
    with mirror_cluster(load_profile("default"), tmp_path / "kept", keep="always", progress=lambda m: None,
                        **FAST) as kept:
        pass
    assert json.loads(owner.marker_path(kept.name).read_text())["kept"] is True


@pytest.mark.parametrize("keep, retain", [("never", False), ("on-failure", True), ("always", True)])
def test_kind_create_retains_the_nodes_of_a_failed_create_only_when_keeping(
        fake_tools: FakeTools, tmp_path: Path, keep: str, retain: bool) -> None:  # noqa: F811
    """Without --retain kind deletes the nodes of a failed create: nothing left to `kind export logs` from or keep."""
    fake_tools.fail("create-error")
    kept: list[Any] = []
    with pytest.raises(EnvironmentNotReady, match="failed to init node with kubeadm"), \
            mirror_cluster(load_profile("default"), tmp_path, keep=keep, progress=lambda m: None,
                           on_kept=kept.append, **FAST):
        pytest.fail("create() should have failed")
    (create,) = fake_tools.calls("kind", "create", "cluster")
    assert ("--retain" in create) is retain
    name = create[create.index("--name") + 1]
    if retain:  # the nodes stay: logs exported from them, the cluster kept and announced
        assert name in fake_tools.clusters() and [c.name for c in kept] == [name]
        (export,) = fake_tools.calls("kind", "export", "logs")
        assert export[2] == str(tmp_path / "kind-logs" / name)
        assert (tmp_path / "kind-logs" / name / f"{name}-control-plane" / "kubelet.log").is_file()
        assert not fake_tools.calls("kind", "delete")
    else:
        assert fake_tools.clusters() == {} and kept == []
        assert fake_tools.calls("kind", "delete", "cluster")  # and our teardown still makes sure
