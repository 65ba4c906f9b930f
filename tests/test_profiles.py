"""Profiles: shipped ones load, scheduling facts follow kind's behaviour, bad profiles are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from validator.errors import InputError
from validator.profiles import available_profiles, load_profile, profile_from_dict


def test_shipped_profiles() -> None:
    assert {"default", "ha", "calico"} <= set(available_profiles())
    default, ha, calico = load_profile("default"), load_profile("ha"), load_profile("calico")
    assert (len(default.nodes), len(default.schedulable_nodes())) == (1, 1)  # kind untaints a lone control plane
    assert (len(ha.nodes), len(ha.schedulable_nodes())) == (4, 3)  # ...but not one with workers
    assert calico.cni == "calico" and default.apply_mode == "server-side"
    assert default.kubernetes_minor == (1, 35)


def test_a_profile_name_is_the_shipped_profile_wherever_the_command_runs(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Old: a directory `ha/` (an Argo CD overlay, say) where the command ran shadowed the ha profile: 'unknown
    profile'. A bare name is a shipped profile; a path (./ha, a file of another name) is still read as a path."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ha").mkdir()
    (tmp_path / "default").write_text("not: [a, profile\n")
    assert (load_profile("ha").name, len(load_profile("ha").nodes)) == ("ha", 4)
    assert load_profile("default").name == "default"
    with pytest.raises(InputError, match="unknown profile './ha'"):
        load_profile("./ha")
    (tmp_path / "prod").write_text("name: prod\nkubernetesVersion: '1.34'\nnodes:\n- role: control-plane\n")
    assert load_profile("prod").kubernetes_version == "1.34"


def test_profile_by_path_and_allocatable_quantities(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("kubernetesVersion: '1.34'\n"
                    "nodes:\n- role: control-plane\n  allocatable: {cpu: 500m, memory: 2Gi}\n")
    profile = load_profile(str(path))
    assert profile.name == "big" and profile.kubernetes_version == "1.34"
    assert (profile.nodes[0].allocatable_cpu_millis, profile.nodes[0].allocatable_memory_bytes) == (500, 2 * 1024**3)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (["not", "a", "mapping"], "must be a YAML mapping"),
        ({"kind": "Cluster"}, "unknown field(s) kind"),
        ({"kubernetesVersion": "1.35.1"}, "kubernetesVersion must look like 1.35"),
        ({"cni": "flannel"}, "cni must be one of kindnet, calico"),
        ({"applyMode": "replace"}, "applyMode must be one of server-side, client-side"),
        ({"nodes": [{"role": "worker"}]}, "needs at least one control-plane node"),
        ({"nodes": [{"role": "boss"}]}, "role must be one of"),
        ({"nodes": "three"}, "nodes must be a list"),
        ({"nodes": [{"allocatable": {"memory": "lots"}}]}, "not a Kubernetes quantity: 'lots'"),
        ({"nodes": [{"allocatable": {"cpu": "many"}}]}, "not a Kubernetes quantity: 'many'"),
        ({"nodes": [{"allocatable": {"memory": "512K"}}]}, "not a Kubernetes quantity: '512K'"),  # k, not K
        ({"nodes": [{"taints": [{"effect": "NoSchedule"}]}]}, "malformed node"),
        ({"nodes": [{"labels": ["a"]}]}, "malformed node"),
        ({"runtimeConfig": ["resource.k8s.io/v1beta1"]}, "runtimeConfig must be a mapping"),
        ({"runtimeConfig": {"resource.k8s.io": "true"}}, "runtimeConfig key 'resource.k8s.io' is not"),
        ({"runtimeConfig": {"api/everything": "true"}}, "runtimeConfig key 'api/everything' is not"),
        ({"runtimeConfig": {"v1": "true"}}, "runtimeConfig key 'v1' is not"),  # kube-apiserver: invalid key
        ({"runtimeConfig": {"api/v1": "true"}}, "runtimeConfig key 'api/v1' is not"),  # group "api": unknown
        ({"runtimeConfig": {"apps/v1/Deployments": "true"}}, "runtimeConfig key 'apps/v1/Deployments' is not"),
        ({"runtimeConfig": {"resource.k8s.io/v1beta1": "yes please"}}, "must be true or false, not 'yes please'"),
        ({"runtimeConfig": {"resource.k8s.io/v1beta1": 1}}, "must be true or false, not 1"),
        ({"featureGates": {"DynamicResourceAllocation": "true"}}, "featureGates must map gate names"),
        ({"featureGates": {"lowercase": True}}, "featureGates must map gate names"),
        # each of these was accepted (or an internal error) before: a profile says what production is, exactly
        ({"kubernetesVersion": "1.05"}, "kubernetesVersion must look like 1.35"),
        ({5: 1, None: 2}, "unknown field(s) 5, None"),  # YAML keys need not be strings (was a TypeError)
        ({"name": {"a": 1}}, "name must be a string"),
        ({"namespace": ["argocd"]}, "namespace must be a DNS label"),
        ({"namespace": "A B/../x"}, "namespace must be a DNS label"),
        ({"nodes": [{"labels": {"zone": {"a": 1}}}]}, "labels must map names to plain values"),
        ({"nodes": [{"taints": [{"key": "k", "effect": 5}]}]}, "a taint needs a string key and an effect of"),
        ({"nodes": [{"taints": [{"key": "k", "effect": "NoScheduleTypo"}]}]}, "an effect of NoSchedule"),
        ({"nodes": [{"taints": "k=v:NoSchedule"}]}, "a taint needs a string key"),
        ({"nodes": [{"allocatable": {"cpu": "-4", "memory": "8Gi"}}]}, "allocatable cpu must not be negative"),
        ({"nodes": [{"allocatable": {"memory": "-1Gi"}}]}, "allocatable memory must not be negative"),
        ({"nodes": [{"allocatable": {"pods": -1}}]}, "allocatable pods must be a whole number >= 0"),
        ({"nodes": [{"allocatable": {"pods": float("inf")}}]}, "allocatable pods must be a whole number >= 0"),
        ({"nodes": [{"allocatable": {"memory": "1e999999"}}]}, "quantity out of range: '1e999999'"),
        ({"apiServer": {"endpoints": ["10.0.0.1:\u0664\u0664\u0663"]}}, "is not ADDRESS[/PREFIX]:PORT"),
    ],
)
def test_bad_profiles_are_input_errors(raw: object, expected: str) -> None:
    with pytest.raises(InputError) as exc:
        profile_from_dict(raw, "p")
    assert expected in exc.value.one_line()


def test_unknown_name_and_non_profile_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown profile 'nope': choose one of"):
        load_profile("nope")
    junk = tmp_path / "junk"
    junk.write_text("just text")
    with pytest.raises(InputError, match="profile junk: must be a YAML mapping"):
        load_profile(str(junk))
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [")
    with pytest.raises(InputError, match="invalid YAML"):
        load_profile(str(broken))


def test_fail_fast_thresholds_come_from_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "slow-ci.yaml"
    path.write_text("failFast: {config_error_grace_s: 180, crashloop_restarts: 5}\n")
    thresholds = load_profile(str(path)).fail_fast
    assert (thresholds.config_error_grace_s, thresholds.crashloop_restarts, thresholds.unschedulable_grace_s) == (
        180, 5, 60)
    with pytest.raises(InputError, match="failFast: unknown threshold 'patience'"):
        profile_from_dict({"failFast": {"patience": 1}}, "p")


def test_the_plugin_waits_with_the_profiles_thresholds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from validator import pytest_plugin, watch
    from validator.failfast import Thresholds

    seen: list[Thresholds] = []

    def fake_wait(api: object, bundle: object, **kwargs: object) -> object:
        seen.append(kwargs["thresholds"])  # type: ignore[arg-type]
        return SimpleNamespace(passed=True, elapsed_s=1.0)

    monkeypatch.setattr(watch, "wait_healthy", fake_wait)
    options = SimpleNamespace(wait_timeout_s=5.0)
    custom = Thresholds(config_error_grace_s=7)
    pytest_plugin.observe_healthy(None, None, None, options, lambda m: None, tmp_path, "candidate", None, custom)
    pytest_plugin.observe_healthy(None, None, None, options, lambda m: None, tmp_path, "candidate")
    assert seen == [custom, Thresholds()]


def test_runtime_config_and_feature_gates_as_production_states_them() -> None:
    profile = profile_from_dict({"runtimeConfig": {"resource.k8s.io/v1beta1": True, "api/alpha": "False", "/v1": "true",
                                                   "storage.k8s.io/v1beta1/volumeattributesclasses": "true"},
                                 "featureGates": {"DynamicResourceAllocation": True}}, "p")
    assert profile.runtime_config == {"resource.k8s.io/v1beta1": "true", "api/alpha": "false", "/v1": "true",
                                      "storage.k8s.io/v1beta1/volumeattributesclasses": "true"}
    assert profile.feature_gates == {"DynamicResourceAllocation": True}
    assert load_profile("default").runtime_config == {} and load_profile("default").feature_gates == {}


@pytest.mark.parametrize(("text", "expected"), [
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
     + "kubernetesVersion: *i\n", "alias bomb"),
    ("name: " + "[" * 100_000, "nesting"),
    ("name: " + "[" * 40 + "]" * 40, "nesting deeper than 32 levels"),
    ("name: a\n---\nname: b\n", "more than 1 YAML documents"),
    ("name: !!python/object:os.system x\n", "unsupported YAML tag"),
])
def test_hostile_profile_files_are_refused_while_parsing(tmp_path: Path, text: str, expected: str) -> None:
    """yaml.safe_load expanded a profile's alias bomb into 1.5 GB before any field was read."""
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=expected) as err:
        load_profile(str(path))
    assert str(path) in err.value.one_line() and "\n" not in err.value.one_line()


def test_a_profile_can_come_through_a_pipe() -> None:
    """`--profile <(render-profile prod)`: a pipe was refused as an unknown profile name."""
    import os

    read_end, write_end = os.pipe()
    os.write(write_end, b"name: piped\nkubernetesVersion: '1.34'\n")
    os.close(write_end)
    try:
        assert load_profile(f"/dev/fd/{read_end}").kubernetes_version == "1.34"
    finally:
        os.close(read_end)
