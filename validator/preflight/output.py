"""Render preflight findings as text, JSON (versioned schema), Markdown or SARIF 2.1.0.

JSON is the machine contract (validator/preflight/findings.schema.json, bump SCHEMA_VERSION on any
incompatible change); SARIF lets code-scanning UIs annotate the manifest lines; Markdown is for the
GitHub step summary; text is for people at a terminal.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from validator import __version__
from validator.manifests import Bundle, KubeObject
from validator.preflight import Finding, counts, has_error
from validator.profiles import Profile
from validator.text import escape_controls

SCHEMA_ID = "https://argocd-mirror.dev/schemas/preflight-findings.schema.json"
SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).with_name("findings.schema.json")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
INFORMATION_URI = "https://github.com/argocd-mirror/argocd-mirror"
CHECK_DESCRIPTIONS = {
    "networkpolicy-api-egress": "Pods that need the Kubernetes API must not be cut off from it by NetworkPolicy egress",
    "api-credentials": "Containers that call the Kubernetes API must get credentials for it (a ServiceAccount token)",
    "client-side-apply-size": "Client-side apply's last-applied annotation must stay within 262144 bytes",
    "scheduling": "Pods must be schedulable on the profile's nodes",
    "schema": "Objects must match the Kubernetes schema and use apiVersions the profile's version serves",
    "references": "Referenced objects must exist or be created at runtime; images should be pinned",
}


def _uri(source: str) -> str | None:
    """A SARIF artifact URI for an object's source: URLs as they are, local paths as file:// URIs."""
    if "://" in source:
        return source
    if source.startswith("<"):
        return None  # stdin or an in-memory manifest: no artifact to point at
    return Path(source).absolute().as_uri()


def _locations(bundle: Bundle, finding: Finding) -> list[KubeObject]:
    by_ref = {str(obj.ref): obj for obj in bundle}
    return [by_ref[ref] for ref in finding.objects if ref in by_ref]


def to_document(findings: list[Finding], bundle: Bundle, profile: Profile, apply_mode: str) -> dict[str, Any]:
    """The JSON document (schema: findings.schema.json)."""
    provenance = bundle.provenance.to_dict() if hasattr(bundle.provenance, "to_dict") else None
    items = []
    for finding in findings:
        item = finding.to_dict()
        item["locations"] = [{"source": o.source, "document": o.document, "line": o.line}
                             for o in _locations(bundle, finding)]
        items.append(item)
    return {
        "$schema": SCHEMA_ID,
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "argocd-mirror", "version": __version__},
        "candidate": provenance,
        "profile": {"name": profile.name, "kubernetesVersion": profile.kubernetes_version,
                    "nodes": len(profile.nodes), "cni": profile.cni},
        "applyMode": apply_mode,
        "objects": len(bundle),
        "passed": not has_error(findings),
        "summary": counts(findings),
        "findings": items,
    }


def render_json(findings: list[Finding], bundle: Bundle, profile: Profile, apply_mode: str) -> str:
    return json.dumps(to_document(findings, bundle, profile, apply_mode), indent=2, sort_keys=False, default=str)


def render_text(findings: list[Finding], bundle: Bundle, profile: Profile, apply_mode: str) -> str:
    label = escape_controls(getattr(bundle.provenance, "label", "manifest"))
    lines = [f"preflight {label}: {len(bundle)} objects, profile {escape_controls(profile.name)} (Kubernetes "
             f"{profile.kubernetes_version}, {len(profile.nodes)} node(s)), {apply_mode} apply"]
    for finding in findings:
        lines.append(f"  {finding.severity.upper():<7} [{finding.check}] {escape_controls(finding.reason)}")
    tally = counts(findings)
    verdict = "FAIL" if tally["error"] else "PASS"
    lines.append(f"{verdict}: {tally['error']} error(s), {tally['warning']} warning(s), {tally['info']} info")
    return "\n".join(lines)


def _md(text: str) -> str:
    return escape_controls(text.replace("|", "\\|").replace("\n", " "))


def render_markdown(findings: list[Finding], bundle: Bundle, profile: Profile, apply_mode: str) -> str:
    tally = counts(findings)
    label = getattr(bundle.provenance, "label", "manifest")
    head = "❌ preflight failed" if tally["error"] else "✅ preflight passed"
    lines = [f"### {head}: `{_md(label)}`", "",
             f"Profile **{_md(profile.name)}** (Kubernetes {profile.kubernetes_version}, "
             f"{len(profile.nodes)} node(s)), {apply_mode} apply, {len(bundle)} objects: **{tally['error']}** "
             f"error(s), {tally['warning']} warning(s), {tally['info']} info.", ""]
    if findings:
        lines += ["| severity | check | objects | reason |", "|---|---|---|---|"]
        for f in findings:
            objects = "<br>".join(f"`{_md(o)}`" for o in f.objects[:5]) + (" …" if len(f.objects) > 5 else "")
            lines.append(f"| {f.severity} | {f.check} | {objects} | {_md(f.reason)} |")
    return "\n".join(lines) + "\n"


def render_sarif(findings: list[Finding], bundle: Bundle, profile: Profile, apply_mode: str) -> str:
    rule_ids = list(dict.fromkeys([*CHECK_DESCRIPTIONS, *(f.check for f in findings)]))
    results = []
    for finding in findings:
        result: dict[str, Any] = {
            "ruleId": finding.check,
            "ruleIndex": rule_ids.index(finding.check),
            "level": SARIF_LEVEL[finding.severity],
            "message": {"text": finding.reason},
            "properties": {"objects": list(finding.objects), "evidence": finding.evidence},
        }
        locations = [{
            "physicalLocation": {"artifactLocation": {"uri": _uri(obj.source)},
                                 "region": {"startLine": max(obj.line, 1)}},
            "logicalLocations": [{"fullyQualifiedName": str(obj.ref), "kind": "resource"}],
        } for obj in _locations(bundle, finding) if _uri(obj.source)]
        if locations:
            result["locations"] = locations
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "argocd-mirror preflight", "version": __version__, "informationUri": INFORMATION_URI,
                "rules": [{"id": rule, "shortDescription": {"text": CHECK_DESCRIPTIONS.get(rule, rule)}}
                          for rule in rule_ids],
            }},
            "properties": {"profile": profile.name, "kubernetesVersion": profile.kubernetes_version,
                           "applyMode": apply_mode},
            "results": results,
        }],
    }
    return json.dumps(log, indent=2, default=str)


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown, "sarif": render_sarif}
