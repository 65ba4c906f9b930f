"""The podspec check: the API server's PodSpec validation, on real Argo CD manifests (vendored under
tests/fixtures/upstream) as released and with one edit each, and on small inline pod specs.

Expected reasons are the API server's own lines (field.ErrorList: `<path>: <Type>: <value>: <detail>`), taken from
kubernetes/kubernetes pkg/apis/core/validation/validation.go, prefixed with the owning object.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tests.conftest import real_manifest
from validator.candidate import resolve
from validator.manifests import Bundle, load_bundle
from validator.preflight import Finding, run_preflight
from validator.preflight.output import CHECK_DESCRIPTIONS
from validator.preflight.podspec import go_quote
from validator.profiles import Profile, load_profile, profile_from_dict

DEFAULT = load_profile("default")  # Kubernetes 1.35, server-side apply


def profile(version: str, **gates: bool) -> Profile:
    return profile_from_dict({"kubernetesVersion": version, "featureGates": gates}, f"k{version}")


def podspec(bundle: Bundle, prof: Profile = DEFAULT, mode: str = "server-side") -> list[Finding]:
    return run_preflight(bundle, prof, mode, only=("podspec",))


def reasons(bundle: Bundle, prof: Profile = DEFAULT, mode: str = "server-side") -> list[str]:
    return [f.reason for f in podspec(bundle, prof, mode)]


def bundle_of(text: str) -> Bundle:
    return load_bundle(text.encode())


# --- real upstream manifests, one edit each ---

REAL = ["v2.11.0/install.yaml", "v2.11.0/ha/install.yaml", "v2.11.1/install.yaml", "v2.11.1/ha/install.yaml",
        "v2.11.2/install.yaml", "v2.14.0/install.yaml", "v3.0.0-rc1/ha/install.yaml", "v3.5.1/install.yaml",
        "v3.5.1/ha/install.yaml", "v3.5.1/namespace-install.yaml", "v3.5.1/core-install.yaml"]


@functools.cache
def real(relative: str) -> Bundle:
    return resolve(str(real_manifest(relative)))


def edited(relative: str, kind: str, name: str, edit: Callable[[dict[str, Any]], None]) -> Bundle:
    """The real manifest's workloads, with EDIT applied to the pod spec of KIND NAME (which must exist)."""
    bodies = [copy.deepcopy(o.body) for o in real(relative) if o.kind in ("Deployment", "StatefulSet")]
    targets = [b for b in bodies if b["kind"] == kind and b["metadata"]["name"] == name]
    assert len(targets) == 1, f"{kind} {name} not in {relative}"
    edit(targets[0]["spec"]["template"]["spec"])
    return load_bundle(yaml.dump_all(bodies, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper)).encode())


def container(spec: dict[str, Any], name: str, section: str = "containers") -> dict[str, Any]:
    return next(c for c in spec[section] if c["name"] == name)


@pytest.mark.parametrize("relative", REAL)
@pytest.mark.parametrize("prof", [DEFAULT, load_profile("ha"), profile("1.29"), profile("1.31"), profile("1.33")],
                         ids=["default", "ha", "k1.29", "k1.31", "k1.33"])
@pytest.mark.parametrize("mode", ["server-side", "client-side"])
def test_real_argo_cd_manifests_pass_pod_spec_validation(relative: str, prof: Profile, mode: str) -> None:
    bundle = real(relative)
    assert any(o.kind in ("Deployment", "StatefulSet") for o in bundle)
    assert reasons(bundle, prof, mode) == []


REPO = ("v3.5.1/install.yaml", "Deployment", "argocd-repo-server")


def test_renamed_volume_leaves_its_mount_not_found() -> None:
    def rename(spec: dict[str, Any]) -> None:
        next(v for v in spec["volumes"] if v["name"] == "tmp")["name"] = "temp"
    found = podspec(edited(*REPO, rename))
    mount = [m["name"] for m in container(real(REPO[0]).get("Deployment", "argocd-repo-server", "argocd")
                                          .body["spec"]["template"]["spec"], "argocd-repo-server")["volumeMounts"]]
    assert [f.reason for f in found] == [
        f'Deployment argocd-repo-server: spec.template.spec.containers[0].volumeMounts[{mount.index("tmp")}].name: '
        'Not found: "tmp"']
    assert found[0].severity == "error" and found[0].objects == ("Deployment.apps/argocd/argocd-repo-server",)
    assert found[0].evidence["field"] == f"spec.template.spec.containers[0].volumeMounts[{mount.index('tmp')}].name"
    assert found[0].evidence["detail"] == 'Not found: "tmp"' and found[0].evidence["rule"] == "ValidateVolumeMounts"


def test_mount_of_a_volume_missing_from_an_init_container_is_not_found() -> None:
    def drop(spec: dict[str, Any]) -> None:
        spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "var-files"]
    assert [r for r in reasons(edited(*REPO, drop)) if "initContainers" in r] == [
        'Deployment argocd-repo-server: spec.template.spec.initContainers[0].volumeMounts[0].name: '
        'Not found: "var-files"']


def test_duplicate_volume_name() -> None:
    def dup(spec: dict[str, Any]) -> None:
        spec["volumes"].append({"name": "tmp", "emptyDir": {}})
    found = podspec(edited(*REPO, dup))
    assert [f.reason for f in found] == [
        'Deployment argocd-repo-server: spec.template.spec.volumes[11].name: Duplicate value: "tmp"']
    assert found[0].evidence["server_side_apply"].endswith(
        '.spec.template.spec.volumes: duplicate entries for key [name="tmp"]')


def test_volume_with_two_sources_is_refused_and_so_are_its_mounts() -> None:
    """validateVolumeSource reports the second source; ValidateVolumes then leaves the volume out, so every mount
    of it is Not found too (both lines are in the API server's answer)."""
    def two(spec: dict[str, Any]) -> None:
        next(v for v in spec["volumes"] if v["name"] == "tmp")["configMap"] = {"name": "x"}
    assert reasons(edited(*REPO, two)) == [
        "Deployment argocd-repo-server: spec.template.spec.volumes[4].configMap: Forbidden: may not specify more "
        "than 1 volume type",
        'Deployment argocd-repo-server: spec.template.spec.containers[0].volumeMounts[6].name: Not found: "tmp"']


def test_volume_without_a_source_is_an_empty_dir_not_an_error() -> None:
    """SetDefaults_Volume makes a sourceless volume an emptyDir before validation: "must specify a volume type"
    cannot happen through the v1 API."""
    def bare(spec: dict[str, Any]) -> None:
        spec["volumes"] = [{"name": v["name"]} if v["name"] == "tmp" else v for v in spec["volumes"]]
    assert reasons(edited(*REPO, bare)) == []


def test_volume_name_must_be_a_dns_label() -> None:
    def upper(spec: dict[str, Any]) -> None:
        next(v for v in spec["volumes"] if v["name"] == "tmp")["name"] = "Tmp"
        container(spec, "argocd-repo-server")["volumeMounts"][6]["name"] = "Tmp"
    assert reasons(edited(*REPO, upper)) == [
        'Deployment argocd-repo-server: spec.template.spec.volumes[4].name: Invalid value: "Tmp": a lowercase RFC '
        "1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an "
        "alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        'Deployment argocd-repo-server: spec.template.spec.containers[0].volumeMounts[6].name: Not found: "Tmp"']


def test_duplicate_mount_path_in_one_container() -> None:
    def same(spec: dict[str, Any]) -> None:
        container(spec, "argocd-repo-server")["volumeMounts"][7]["mountPath"] = "/tmp"
    found = podspec(edited(*REPO, same))
    assert [f.reason for f in found] == [
        'Deployment argocd-repo-server: spec.template.spec.containers[0].volumeMounts[7].mountPath: Invalid value: '
        '"/tmp": must be unique']
    assert found[0].evidence["server_side_apply"].endswith(
        '.spec.template.spec.containers[name="argocd-repo-server"].volumeMounts: duplicate entries for key '
        '[mountPath="/tmp"]')


def test_same_mount_path_in_two_containers_is_fine() -> None:
    def shared(spec: dict[str, Any]) -> None:
        container(spec, "copyutil", "initContainers")["volumeMounts"][0]["mountPath"] = "/tmp"
    assert reasons(edited(*REPO, shared)) == []


DEX = ("v3.5.1/install.yaml", "Deployment", "argocd-dex-server")


def test_init_container_named_like_a_container_is_a_duplicate() -> None:
    def clash(spec: dict[str, Any]) -> None:
        spec["initContainers"][0]["name"] = "dex"
    found = podspec(edited(*DEX, clash))
    assert [f.reason for f in found] == [
        'Deployment argocd-dex-server: spec.template.spec.initContainers[0].name: Duplicate value: "dex"']
    assert "server_side_apply" not in found[0].evidence  # two lists, two key spaces for server-side apply


REDIS_HA = ("v3.5.1/ha/install.yaml", "StatefulSet", "argocd-redis-ha-server")
HAPROXY = ("v3.5.1/ha/install.yaml", "Deployment", "argocd-redis-ha-haproxy")


def test_duplicate_container_name_in_a_statefulset() -> None:
    def clash(spec: dict[str, Any]) -> None:
        container(spec, "split-brain-fix")["name"] = "sentinel"
    found = podspec(edited(*REDIS_HA, clash))
    assert [f.reason for f in found] == [
        'StatefulSet argocd-redis-ha-server: spec.template.spec.containers[2].name: Duplicate value: "sentinel"']
    assert found[0].objects == ("StatefulSet.apps/argocd/argocd-redis-ha-server",)
    # server-side apply (the default) refuses the repeated list key first, in its own words
    assert found[0].evidence["server_side_apply"] == (
        "refused before validation: failed to create typed patch object: .spec.template.spec.containers: duplicate "
        'entries for key [name="sentinel"]')
    assert "server_side_apply" not in podspec(edited(*REDIS_HA, clash), mode="client-side")[0].evidence


def test_container_name_must_be_a_dns_label() -> None:
    def dotted(spec: dict[str, Any]) -> None:
        spec["containers"][0]["name"] = "dex.server"
    assert reasons(edited(*DEX, dotted)) == [
        'Deployment argocd-dex-server: spec.template.spec.containers[0].name: Invalid value: "dex.server": '
        "must not contain dots"]


def test_port_names_unique_per_container_and_well_formed() -> None:
    def names(spec: dict[str, Any]) -> None:
        ports = spec["containers"][0]["ports"]
        ports[0]["name"], ports[1]["name"], ports[2]["name"] = "http", "http", "Metrics"
    assert reasons(edited(*DEX, names)) == [
        'Deployment argocd-dex-server: spec.template.spec.containers[0].ports[1].name: Duplicate value: "http"',
        'Deployment argocd-dex-server: spec.template.spec.containers[0].ports[2].name: Invalid value: "Metrics": '
        "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]


def test_same_port_name_in_two_containers_is_fine() -> None:
    """validateContainerPorts checks names per container (a Service targets the name in any container)."""
    def both(spec: dict[str, Any]) -> None:
        spec["containers"][0]["ports"][0]["name"] = "http"
        spec["initContainers"][0]["ports"] = [{"name": "http", "containerPort": 9999}]
    assert reasons(edited(*DEX, both)) == []


def test_container_port_range_and_protocol() -> None:
    def bad(spec: dict[str, Any]) -> None:
        ports = spec["containers"][0]["ports"]
        ports[0]["containerPort"], ports[1]["protocol"], ports[2]["containerPort"] = 70000, "tcp", 0
    assert reasons(edited(*DEX, bad)) == [
        "Deployment argocd-dex-server: spec.template.spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
        "must be between 1 and 65535, inclusive",
        'Deployment argocd-dex-server: spec.template.spec.containers[0].ports[1].protocol: Unsupported value: "tcp": '
        'supported values: "SCTP", "TCP", "UDP"',
        "Deployment argocd-dex-server: spec.template.spec.containers[0].ports[2].containerPort: Required value"]


def test_duplicate_port_key_fails_server_side_apply_only() -> None:
    """Validation only warns about a repeated containerPort; server-side apply cannot build its typed object
    (kubernetes/kubernetes#113482), with the key field protocol defaulted to TCP."""
    def repeat(spec: dict[str, Any]) -> None:
        spec["containers"][0]["ports"][1]["containerPort"] = 5556
    bundle = edited(*DEX, repeat)
    found = podspec(bundle)
    assert [f.reason for f in found] == [
        'Deployment argocd-dex-server: failed to create typed patch object: .spec.template.spec.containers'
        '[name="dex"].ports: duplicate entries for key [containerPort=5556,protocol="TCP"]']
    assert found[0].evidence["apply_mode"] == "server-side"
    assert reasons(bundle, mode="client-side") == []


SERVER = ("v3.5.1/install.yaml", "Deployment", "argocd-server")


def _env_index(spec: dict[str, Any], name: str) -> int:
    return [e["name"] for e in container(spec, "argocd-server")["env"]].index(name)


def _server_env(edit: Callable[[dict[str, Any]], None]) -> tuple[Bundle, int]:
    """argocd-server with EDIT applied to its first env var taken from a ConfigMap, and that var's index."""
    found: list[int] = []

    def apply(spec: dict[str, Any]) -> None:
        env = container(spec, "argocd-server")["env"]
        index = next(i for i, e in enumerate(env) if "configMapKeyRef" in e.get("valueFrom", {}))
        edit(env[index])
        found.append(index)
    return edited(*SERVER, apply), found[0]


def test_env_value_and_value_from_together() -> None:
    bundle, index = _server_env(lambda var: var.update(value="x"))
    assert reasons(bundle) == [
        f'Deployment argocd-server: spec.template.spec.containers[0].env[{index}].valueFrom: Invalid value: "": '
        "may not be specified when `value` is not empty"]


def test_env_value_from_two_sources() -> None:
    bundle, index = _server_env(lambda var: var["valueFrom"].update(secretKeyRef={"name": "s", "key": "k"}))
    assert reasons(bundle) == [
        f'Deployment argocd-server: spec.template.spec.containers[0].env[{index}].valueFrom: Invalid value: "": '
        "may not have more than one field specified at a time"]


def test_env_value_from_no_source() -> None:
    bundle, index = _server_env(lambda var: var.update(valueFrom={}))
    assert reasons(bundle, profile("1.33")) == [
        f'Deployment argocd-server: spec.template.spec.containers[0].env[{index}].valueFrom: Invalid value: "": '
        "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"]
    # 1.34 added a fifth source (fileKeyRef) and the message may name it: not claimed there
    assert reasons(bundle, DEFAULT) == []


def test_env_key_ref_without_name_or_with_a_bad_key() -> None:
    def bad(var: dict[str, Any]) -> None:
        ref = var["valueFrom"]["configMapKeyRef"]
        del ref["name"]
        ref["key"] = "a/b"
    bundle, index = _server_env(bad)
    where = f"spec.template.spec.containers[0].env[{index}].valueFrom.configMapKeyRef"
    assert reasons(bundle) == [
        f'Deployment argocd-server: {where}.name: Invalid value: "": a lowercase RFC 1123 subdomain must consist of '
        "lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
        "(e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
        "[a-z0-9])?)*')",
        f'Deployment argocd-server: {where}.key: Invalid value: "a/b": a valid config key must consist of '
        "alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for "
        "validation is '[-._a-zA-Z0-9]+')"]


def test_duplicate_env_name_fails_server_side_apply_only() -> None:
    def repeat(spec: dict[str, Any]) -> None:
        env = container(spec, "argocd-server")["env"]
        env.append(copy.deepcopy(env[0]))
    bundle = edited(*SERVER, repeat)
    name = next(o for o in bundle if o.name == "argocd-server" and o.kind == "Deployment") \
        .body["spec"]["template"]["spec"]["containers"][0]["env"][0]["name"]
    assert reasons(bundle) == [
        'Deployment argocd-server: failed to create typed patch object: .spec.template.spec.containers'
        f'[name="argocd-server"].env: duplicate entries for key [name="{name}"]']
    assert reasons(bundle, mode="client-side") == []


STRICT_ENV = ("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', or '.', "
              "and must not start with a digit (e.g. 'my.env-name',  or 'MY_ENV.NAME',  or 'MyEnvName1', regex used "
              "for validation is '[-._a-zA-Z][-._a-zA-Z0-9]*')")


@pytest.mark.parametrize(("prof", "refused"), [
    (profile("1.29"), True), (profile("1.31"), True),
    (profile("1.31", RelaxedEnvironmentVariableValidation=True), False), (profile("1.32"), False),
    (profile("1.33", RelaxedEnvironmentVariableValidation=False), True),
    (profile("1.34", RelaxedEnvironmentVariableValidation=False), False), (DEFAULT, False)])
def test_env_name_with_a_space_depends_on_relaxed_validation(prof: Profile, refused: bool) -> None:
    """RelaxedEnvironmentVariableValidation: alpha 1.30, on by default 1.32, locked on (GA) 1.34."""
    bundle, index = _server_env(lambda var: var.update(name="MY VAR"))
    expected = [f'Deployment argocd-server: spec.template.spec.containers[0].env[{index}].name: Invalid value: '
                f'"MY VAR": {STRICT_ENV}']
    found = podspec(bundle, prof)
    assert [f.reason for f in found] == (expected if refused else [])
    assert all(f.severity == "error" and f.evidence["env_name_rule"] == "strict" for f in found)


@pytest.mark.parametrize("prof", [profile("1.29"), DEFAULT])
def test_env_name_with_equals_is_refused_by_every_version(prof: Profile) -> None:
    bundle, index = _server_env(lambda var: var.update(name="A=B"))
    detail = STRICT_ENV if prof.kubernetes_minor < (1, 30) else (
        "a valid environment variable name must consist only of printable ASCII characters other than '='")
    assert reasons(bundle, prof) == [
        f'Deployment argocd-server: spec.template.spec.containers[0].env[{index}].name: Invalid value: "A=B": '
        f"{detail}"]


def test_env_from_prefix_follows_the_env_name_rule() -> None:
    def prefix(spec: dict[str, Any]) -> None:
        container(spec, "argocd-server")["envFrom"] = [{"prefix": "1X_", "configMapRef": {"name": "c"}}]
    assert reasons(edited(*SERVER, prefix), profile("1.29")) == [
        'Deployment argocd-server: spec.template.spec.containers[0].envFrom[0].prefix: Invalid value: "1X_": '
        f"{STRICT_ENV}"]
    assert reasons(edited(*SERVER, prefix)) == []


def test_env_from_exactly_one_source() -> None:
    def both(spec: dict[str, Any]) -> None:
        container(spec, "argocd-server")["envFrom"] = [{"configMapRef": {"name": "c"}, "secretRef": {"name": "s"}},
                                                       {"prefix": "P_"}]
    assert reasons(edited(*SERVER, both)) == [
        'Deployment argocd-server: spec.template.spec.containers[0].envFrom: Invalid value: "": may not have more '
        "than one field specified at a time",
        'Deployment argocd-server: spec.template.spec.containers[0].envFrom: Invalid value: "": must specify one of: '
        "`configMapRef` or `secretRef`"]


def test_probe_with_two_handlers() -> None:
    def two(spec: dict[str, Any]) -> None:
        container(spec, "haproxy")["livenessProbe"]["exec"] = {"command": ["true"]}
    assert reasons(edited(*HAPROXY, two)) == [
        "Deployment argocd-redis-ha-haproxy: spec.template.spec.containers[0].livenessProbe.httpGet: Forbidden: may "
        "not specify more than 1 handler type"]


def test_probe_and_hook_without_handler() -> None:
    def none(spec: dict[str, Any]) -> None:
        del container(spec, "haproxy")["readinessProbe"]["httpGet"]
        container(spec, "haproxy")["lifecycle"] = {"preStop": {}}
    assert reasons(edited(*HAPROXY, none)) == [
        "Deployment argocd-redis-ha-haproxy: spec.template.spec.containers[0].lifecycle.preStop: Required value: "
        "must specify a handler type",
        "Deployment argocd-redis-ha-haproxy: spec.template.spec.containers[0].readinessProbe: Required value: must "
        "specify a handler type"]


def test_probe_port_quoted_number_is_a_port_name() -> None:
    def quoted(spec: dict[str, Any]) -> None:
        container(spec, "haproxy")["livenessProbe"]["httpGet"]["port"] = "8888"
    assert reasons(edited(*HAPROXY, quoted)) == [
        "Deployment argocd-redis-ha-haproxy: spec.template.spec.containers[0].livenessProbe.httpGet.port: Invalid "
        'value: "8888": must contain at least one letter (a-z)']


def test_probe_scheme_and_exec_command() -> None:
    def bad(spec: dict[str, Any]) -> None:
        container(spec, "haproxy")["livenessProbe"]["httpGet"]["scheme"] = "http"
        container(spec, "haproxy")["readinessProbe"] = {"exec": {}}
    assert reasons(edited(*HAPROXY, bad)) == [
        "Deployment argocd-redis-ha-haproxy: spec.template.spec.containers[0].livenessProbe.httpGet.scheme: "
        'Unsupported value: "http": supported values: "HTTP", "HTTPS"',
        "Deployment argocd-redis-ha-haproxy: spec.template.spec.containers[0].readinessProbe.exec.command: "
        "Required value"]


def test_liveness_success_threshold_must_be_one_readiness_may_be_more() -> None:
    """The real sentinel container already has readinessProbe.successThreshold 3 (zero findings above)."""
    def three(spec: dict[str, Any]) -> None:
        container(spec, "sentinel")["livenessProbe"]["successThreshold"] = 3
        container(spec, "sentinel")["startupProbe"]["periodSeconds"] = -1
    assert reasons(edited(*REDIS_HA, three)) == [
        "StatefulSet argocd-redis-ha-server: spec.template.spec.containers[1].livenessProbe.successThreshold: Invalid "
        "value: 3: must be 1",
        "StatefulSet argocd-redis-ha-server: spec.template.spec.containers[1].startupProbe.periodSeconds: Invalid "
        "value: -1: must be greater than or equal to 0"]


def test_probes_on_an_init_container_need_restart_policy_always() -> None:
    probe = {"exec": {"command": ["true"]}}

    def init(spec: dict[str, Any]) -> None:
        spec["initContainers"][0]["readinessProbe"] = copy.deepcopy(probe)

    def sidecar(spec: dict[str, Any]) -> None:
        spec["initContainers"][0].update(readinessProbe=copy.deepcopy(probe), restartPolicy="Always")
    assert reasons(edited(*REDIS_HA, init)) == [
        "StatefulSet argocd-redis-ha-server: spec.template.spec.initContainers[0].readinessProbe: Forbidden: may not "
        "be set for init containers without restartPolicy=Always"]
    assert reasons(edited(*REDIS_HA, sidecar)) == []


SIDECAR = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: nginx}]
      initContainers:
      - name: proxy
        image: envoy
        restartPolicy: Always
        livenessProbe: {tcpSocket: {port: 9901}, successThreshold: 2}
"""


def test_sidecar_probes_are_validated_like_a_containers_where_sidecars_exist() -> None:
    """SidecarContainers: on by default from 1.29. Where it is off the field is dropped and the probe is forbidden
    instead (not claimed: the outcome then depends on strict field validation)."""
    expected = ["Deployment web: spec.template.spec.initContainers[0].livenessProbe.successThreshold: Invalid value: "
                "2: must be 1"]
    assert reasons(bundle_of(SIDECAR)) == expected
    assert reasons(bundle_of(SIDECAR), profile("1.28", SidecarContainers=True)) == expected
    assert reasons(bundle_of(SIDECAR), profile("1.28")) == []


# --- small inline pod specs: no ../shared needed ---

CRONJOB = """
apiVersion: batch/v1
kind: CronJob
metadata: {name: cleanup}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          volumes: [{name: work, emptyDir: {}}]
          containers:
          - name: cleanup
            image: busybox:1.36
            volumeMounts: [{name: %s, mountPath: /work}]
"""


def test_cronjob_paths_go_through_the_job_template() -> None:
    found = podspec(bundle_of(CRONJOB % "scratch"))
    assert [f.reason for f in found] == [
        "CronJob cleanup: spec.jobTemplate.spec.template.spec.containers[0].volumeMounts[0].name: Not found: "
        '"scratch"']
    assert found[0].objects == ("CronJob.batch/argocd/cleanup",)
    assert reasons(bundle_of(CRONJOB % "work")) == []


POD = """
apiVersion: v1
kind: Pod
metadata: {name: debug}
spec:
  containers:
  - name: main
    image: busybox:1.36
    volumeDevices: [{name: disk, devicePath: /dev/xvda}]
  initContainers:
  - name: main
    image: busybox:1.36
  volumes: [{name: disk, emptyDir: {}}]
"""


def test_pod_paths_start_at_spec() -> None:
    assert reasons(bundle_of(POD)) == [
        'Pod debug: spec.containers[0].volumeDevices[0].name: Invalid value: "disk": can only use volume source type '
        "of PersistentVolumeClaim or Ephemeral for block mode",
        'Pod debug: spec.initContainers[0].name: Duplicate value: "main"']


def test_volume_device_of_an_undeclared_volume() -> None:
    text = POD.replace("volumes: [{name: disk, emptyDir: {}}]", "volumes: [{name: data, emptyDir: {}}]")
    text = text.replace("  initContainers:\n  - name: main", "  initContainers:\n  - name: init")
    assert reasons(bundle_of(text)) == ['Pod debug: spec.containers[0].volumeDevices[0].name: Not found: "disk"']


def test_ephemeral_containers_are_refused_in_templates_and_on_create() -> None:
    pod = bundle_of("""
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: a, image: busybox}]
  ephemeralContainers: [{name: a, image: busybox}]
""")
    assert reasons(pod) == ["Pod p: spec.ephemeralContainers: Forbidden: cannot be set on create",
                            'Pod p: spec.ephemeralContainers[0].name: Duplicate value: "a"']
    job = bundle_of("""
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: a, image: busybox}]
      ephemeralContainers: [{name: b, image: busybox}]
""")
    assert reasons(job) == [
        "Job j: spec.template.spec.ephemeralContainers: Forbidden: ephemeral containers not allowed in pod template"]


HOST = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: %s
      containers:
      - name: a
        image: busybox
        ports: [{containerPort: 8080, hostPort: 9090}]
      - name: b
        image: busybox
        ports: [{containerPort: 9091, hostPort: 9090, protocol: TCP}, {containerPort: 9092, hostPort: 9090,
                 protocol: UDP}]
"""


def test_host_ports_unique_per_pod_and_equal_to_container_port_on_the_host_network() -> None:
    assert reasons(bundle_of(HOST % "false")) == [
        'DaemonSet agent: spec.template.spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//9090"']
    assert reasons(bundle_of(HOST % "true")) == [
        'DaemonSet agent: spec.template.spec.containers[1].ports[0].hostPort: Duplicate value: "TCP//9090"',
        "DaemonSet agent: spec.template.spec.containers[0].ports[0].hostPort: Invalid value: 9090: must match "
        "`containerPort` when `hostNetwork` is true",
        "DaemonSet agent: spec.template.spec.containers[1].ports[0].hostPort: Invalid value: 9090: must match "
        "`containerPort` when `hostNetwork` is true",
        "DaemonSet agent: spec.template.spec.containers[1].ports[1].hostPort: Invalid value: 9090: must match "
        "`containerPort` when `hostNetwork` is true"]


SLEEP = """
apiVersion: v1
kind: Pod
metadata: {name: s}
spec:
  containers:
  - name: a
    image: busybox
    lifecycle: {preStop: {sleep: {seconds: 5}}}
"""


def test_sleep_hook_is_a_handler_where_the_gate_is_on() -> None:
    assert reasons(bundle_of(SLEEP)) == []
    assert reasons(bundle_of(SLEEP.replace("{sleep: {seconds: 5}}", "{sleep: {seconds: 5}, exec: {command: [x]}}"))) \
        == ["Pod s: spec.containers[0].lifecycle.preStop.sleep: Forbidden: may not specify more than 1 handler type"]
    # with PodLifecycleSleepAction off the field is dropped before validation: what remains decides, not claimed
    assert reasons(bundle_of(SLEEP), profile("1.29")) == []
    both = SLEEP.replace("{sleep: {seconds: 5}}", "{sleep: {seconds: 5}, exec: {command: [x]}}")
    assert reasons(bundle_of(both), profile("1.29")) == []
    assert reasons(bundle_of(both), profile("1.29", PodLifecycleSleepAction=True)) != []


def test_missing_image_and_bad_pull_policy() -> None:
    text = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: a, imagePullPolicy: always}]
"""
    assert reasons(bundle_of(text)) == [
        "Pod p: spec.containers[0].image: Required value",
        'Pod p: spec.containers[0].imagePullPolicy: Unsupported value: "always": supported values: "Always", '
        '"IfNotPresent", "Never"']


def test_names_are_quoted_as_go_does_and_bounded() -> None:
    text = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: a, image: busybox, volumeMounts: [{name: "x\\"y\\e[2J\\u00e9", mountPath: /m}]}]
"""
    assert reasons(bundle_of(text)) == [
        'Pod p: spec.containers[0].volumeMounts[0].name: Not found: "x\\"y\\x1b[2J\u00e9"']
    long = "n" * 5000
    assert go_quote(long) == '"' + "n" * 200 + '"... (5000 characters)'
    assert go_quote("tab\there\u2028") == '"tab\\there\\u2028"'


MALFORMED = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: odd}
spec:
  selector: {matchLabels: {app: odd}}
  template:
    metadata: {labels: {app: odd}}
    spec:
      volumes: oops
      initContainers: {name: x}
      containers:
      - just-a-string
      - name: 7
        image: busybox
        ports: [1, {containerPort: "80"}, {name: 5}]
        env: {A: b}
        envFrom: [{configMapRef: x}]
        volumeMounts: [{name: [a], mountPath: 3}]
        livenessProbe: {httpGet: yes}
        readinessProbe: text
        lifecycle: {preStop: [exec]}
      - name: c
        image: busybox
        env: [{name: A, valueFrom: {secretKeyRef: str}}, {name: B, valueFrom: {fileKeyRef: {path: p, key: k,
               volumeName: v}}}]
        readinessProbe: {httpGet: {port: 80}, exec: oops}
        livenessProbe: {httpget: {port: 80}}
        envFrom: [{configMapKeyRef: {name: typo}}]
"""


def test_malformed_shapes_are_left_to_the_schema_check() -> None:
    bundle = bundle_of(MALFORMED)
    assert reasons(bundle) == []
    everything = run_preflight(bundle, DEFAULT)  # no check crashed on it ("could not evaluate")
    assert not [f for f in everything if f.check == "podspec"]
    assert any(f.check == "schema" and f.severity == "error" for f in everything)


def test_registered_and_described() -> None:
    assert "podspec" in CHECK_DESCRIPTIONS
    assert {f.check for f in podspec(bundle_of(CRONJOB % "scratch"))} == {"podspec"}


@pytest.mark.parametrize("mode", ["server-side", "client-side"])
def test_the_real_v3313_repo_server_mounts_a_volume_it_does_not_declare(mode: str) -> None:
    """Caught on a real release: cherry-pick #28865 mounted argocd-cmd-params-cm into argocd-repo-server without
    the volume (#29032 added it in v3.3.14): the API server refuses the Deployment, so v3.3.13 does not install."""
    found = podspec(real("v3.3.13/install.yaml"), mode=mode)
    assert [f.reason for f in found] == [
        "Deployment argocd-repo-server: spec.template.spec.containers[0].volumeMounts[8].name: Not found: "
        '"argocd-cmd-params-cm"']
    assert (found[0].severity, found[0].objects) == ("error", ("Deployment.apps/argocd/argocd-repo-server",))


def test_v3313_rebuilt_from_v351_repo_server_mount_without_its_volume_is_an_error() -> None:
    """Argo CD v3.3.13 (every variant): cherry-pick #28865 mounted argocd-cmd-params-cm into argocd-repo-server
    without the volume (#29032 added it in v3.3.14), so the API server refuses the Deployment. Rebuilt from
    v3.5.1 by dropping that volume."""
    def drop(spec: dict[str, Any]) -> None:
        spec["volumes"] = [v for v in spec["volumes"] if v["name"] != "argocd-cmd-params-cm"]
    mounts = [m["name"] for m in container(real(REPO[0]).get("Deployment", "argocd-repo-server", "argocd")
                                           .body["spec"]["template"]["spec"], "argocd-repo-server")["volumeMounts"]]
    assert reasons(edited(*REPO, drop)) == [
        f"Deployment argocd-repo-server: spec.template.spec.containers[0].volumeMounts"
        f'[{mounts.index("argocd-cmd-params-cm")}].name: Not found: "argocd-cmd-params-cm"']


SINK = """
apiVersion: v1
kind: Pod
metadata: {name: sink}
spec:
  volumes: [{name: data, persistentVolumeClaim: {claimName: c}}, {name: conf, configMap: {name: c}}]
  containers:
  - name: a
    image: busybox
    terminationMessagePolicy: Always
    ports: [{containerPort: 80, hostPort: 70000}]
    env: [{name: "", value: x}]
    envFrom: [{prefix: P_}, {prefix: Q_}]
    volumeMounts:
    - {name: conf, mountPath: /etc/conf, subPath: /abs}
    - {name: conf, mountPath: /etc/b, subPath: a/../b, subPathExpr: $(POD)}
    - {name: data, mountPath: /dev/xvda}
    volumeDevices: [{name: data, devicePath: /dev/xvda}, {name: data2, devicePath: /dev/../x}]
    livenessProbe: {grpc: {port: 0}, terminationGracePeriodSeconds: 0}
    readinessProbe: {httpGet: {port: http, httpHeaders: [{name: "X Bad", value: v}]}, terminationGracePeriodSeconds: 9}
"""


def test_the_rest_of_validate_container_common_and_validate_probe() -> None:
    """One line per rule, in validateContainerCommon's order; two identical lines are printed once (ToAggregate);
    subPath problems are reported under volumeMounts.subPath, without the index, as the API server does."""
    c = "Pod sink: spec.containers[0]"
    assert reasons(bundle_of(SINK)) == [
        f'{c}.terminationMessagePolicy: Unsupported value: "Always": supported values: "File", '
        '"FallbackToLogsOnError"',
        f"{c}.ports[0].hostPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        f"{c}.env[0].name: Required value",
        f'{c}.envFrom: Invalid value: "": must specify one of: `configMapRef` or `secretRef`',
        f'{c}.volumeMounts.subPath: Invalid value: "/abs": must be a relative path',
        f"{c}.volumeMounts.subPath: Invalid value: \"a/../b\": must not contain '..'",
        f'{c}.volumeMounts[1].subPathExpr: Invalid value: "$(POD)": subPathExpr and subPath are mutually exclusive',
        f'{c}.volumeMounts[2].name: Invalid value: "data": must not already exist in volumeDevices',
        f'{c}.volumeMounts[2].mountPath: Invalid value: "/dev/xvda": must not already exist as a path in '
        "volumeDevices",
        f'{c}.volumeDevices[0].name: Invalid value: "data": must not already exist in volumeMounts',
        f'{c}.volumeDevices[0].devicePath: Invalid value: "/dev/xvda": must not already exist as a path in '
        "volumeMounts",
        f'{c}.volumeDevices[1].name: Not found: "data2"',
        f"{c}.volumeDevices[1].devicePath: Invalid value: \"/dev/../x\": can not contain backsteps ('..')",
        f"{c}.livenessProbe.grpc.port: Invalid value: 0: must be between 1 and 65535, inclusive",
        f"{c}.livenessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0",
        f'{c}.readinessProbe.httpGet.httpHeaders: Invalid value: "X Bad": a valid HTTP header must consist of '
        "alphanumeric characters or '-' (e.g. 'X-Header-Name', regex used for validation is '[-A-Za-z0-9]+')",
        f"{c}.readinessProbe.terminationGracePeriodSeconds: Invalid value: 9: must not be set for readinessProbes"]


BLOCK = """
apiVersion: v1
kind: Pod
metadata: {name: blk}
spec:
  volumes:
  - {name: a, persistentVolumeClaim: {claimName: a}}
  - name: b
    ephemeral: {volumeClaimTemplate: {spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}}}
  containers:
  - name: c
    image: busybox
    volumeDevices: [{name: a, devicePath: /dev/a}, {name: b, devicePath: /dev/a}, {name: a, devicePath: ""}]
"""


def test_volume_devices_unique_by_name_and_path_and_backed_by_a_claim() -> None:
    """A generic ephemeral volume is a claim too (isMatchedDevice)."""
    assert reasons(bundle_of(BLOCK)) == [
        'Pod blk: spec.containers[0].volumeDevices[1].devicePath: Invalid value: "/dev/a": must be unique',
        'Pod blk: spec.containers[0].volumeDevices[2].name: Invalid value: "a": must be unique',
        "Pod blk: spec.containers[0].volumeDevices[2].devicePath: Required value"]


def test_mount_without_name_or_path() -> None:
    text = """
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: a, image: busybox, volumeMounts: [{name: "", mountPath: ""}]}]
"""
    assert reasons(bundle_of(text)) == [
        "Pod p: spec.containers[0].volumeMounts[0].name: Required value",
        'Pod p: spec.containers[0].volumeMounts[0].name: Not found: ""',
        "Pod p: spec.containers[0].volumeMounts[0].mountPath: Required value"]


def test_a_pod_needs_a_container() -> None:
    text = """
apiVersion: batch/v1
kind: Job
metadata: {name: j}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: []
      initContainers: [{name: i, image: busybox}]
"""
    assert reasons(bundle_of(text)) == ["Job j: spec.template.spec.containers: Required value"]
