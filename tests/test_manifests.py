"""Safe, bounded manifest loading: correct objects for good input, one-line errors for every kind of bad input."""

from __future__ import annotations

import glob
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import UPSTREAM_MANIFESTS, real_manifest
from validator.errors import InputError
from validator.manifests import (
    Limits,
    decode,
    load_bundle,
    load_objects,
    parse_yaml_documents,
    pod_spec,
    read_bounded,
    split_image,
)

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def load(text: str, **kwargs) -> list:
    return load_objects(text.encode(), "m.yaml", **kwargs)


def error_of(data: bytes | str, **kwargs) -> str:
    raw = data.encode() if isinstance(data, str) else data
    with pytest.raises(InputError) as exc:
        load_objects(raw, "m.yaml", **kwargs)
    message = exc.value.one_line()
    assert "\n" not in message and message.startswith("m.yaml")
    return message


# ---------------------------------------------------------------------------------------------- good input


def test_objects_are_indexed_with_namespace_defaulting_like_kubectl_apply_n() -> None:
    objs = load(
        CM.format(name="a")
        + "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r, namespace: x}\n"
        + "---\napiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: argocd}\n",
        namespace="argocd",
    )
    assert [str(o.ref) for o in objs] == ["ConfigMap/argocd/a", "ClusterRole.rbac.authorization.k8s.io/r",
                                          "Service/argocd/s"]
    assert [(o.document, o.line) for o in objs] == [(1, 1), (2, 6), (3, 10)]


def test_namespace_mismatch_is_refused_with_kubectls_words() -> None:
    message = error_of("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: prod}\n", namespace="argocd")
    assert 'the namespace from the provided object "prod" does not match the namespace "argocd"' in message


def test_cluster_scoped_custom_resources_follow_their_crd() -> None:
    crd = (
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.ex.io}\n"
        "spec: {group: ex.io, scope: Cluster, names: {kind: Widget, plural: widgets}}\n"
    )
    objs = load(crd + "---\napiVersion: ex.io/v1\nkind: Widget\nmetadata: {name: w}\n"
                "---\napiVersion: ex.io/v1\nkind: Gadget\nmetadata: {name: g}\n")
    assert [o.namespace for o in objs] == ["", "", "argocd"]


def test_yaml_1_1_booleans_as_kubernetes_reads_them() -> None:
    (obj,) = load("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: yes, y: 'yes', z: off, n: 010}\n")
    assert obj.body["data"] == {"x": True, "y": "yes", "z": False, "n": 8}


def test_timestamps_stay_strings_and_merge_keys_work() -> None:
    (obj,) = load("base: &b {k: 1, j: 2}\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
                  "data: {<<: *b, j: 3, when: 2024-05-01}\n")
    assert obj.body["data"] == {"k": 1, "j": 3, "when": "2024-05-01"}


# Plain scalars whose YAML 1.1 meaning is not "a string", plus ordinary words: the loader caches
# resolutions of short plain scalars, so each must come out as PyYAML reads it however often it repeats.
_PLAIN_SCALARS = st.sampled_from([
    "yes", "No", "on", "OFF", "~", "null", "true", "False", "1", "-7", "010", "0x1f", "0b101", "1_000", "1:20",
    "3.5", "6.8e+3", ".inf", "-.Inf", "a", "description", "string", "x" * 80,
])


@given(st.lists(st.tuples(st.from_regex(r"[a-z]{1,6}", fullmatch=True), _PLAIN_SCALARS), min_size=1, max_size=30))
def test_repeated_plain_scalars_resolve_like_pyyaml(pairs: list[tuple[str, str]]) -> None:
    text = "".join(f"- k: {key}\n  v: {value}\n" for key, value in pairs) * 2
    expected = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert [doc for doc, _ in parse_yaml_documents(text, "m.yaml")] == [expected]


def test_plain_scalar_cache_overflow_still_resolves_every_scalar() -> None:
    text = "".join(f"- s{i}\n" for i in range(5000)) + "- 010\n- yes\n" * 3
    (doc, _), = parse_yaml_documents(text, "m.yaml")
    assert doc[:2] == ["s0", "s1"] and doc[4999] == "s4999" and doc[5000:] == [8, True] * 3


def test_kind_list_is_flattened_and_empty_documents_skipped() -> None:
    objs = load("---\n---\napiVersion: v1\nkind: List\nitems:\n- " + CM.format(name="a").replace("\n", "\n  ")
                + "\n---\n")
    assert [o.name for o in objs] == ["a"]


def test_apply_order_puts_namespaces_policies_and_crds_before_workloads() -> None:
    text = "\n---\n".join([
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}",
        "apiVersion: ex.io/v1\nkind: Widget\nmetadata: {name: w}",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p}",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: c}",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: argocd}",
    ])
    bundle = load_bundle(text.encode())
    assert [o.kind for o in bundle.in_apply_order()] == [
        "Namespace", "NetworkPolicy", "CustomResourceDefinition", "Deployment", "Widget"]
    assert bundle.get("Deployment", "d") is bundle.index[bundle.objects[0].ref]


def test_split_image() -> None:
    digest = "sha256:" + "a" * 64
    assert split_image("quay.io/argoproj/argocd:v3.5.1") == ("quay.io/argoproj/argocd", "v3.5.1", None)
    assert split_image(f"redis@{digest}") == ("redis", None, digest)
    assert split_image("localhost:5000/x:1") == ("localhost:5000/x", "1", None)


@pytest.mark.parametrize("relative", sorted(
    str(Path(p).relative_to(UPSTREAM_MANIFESTS)) for p in glob.glob(f"{UPSTREAM_MANIFESTS}/**/*.yaml", recursive=True)
) or ["v3.5.1/install.yaml"])
def test_identical_to_pyyaml_on_every_real_manifest(relative: str) -> None:
    data = real_manifest(relative).read_bytes()
    expected = list(yaml.load_all(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    assert [doc for doc, _ in parse_yaml_documents(decode(data, relative), relative)] == expected


def test_real_v3_5_1_install_has_59_objects() -> None:
    bundle = load_bundle(real_manifest("v3.5.1/install.yaml").read_bytes())
    assert len(bundle) == 59
    assert bundle.kind_counts()["CustomResourceDefinition"] == 3


# ---------------------------------------------------------------------------------------------- bad input


def test_alias_bomb_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    message = error_of("\n".join(lines) + "\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    assert "alias bomb" in message


def test_oversized_input_is_refused_before_parsing() -> None:
    assert "over the 100-byte manifest limit" in error_of(CM.format(name="a" * 200), limits=Limits(max_bytes=100))


def test_read_bounded_never_reads_past_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 5000)
    with pytest.raises(InputError, match="over the 1000-byte"):
        read_bounded(big, Limits(max_bytes=1000))
    with pytest.raises(InputError, match="is a directory"):
        read_bounded(tmp_path)
    with pytest.raises(InputError, match="cannot read"):
        read_bounded(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", "binary data"),
        (b"apiVersion: v1\nkind: \xff\xfe\n", "line 2: not valid UTF-8"),
        ("- a\n- b\n", "document 1 (line 1): is a YAML list"),
        ("just a string\n", "is a str scalar"),
        ("42\n", "is a int scalar"),
        ("kind: ConfigMap\nmetadata: {name: a}\n", "missing apiVersion"),
        ("apiVersion: v1\nmetadata: {name: a}\n", "missing kind"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "missing metadata.name"),
        ("apiVersion: v1\nkind: ConfigMap\n", "missing metadata.name"),
        ("services:\n  web:\n    image: nginx\n", "missing apiVersion, kind, metadata.name"),
        ("", "no Kubernetes objects found"),
        ("---\n# only a comment\n---\n", "no Kubernetes objects found"),
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a\n", "document 1 line 4: invalid YAML"),
        ("a: !!python/object:os.system {}\n", "unsupported YAML tag"),
        ("a: *nowhere\n", "unknown alias *nowhere"),
        ("? [a, b]\n: c\n", "mapping key that is itself"),
        (CM.format(name="a") + "---\n" + CM.format(name="a"), "duplicate object ConfigMap/argocd/a"),
        # kubectl refuses duplicate keys ("already set in map"); last-wins would validate what never applies
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: 1, k: 2}\n",
         "document 1 line 4: duplicate mapping key 'k'"),
    ],
)
def test_bad_input_gets_a_one_line_error(data: bytes | str, expected: str) -> None:
    assert expected in error_of(data)


def test_deep_nesting_is_bounded() -> None:
    assert "nesting deeper than 128" in error_of("a: " + "[" * 200 + "]" * 200 + "\n")


def test_document_count_is_bounded() -> None:
    assert "more than 3 YAML documents" in error_of("---\n" * 10, limits=Limits(max_documents=3))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_arbitrary_bytes_give_objects_or_input_error(data: bytes) -> None:
    try:
        load_objects(data, "fuzz.yaml")
    except InputError as exc:
        assert "\n" not in exc.one_line()


def test_cli_prints_one_line_and_exit_2_without_traceback(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [" + ", ".join(["x"] * 50) + "]\n" + "".join(
        f"b{i}: &b{i} [{', '.join(['*a' if i == 0 else f'*b{i - 1}'] * 50)}]\n" for i in range(6)))
    proc = subprocess.run([sys.executable, "-m", "validator.cli", "resolve", str(bomb)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and "bomb.yaml" in proc.stderr
    assert proc.stderr.startswith("argocd-mirror resolve: could not resolve: ")


@pytest.mark.parametrize("spec", [
    "spec: x", "spec: {template: x}", "spec: {template: {spec: [a]}}", "spec: {template: {spec: {containers: 5}}}",
    "spec: {template: {spec: {containers: {a: b}, initContainers: x}}}",
])
def test_wrong_shaped_workloads_are_the_schema_checks_finding_not_a_crash(spec: str) -> None:
    """A string `spec` or an int `containers` crashed resolve and preflight with AttributeError/TypeError."""
    from validator.preflight import run_preflight
    from validator.profiles import load_profile

    bundle = load_bundle(f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\n{spec}\n".encode())
    (obj,) = bundle
    assert isinstance(pod_spec(obj), dict)
    findings = run_preflight(bundle, load_profile("default"))
    assert [f.check for f in findings if f.severity == "error"] == ["schema"]


def test_a_crd_with_a_string_spec_is_not_a_crash() -> None:
    crd = ("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
           "metadata: {name: x.example.com}\nspec: x\n")
    (obj,) = load_bundle(crd.encode())
    assert obj.namespace == ""
