"""Pod-spec semantics the API server enforces beyond the OpenAPI schema: objects it refuses with 422.

The schema check sees types and field names; kube-apiserver's ValidatePodSpec (kubernetes/kubernetes
pkg/apis/core/validation/validation.go) also checks that the pieces of a pod spec agree: a volumeMount names a
declared volume, container, volume and port names are unique and well formed, a probe or lifecycle hook has
exactly one handler, an env var takes its value from exactly one place... Any violation and the whole object is
refused ("Deployment.apps "x" is invalid: spec.template.spec...: Not found: ..."), so nothing of it installs.

Every finding is an error, and only for rules whose outcome is certain for the profile: the spec is first read
as the API server reads it after defaulting (a volume without a source is an emptyDir, a port without a protocol
is TCP, a probe's zero thresholds get their defaults, an httpGet without path or scheme gets "/" and HTTP), and a
rule that depends on a feature gate (relaxed env var names, sleep hooks, sidecar init containers) is judged by the
profile's Kubernetes minor and featureGates. Messages and field paths are the API server's own (field.ErrorList:
`<path>: <Type>: <value>: <detail>`, values quoted like Go's %q). With server-side apply, a list keyed by name
(env) or by port and protocol (ports) that repeats a key fails before validation (structured-merge-diff: "failed
to create typed patch object ...: duplicate entries for key"), although validation itself would only warn.
Shapes the schema rejects (a string where a list belongs) are skipped: that is the schema check's finding.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from validator.manifests import Bundle
from validator.preflight import Finding
from validator.preflight.selectors import PodTemplate, pod_templates
from validator.profiles import Profile
from validator.text import QUOTE_CHARS

CHECK = "podspec"
SOURCE = "kubernetes/kubernetes pkg/apis/core/validation/validation.go"

# Where the owning kind keeps its PodSpec, in the API server's field paths (Deployment, StatefulSet, DaemonSet,
# ReplicaSet, ReplicationController and Job: spec.template.spec).
_SPEC_PATHS = {"Pod": "spec", "CronJob": "spec.jobTemplate.spec.template.spec"}
_TEMPLATE_SPEC = "spec.template.spec"


# --- how field.ErrorList prints a value (apimachinery pkg/util/validation/field/errors.go) ---

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               '"': '\\"', "\\": "\\\\"}


def go_quote(value: str) -> str:
    """Go's %q (strconv.Quote) of VALUE, clipped to QUOTE_CHARS characters: names may hold anything."""
    out = []
    for char in value[:QUOTE_CHARS]:
        code = ord(char)
        if char in _GO_ESCAPES:
            out.append(_GO_ESCAPES[char])
        elif char.isprintable():
            out.append(char)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    quoted = '"' + "".join(out) + '"'
    return quoted if len(value) <= QUOTE_CHARS else f"{quoted}... ({len(value)} characters)"


def _shown(value: str | int) -> str:
    return go_quote(value) if isinstance(value, str) else str(value)


def not_found(value: str) -> str:
    return f"Not found: {_shown(value)}"


def required(detail: str = "") -> str:
    return "Required value" + (f": {detail}" if detail else "")


def duplicate(value: str) -> str:
    return f"Duplicate value: {_shown(value)}"


def invalid(value: str | int, detail: str) -> str:
    return f"Invalid value: {_shown(value)}: {detail}"


def forbidden(detail: str) -> str:
    return f"Forbidden: {detail}"


def unsupported(value: str, supported: tuple[str, ...]) -> str:
    return f"Unsupported value: {_shown(value)}: supported values: {', '.join(go_quote(s) for s in supported)}"


# --- apimachinery pkg/util/validation/validation.go: formats and their messages ---

def _regex_error(message: str, fmt: str, *examples: str) -> str:
    """validation.RegexError, spacing included ("(e.g. 'a',  or 'b', regex used ...")."""
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    return message + " (e.g. " + " or ".join(f"'{e}', " for e in examples) + f"regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _range_error(low: int, high: int) -> str:
    return f"must be between {low} and {high}, inclusive"


def _byte_len(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))  # Go's len() counts bytes


DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + "(\\." + DNS1123_LABEL_FMT + ")*"
_DNS1123_LABEL = re.compile(DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN_FMT)
_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
                      "must start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                          "'.', and must start and end with an alphanumeric character")


def is_dns1123_label(value: str) -> list[str]:
    errors = [_max_len_error(63)] if _byte_len(value) > 63 else []
    if not _DNS1123_LABEL.fullmatch(value):
        errors.append("must not contain dots" if _DNS1123_SUBDOMAIN.fullmatch(value)
                      else _regex_error(_DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errors


def is_dns1123_subdomain(value: str) -> list[str]:
    errors = [_max_len_error(253)] if _byte_len(value) > 253 else []
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errors.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errors


def is_valid_port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    errors = [_max_len_error(15)] if _byte_len(port) > 15 else []
    if not re.fullmatch("[-a-z0-9]+", port):
        errors.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
        errors.append("must contain at least one letter (a-z)")
    if "--" in port:
        errors.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errors.append("must not begin or end with a hyphen")
    return errors


ENV_VAR_NAME_FMT = "[-._a-zA-Z][-._a-zA-Z0-9]*"
_ENV_VAR_NAME_MSG = ("a valid environment variable name must consist of alphabetic characters, digits, '_', '-', "
                     "or '.', and must not start with a digit")
RELAXED_ENV_VAR_NAME_MSG = ("a valid environment variable name must consist only of printable ASCII characters other "
                            "than '='")


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    return ["must not start with '..'"] if value.startswith("..") else []


def is_env_var_name(value: str) -> list[str]:
    """The strict rule (IsEnvVarName), the only one before RelaxedEnvironmentVariableValidation."""
    errors = [] if re.fullmatch(ENV_VAR_NAME_FMT, value) else [
        _regex_error(_ENV_VAR_NAME_MSG, ENV_VAR_NAME_FMT, "my.env-name", "MY_ENV.NAME", "MyEnvName1")]
    return errors + _chdir_prefix(value)


def is_relaxed_env_var_name(value: str) -> list[str]:
    """IsRelaxedEnvVarName: printable ASCII except '=' (an empty name is reported as Required before this)."""
    errors = [] if value else ["environment variable name must be non-empty"]
    if any(not " " <= char <= "~" or char == "=" for char in value):
        errors.append(RELAXED_ENV_VAR_NAME_MSG)
    return errors


CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"


def is_config_map_key(value: str) -> list[str]:
    errors = [_max_len_error(253)] if _byte_len(value) > 253 else []
    if not re.fullmatch(CONFIG_MAP_KEY_FMT, value):
        errors.append(_regex_error("a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                                   CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    return errors + _chdir_prefix(value)


HTTP_HEADER_NAME_FMT = "[-A-Za-z0-9]+"


def is_http_header_name(value: str) -> list[str]:
    return [] if re.fullmatch(HTTP_HEADER_NAME_FMT, value) else [_regex_error(
        "a valid HTTP header must consist of alphanumeric characters or '-'", HTTP_HEADER_NAME_FMT, "X-Header-Name")]


# --- reading the manifest defensively ---

def _items(value: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """(index, item) for the mapping items of a list; anything else (the schema check's finding) yields nothing."""
    for index, item in enumerate(value if isinstance(value, list) else ()):
        if isinstance(item, dict):
            yield index, item


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _gate(profile: Profile, gate: str, default_since: tuple[int, int]) -> bool:
    """A feature gate as the profile's cluster has it: the profile's featureGates, else on by default from
    DEFAULT_SINCE (its beta or GA minor)."""
    return bool(profile.feature_gates.get(gate, profile.kubernetes_minor >= default_since))


# VolumeSource members in the order validateVolumeSource tests them, with the field path it reports the second
# one under ("cephFS" and the "downwarAPI" typo are the API server's own). `image` is left out: dropped when the
# ImageVolume gate is off, so counting it would not be certain.
_VOLUME_SOURCES = (
    ("emptyDir", "emptyDir"), ("hostPath", "hostPath"), ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"), ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"), ("nfs", "nfs"), ("iscsi", "iscsi"), ("glusterfs", "glusterfs"), ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"), ("rbd", "rbd"), ("cinder", "cinder"), ("cephfs", "cephFS"),
    ("quobyte", "quobyte"), ("downwardAPI", "downwarAPI"), ("fc", "fc"), ("flexVolume", "flexVolume"),
    ("configMap", "configMap"), ("azureFile", "azureFile"), ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"), ("portworxVolume", "portworxVolume"), ("azureDisk", "azureDisk"),
    ("storageos", "storageos"), ("projected", "projected"), ("scaleIO", "scaleIO"), ("csi", "csi"),
    ("ephemeral", "ephemeral"),
)
_PORT_PROTOCOLS = ("SCTP", "TCP", "UDP")  # sets.List: sorted
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
_HTTP_SCHEMES = ("HTTP", "HTTPS")
_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")
_PROBE_NUMBERS = ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold")
_PROBE_FIELDS = frozenset({*_PROBE_HANDLERS, *_PROBE_NUMBERS, "terminationGracePeriodSeconds"})
_ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
_ENV_FROM_FIELDS = ("prefix", "configMapRef", "secretRef")
_INIT_FORBIDDEN = "may not be set for init containers without restartPolicy=Always"


@dataclass
class _Pod:
    """One pod template being validated: where its spec lives and the findings so far."""

    tmpl: PodTemplate
    profile: Profile
    apply_mode: str
    base: str
    findings: list[Finding] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)

    def report(self, path: str, detail: str, rule: str, **evidence: Any) -> None:
        reason = f"{self.tmpl.label}: {path}: {detail}"
        if reason in self._seen:  # field.ErrorList.ToAggregate prints each message once
            return
        self._seen.add(reason)
        self.findings.append(Finding(CHECK, "error", (str(self.tmpl.owner.ref),), reason, {
            "field": path, "detail": detail, "rule": rule, "source": SOURCE, **evidence}))

    def refused_by_apply(self, path: str, detail: str, rule: str) -> None:
        """A duplicate key in an associative list: server-side apply refuses the object before validation."""
        reason = f"{self.tmpl.label}: failed to create typed patch object: {path}: {detail}"
        if reason not in self._seen:
            self._seen.add(reason)
            self.findings.append(Finding(CHECK, "error", (str(self.tmpl.owner.ref),), reason, {
                "field": path, "detail": detail, "rule": rule, "apply_mode": self.apply_mode,
                "source": "sigs.k8s.io/structured-merge-diff (server-side apply); kubernetes/kubernetes#113482"}))

    def apply_first(self, list_path: str, key: str) -> dict[str, str]:
        """Evidence for a duplicate that validation refuses but server-side apply refuses first, in its words."""
        if self.apply_mode != "server-side":
            return {}
        return {"server_side_apply": f"refused before validation: failed to create typed patch object: {list_path}: "
                                     f"duplicate entries for key [{key}]"}


def _volumes(pod: _Pod, spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """ValidateVolumes; returns the volumes that passed, by name, as the mounts are checked against them (a volume
    the API server finds invalid is not found by its mounts either)."""
    names: set[str] = set()
    valid: dict[str, dict[str, Any]] = {}
    for index, volume in _items(spec.get("volumes")):
        path = f"{pod.base}.volumes[{index}]"
        name = _str(volume.get("name"))
        if name is None:
            continue
        errors: list[tuple[str, str, str, dict[str, str]]] = []  # (field, detail, rule, evidence)
        present = [(key, where) for key, where in _VOLUME_SOURCES if volume.get(key) is not None]
        if all(isinstance(volume[key], dict) for key, _ in present):
            errors += [(f"{path}.{where}", forbidden("may not specify more than 1 volume type"),
                        "validateVolumeSource", {}) for _, where in present[1:]]
        if not name:
            errors.append((f"{path}.name", required(), "ValidateVolumes", {}))
        errors += [(f"{path}.name", invalid(name, message), "ValidateVolumes (ValidateDNS1123Label)", {})
                   for message in (is_dns1123_label(name) if name else ())]
        if name in names:
            errors.append((f"{path}.name", duplicate(name), "ValidateVolumes",
                           pod.apply_first(f".{pod.base}.volumes", f"name={go_quote(name)}")))
        for where, detail, rule, evidence in errors:
            pod.report(where, detail, rule, **evidence)
        if not errors:
            names.add(name)
            valid[name] = volume
    return valid


def _ports(pod: _Pod, ports: Any, path: str, ssa_path: str | None) -> None:
    """validateContainerPorts (per container), and server-side apply's (containerPort, protocol) key."""
    names: set[str] = set()
    keys: set[tuple[int, str]] = set()
    for index, port in _items(ports):
        where = f"{path}[{index}]"
        name = _str(port.get("name"))
        if name:
            messages = is_valid_port_name(name)
            for message in messages:
                pod.report(f"{where}.name", invalid(name, message), "validateContainerPorts (IsValidPortName)")
            if not messages and name in names:
                pod.report(f"{where}.name", duplicate(name), "validateContainerPorts")
            names.add(name)
        number = _int(port.get("containerPort"))
        if number == 0:
            pod.report(f"{where}.containerPort", required(), "validateContainerPorts")
        elif number is not None:
            for message in is_valid_port_num(number):
                pod.report(f"{where}.containerPort", invalid(number, message), "validateContainerPorts")
        host = _int(port.get("hostPort"))
        if host:
            for message in is_valid_port_num(host):
                pod.report(f"{where}.hostPort", invalid(host, message), "validateContainerPorts")
        protocol = port.get("protocol")
        if isinstance(protocol, str) and protocol and protocol not in _PORT_PROTOCOLS:
            pod.report(f"{where}.protocol", unsupported(protocol, _PORT_PROTOCOLS), "validateContainerPorts")
        if ssa_path is not None and number is not None and (protocol is None or isinstance(protocol, str)):
            key = (number, protocol or "TCP")  # the key field's default
            if key in keys:
                pod.refused_by_apply(ssa_path, f"duplicate entries for key [containerPort={number},protocol="
                                               f"{go_quote(key[1])}]", "associative list ports keyed by "
                                                                       "containerPort and protocol")
            keys.add(key)


def _env_name_rule(profile: Profile) -> str:
    """'relaxed' or 'strict': RelaxedEnvironmentVariableValidation is alpha in 1.30, on by default from 1.32 and
    locked on from 1.34 (GA); before 1.30 only the strict rule exists."""
    minor = profile.kubernetes_minor
    if minor >= (1, 34):
        return "relaxed"
    if minor >= (1, 30) and _gate(profile, "RelaxedEnvironmentVariableValidation", (1, 32)):
        return "relaxed"
    return "strict"


_ENV_NAME_NOTES = {
    "relaxed": "RelaxedEnvironmentVariableValidation is on for this profile (default from 1.32, locked from 1.34): "
               "printable ASCII except '='",
    "strict": "RelaxedEnvironmentVariableValidation is off for this profile (alpha in 1.30, default from 1.32): "
              "the strict rule applies",
    "old": "Kubernetes before 1.30 has only the strict rule",
}


def _env_name(pod: _Pod, value: str, path: str) -> None:
    rule = _env_name_rule(pod.profile)
    relaxed = rule == "relaxed"
    name_rule = f"ValidateEnv ({'IsRelaxedEnvVarName' if relaxed else 'IsEnvVarName'})"
    for message in is_relaxed_env_var_name(value) if relaxed else is_env_var_name(value):
        pod.report(path, invalid(value, message), name_rule,
                   env_name_rule=rule, kubernetes_version=pod.profile.kubernetes_version,
                   note=_ENV_NAME_NOTES[rule] if pod.profile.kubernetes_minor >= (1, 30) else _ENV_NAME_NOTES["old"])


def _key_selector(pod: _Pod, selector: dict[str, Any], path: str) -> None:
    """validateConfigMapKeySelector / validateSecretKeySelector: the name must be a DNS subdomain, the key a
    config key."""
    name = selector.get("name", "")
    if isinstance(name, str):
        for message in is_dns1123_subdomain(name):
            pod.report(f"{path}.name", invalid(name, message), "validateConfigMapKeySelector/validateSecretKeySelector")
    key = selector.get("key")
    if key == "":
        pod.report(f"{path}.key", required(), "validateConfigMapKeySelector/validateSecretKeySelector")
    elif isinstance(key, str):
        for message in is_config_map_key(key):
            pod.report(f"{path}.key", invalid(key, message), "validateConfigMapKeySelector/validateSecretKeySelector")


def _env(pod: _Pod, env: Any, path: str, ssa_path: str | None) -> None:
    """ValidateEnv and validateEnvVarValueFrom, and server-side apply's env key (name)."""
    names: set[str] = set()
    for index, var in _items(env):
        where = f"{path}[{index}]"
        name = _str(var.get("name"))
        if name == "":
            pod.report(f"{where}.name", required(), "ValidateEnv")
        elif name is not None:
            _env_name(pod, name, f"{where}.name")
        if ssa_path is not None and name is not None:
            if name in names:
                pod.refused_by_apply(ssa_path, f"duplicate entries for key [name={go_quote(name)}]",
                                     "associative list env keyed by name")
            names.add(name)
        source = var.get("valueFrom")
        if not isinstance(source, dict):
            continue
        given = [key for key, value in source.items() if value is not None]
        if not all(key in _ENV_SOURCES and isinstance(source[key], dict) for key in given):
            continue  # malformed, or a source newer than these four (fileKeyRef, 1.34+): not certain
        for key in ("configMapKeyRef", "secretKeyRef"):
            if key in given:
                _key_selector(pod, source[key], f"{where}.valueFrom.{key}")
        value = var.get("value")
        if not given:
            if pod.profile.kubernetes_minor < (1, 34):  # 1.34 added fileKeyRef, and may name it here
                pod.report(f"{where}.valueFrom", invalid("", "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                                             "`configMapKeyRef` or `secretKeyRef`"),
                           "validateEnvVarValueFrom")
        elif isinstance(value, str) and value:
            pod.report(f"{where}.valueFrom", invalid("", "may not be specified when `value` is not empty"),
                       "validateEnvVarValueFrom")
        elif len(given) > 1:
            pod.report(f"{where}.valueFrom", invalid("", "may not have more than one field specified at a time"),
                       "validateEnvVarValueFrom")


def _env_from(pod: _Pod, env_from: Any, path: str) -> None:
    """ValidateEnvFrom: exactly one of configMapRef and secretRef (reported on the list, as the API server does);
    a prefix follows the env var name rule."""
    for index, source in _items(env_from):
        prefix = _str(source.get("prefix"))
        if prefix:
            _env_name(pod, prefix, f"{path}[{index}].prefix")
        given = [key for key in ("configMapRef", "secretRef") if source.get(key) is not None]
        unknown = [key for key, value in source.items() if value is not None and key not in _ENV_FROM_FIELDS]
        if unknown or not all(isinstance(source[key], dict) for key in given):
            continue  # malformed, or a field strict field validation refuses first
        if not given:
            pod.report(path, invalid("", "must specify one of: `configMapRef` or `secretRef`"), "ValidateEnvFrom")
        elif len(given) > 1:
            pod.report(path, invalid("", "may not have more than one field specified at a time"), "ValidateEnvFrom")


def _relative_path(pod: _Pod, value: str, path: str) -> None:
    """validateLocalDescendingPath."""
    if value.startswith("/"):
        pod.report(path, invalid(value, "must be a relative path"), "validateLocalDescendingPath")
    if ".." in value.split("/"):
        pod.report(path, invalid(value, "must not contain '..'"), "validatePathNoBacksteps")


def _mounts(pod: _Pod, container: dict[str, Any], path: str, volumes: dict[str, dict[str, Any]],
            ssa_path: str | None) -> None:
    """ValidateVolumeMounts and ValidateVolumeDevices."""
    mounts = list(_items(container.get("volumeMounts")))
    devices = list(_items(container.get("volumeDevices")))
    mount_paths = {_str(m.get("name")): _str(m.get("mountPath")) for _, m in mounts}  # GetVolumeMountMap
    device_paths = {_str(d.get("name")): _str(d.get("devicePath")) for _, d in devices}
    seen_paths: set[str] = set()
    for index, mount in mounts:
        where = f"{path}.volumeMounts[{index}]"
        name, mount_path = _str(mount.get("name")), _str(mount.get("mountPath"))
        if name is not None:
            if not name:
                pod.report(f"{where}.name", required(), "ValidateVolumeMounts")
            if name not in volumes:
                pod.report(f"{where}.name", not_found(name), "ValidateVolumeMounts",
                           declared_volumes=sorted(volumes)[:20])
            if name in device_paths:
                pod.report(f"{where}.name", invalid(name, "must not already exist in volumeDevices"),
                           "ValidateVolumeMounts")
        if mount_path is not None:
            if not mount_path:
                pod.report(f"{where}.mountPath", required(), "ValidateVolumeMounts")
            if mount_path in seen_paths:
                pod.report(f"{where}.mountPath", invalid(mount_path, "must be unique"), "ValidateVolumeMounts",
                           **(pod.apply_first(f"{ssa_path}.volumeMounts", f"mountPath={go_quote(mount_path)}")
                              if ssa_path else {}))
            seen_paths.add(mount_path)
            if mount_path in device_paths.values():
                pod.report(f"{where}.mountPath", invalid(mount_path, "must not already exist as a path in "
                                                                     "volumeDevices"), "ValidateVolumeMounts")
        sub_path, sub_path_expr = _str(mount.get("subPath")), _str(mount.get("subPathExpr"))
        if sub_path:  # reported under volumeMounts.subPath, without the index: the API server's own path
            _relative_path(pod, sub_path, f"{path}.volumeMounts.subPath")
        if sub_path_expr:
            if sub_path:
                pod.report(f"{where}.subPathExpr", invalid(sub_path_expr, "subPathExpr and subPath are mutually "
                                                                          "exclusive"), "ValidateVolumeMounts")
            _relative_path(pod, sub_path_expr, f"{path}.volumeMounts.subPathExpr")
    seen_names: set[str] = set()
    seen_device_paths: set[str] = set()
    for index, device in devices:
        where = f"{path}.volumeDevices[{index}]"
        name = _str(device.get("name"))
        if name is None:
            continue
        if not name:
            pod.report(f"{where}.name", required(), "ValidateVolumeDevices")
        if name in seen_names:
            pod.report(f"{where}.name", invalid(name, "must be unique"), "ValidateVolumeDevices")
        if name in volumes and volumes[name].get("persistentVolumeClaim") is None \
                and volumes[name].get("ephemeral") is None:
            pod.report(f"{where}.name", invalid(name, "can only use volume source type of PersistentVolumeClaim or "
                                                      "Ephemeral for block mode"), "ValidateVolumeDevices")
        if name not in volumes:
            pod.report(f"{where}.name", not_found(name), "ValidateVolumeDevices",
                       declared_volumes=sorted(volumes)[:20])
        device_path = _str(device.get("devicePath"))
        if device_path == "":
            pod.report(f"{where}.devicePath", required(), "ValidateVolumeDevices")
        if device_path is not None:
            if device_path in seen_device_paths:
                pod.report(f"{where}.devicePath", invalid(device_path, "must be unique"), "ValidateVolumeDevices")
            if ".." in device_path.split("/"):
                pod.report(f"{where}.devicePath", invalid(device_path, "can not contain backsteps ('..')"),
                           "ValidateVolumeDevices")
            else:
                seen_device_paths.add(device_path)
        if name in mount_paths:
            pod.report(f"{where}.name", invalid(name, "must not already exist in volumeMounts"),
                       "ValidateVolumeDevices")
        if device_path is not None and device_path in mount_paths.values():
            pod.report(f"{where}.devicePath", invalid(device_path, "must not already exist as a path in volumeMounts"),
                       "ValidateVolumeDevices")
        if name:
            seen_names.add(name)


def _port_num_or_name(pod: _Pod, port: Any, path: str) -> None:
    """ValidatePortNumOrName: a number in range or an IANA port name (a quoted "8080" is a name, and fails)."""
    if _int(port) is not None:
        for message in is_valid_port_num(port):
            pod.report(path, invalid(port, message), "ValidatePortNumOrName")
    elif isinstance(port, str):
        for message in is_valid_port_name(port):
            pod.report(path, invalid(port, message), "ValidatePortNumOrName (IsValidPortName)")


def _handler(pod: _Pod, handler: dict[str, Any], path: str, kinds: tuple[str, ...]) -> None:
    """validateHandler: exactly one handler type, and its required parts."""
    present = [key for key in kinds if handler.get(key) is not None]
    if not all(isinstance(handler[key], dict) for key in present):
        return
    if "sleep" in present and not _gate(pod.profile, "PodLifecycleSleepAction", (1, 30)):
        return  # dropped when the gate is off: the outcome depends on what remains
    if "grpc" in present and pod.profile.kubernetes_minor < (1, 24):
        return
    if not present:
        known = _PROBE_FIELDS if kinds == _PROBE_HANDLERS else frozenset(kinds)
        if all(key in known for key, value in handler.items() if value is not None):
            pod.report(path, required("must specify a handler type"), "validateHandler")
        return  # else a field this check does not know (a typo, a newer handler): strict field validation's call
    for key in present[1:]:
        pod.report(f"{path}.{key}", forbidden("may not specify more than 1 handler type"), "validateHandler")
    key, action = present[0], handler[present[0]]
    where = f"{path}.{key}"
    if key == "exec":
        command = action.get("command")
        if command is None or command == []:
            pod.report(f"{where}.command", required(), "validateExecAction")
    elif key == "httpGet":  # path and scheme are defaulted ("/", HTTP) when empty
        _port_num_or_name(pod, action.get("port"), f"{where}.port")
        scheme = action.get("scheme")
        if isinstance(scheme, str) and scheme and scheme not in _HTTP_SCHEMES:
            pod.report(f"{where}.scheme", unsupported(scheme, _HTTP_SCHEMES), "validateHTTPGetAction")
        for _, header in _items(action.get("httpHeaders")):
            name = _str(header.get("name"))
            if name is not None:
                for message in is_http_header_name(name):
                    pod.report(f"{where}.httpHeaders", invalid(name, message), "validateHTTPGetAction")
    elif key == "tcpSocket":
        _port_num_or_name(pod, action.get("port"), f"{where}.port")
    elif key == "grpc":
        port = _int(action.get("port"))
        if port is not None:
            for message in is_valid_port_num(port):
                pod.report(f"{where}.port", invalid(port, message), "validateGRPCAction")


def _probe(pod: _Pod, probe: Any, path: str, kind: str) -> None:
    """validateProbe plus the liveness/startup (successThreshold 1) and readiness rules, after defaulting."""
    if not isinstance(probe, dict):
        return
    _handler(pod, probe, path, _PROBE_HANDLERS)
    for name in _PROBE_NUMBERS:
        value = _int(probe.get(name))
        if value is not None and value < 0:
            pod.report(f"{path}.{name}", invalid(value, "must be greater than or equal to 0"),
                       "validateProbe (ValidateNonnegativeField)")
    grace = _int(probe.get("terminationGracePeriodSeconds"))
    if grace is not None and grace <= 0:
        pod.report(f"{path}.terminationGracePeriodSeconds", invalid(grace, "must be greater than 0"), "validateProbe")
    success = _int(probe.get("successThreshold"))
    if kind in ("livenessProbe", "startupProbe") and success is not None and success not in (0, 1):  # 0: default 1
        pod.report(f"{path}.successThreshold", invalid(success, "must be 1"), f"validate{kind[0].upper()}{kind[1:]}")
    if kind == "readinessProbe" and grace is not None:
        pod.report(f"{path}.terminationGracePeriodSeconds", invalid(grace, "must not be set for readinessProbes"),
                   "validateReadinessProbe")


def _probes_and_hooks(pod: _Pod, container: dict[str, Any], path: str) -> None:
    lifecycle = container.get("lifecycle")
    if isinstance(lifecycle, dict):
        for hook in ("postStart", "preStop"):
            if isinstance(lifecycle.get(hook), dict):
                _handler(pod, lifecycle[hook], f"{path}.lifecycle.{hook}", _LIFECYCLE_HANDLERS)
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(pod, container.get(kind), f"{path}.{kind}", kind)


def _container(pod: _Pod, container: dict[str, Any], path: str, volumes: dict[str, dict[str, Any]]) -> None:
    """validateContainerCommon: name, image, ports, env, envFrom, mounts, pull and termination-message policy."""
    name = _str(container.get("name"))
    if name == "":
        pod.report(f"{path}.name", required(), "validateContainerCommon")
    elif name is not None:
        for message in is_dns1123_label(name):
            pod.report(f"{path}.name", invalid(name, message), "validateContainerCommon (ValidateDNS1123Label)")
    if container.get("image") in (None, ""):
        pod.report(f"{path}.image", required(), "validateContainerCommon")
    policy = container.get("terminationMessagePolicy")
    if isinstance(policy, str) and policy and policy not in _TERMINATION_MESSAGE_POLICIES:
        pod.report(f"{path}.terminationMessagePolicy", unsupported(policy, _TERMINATION_MESSAGE_POLICIES),
                   "validateContainerCommon")
    ssa = f".{path.rsplit('[', 1)[0]}[name={go_quote(name)}]" \
        if name and pod.apply_mode == "server-side" else None
    _ports(pod, container.get("ports"), f"{path}.ports", ssa and f"{ssa}.ports")
    _env(pod, container.get("env"), f"{path}.env", ssa and f"{ssa}.env")
    _env_from(pod, container.get("envFrom"), f"{path}.envFrom")
    _mounts(pod, container, path, volumes, ssa)
    pull = container.get("imagePullPolicy")
    if isinstance(pull, str) and pull and pull not in _PULL_POLICIES:
        pod.report(f"{path}.imagePullPolicy", unsupported(pull, _PULL_POLICIES), "validatePullPolicy")


def _host_ports(pod: _Pod, containers: list[tuple[int, dict[str, Any]]], path: str) -> None:
    """AccumulateUniqueHostPorts: one protocol/hostIP/hostPort per pod (init containers each on their own)."""
    taken: set[str] = set()
    for index, container in containers:
        for port_index, port in _items(container.get("ports")):
            host = _int(port.get("hostPort"))
            protocol, host_ip = port.get("protocol") or "TCP", port.get("hostIP") or ""
            if not host or not isinstance(protocol, str) or not isinstance(host_ip, str):
                continue
            key = f"{protocol}/{host_ip}/{host}"
            if key in taken:
                pod.report(f"{path}[{index}].ports[{port_index}].hostPort", duplicate(key),
                           "AccumulateUniqueHostPorts")
            taken.add(key)


def _validate(pod: _Pod) -> None:
    """ValidatePodSpec's order: volumes, containers, init containers, ephemeral containers, host network."""
    spec = pod.tmpl.spec
    volumes = _volumes(pod, spec)
    containers = list(_items(spec.get("containers")))
    if spec.get("containers") == []:  # validateContainers (absent: the schema check's "required")
        pod.report(f"{pod.base}.containers", required(), "validateContainers")
    names: set[str] = set()
    for index, container in containers:
        path = f"{pod.base}.containers[{index}]"
        _container(pod, container, path, volumes)
        name = _str(container.get("name"))
        if name is not None and name in names:
            pod.report(f"{path}.name", duplicate(name), "validateContainers",
                       **pod.apply_first(f".{pod.base}.containers", f"name={go_quote(name)}"))
        elif name is not None:
            names.add(name)
        _probes_and_hooks(pod, container, path)
    _host_ports(pod, containers, f"{pod.base}.containers")
    sidecars = _gate(pod.profile, "SidecarContainers", (1, 29))
    init_names: set[str] = set()  # server-side apply keys each list on its own
    for index, container in _items(spec.get("initContainers")):
        path = f"{pod.base}.initContainers[{index}]"
        _container(pod, container, path, volumes)
        name = _str(container.get("name"))
        if name is not None and name in names:
            pod.report(f"{path}.name", duplicate(name), "validateInitContainers", **(pod.apply_first(
                f".{pod.base}.initContainers", f"name={go_quote(name)}") if name in init_names else {}))
        elif name:
            names.add(name)
        if name is not None:
            init_names.add(name)
        _host_ports(pod, [(index, container)], f"{pod.base}.initContainers")
        restart = container.get("restartPolicy")
        if restart == "Always" and sidecars:
            _probes_and_hooks(pod, container, path)
        elif restart is None and pod.profile.kubernetes_minor >= (1, 28):  # older minors word it differently
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if container.get(key) is not None:
                    pod.report(f"{path}.{key}", forbidden(_INIT_FORBIDDEN), "validateInitContainers")
    ephemeral = spec.get("ephemeralContainers")
    if isinstance(ephemeral, list) and ephemeral:
        pod.report(f"{pod.base}.ephemeralContainers",
                   forbidden("cannot be set on create" if pod.tmpl.owner.kind == "Pod"
                             else "ephemeral containers not allowed in pod template"),
                   "ValidatePodCreate" if pod.tmpl.owner.kind == "Pod" else "ValidatePodTemplateSpec")
    for index, container in _items(ephemeral):
        path = f"{pod.base}.ephemeralContainers[{index}]"
        _container(pod, container, path, volumes)
        name = _str(container.get("name"))
        if name is not None and name in names:
            pod.report(f"{path}.name", duplicate(name), "validateEphemeralContainers")
        elif name is not None:
            names.add(name)
    if spec.get("hostNetwork") is True:  # validatePodHostNetworkDeps (a Pod's 0 is defaulted to containerPort)
        for index, container in containers:
            for port_index, port in _items(container.get("ports")):
                host, number = _int(port.get("hostPort")), _int(port.get("containerPort"))
                if host and number is not None and host != number:
                    pod.report(f"{pod.base}.containers[{index}].ports[{port_index}].hostPort",
                               invalid(host, "must match `containerPort` when `hostNetwork` is true"),
                               "validatePodHostNetworkDeps")


def spec_path(tmpl: PodTemplate) -> str:
    """The field path of TMPL's PodSpec as the API server reports it."""
    return _SPEC_PATHS.get(tmpl.owner.kind, _TEMPLATE_SPEC)


def check(bundle: Bundle, profile: Profile, apply_mode: str) -> list[Finding]:
    findings: list[Finding] = []
    for tmpl in pod_templates(bundle):
        pod = _Pod(tmpl, profile, apply_mode, spec_path(tmpl))
        _validate(pod)
        findings.extend(pod.findings)
    return findings
