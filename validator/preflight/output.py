"""Render preflight findings as text, JSON (versioned schema), Markdown or SARIF 2.1.0.

JSON is the machine contract (validator/preflight/findings.schema.json, bump SCHEMA_VERSION on any
incompatible change); SARIF lets code-scanning UIs annotate the manifest lines; Markdown is for the
GitHub step summary; text is for people at a terminal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from validator import __version__
from validator.manifests import Bundle, KubeObject
from validator.preflight import ALSO_IN_BASELINE, NEW, Finding, counts, has_error, signature
from validator.profiles import Profile
from validator.text import escape_controls

SCHEMA_ID = "https://argocd-mirror.dev/schemas/preflight-findings.schema.json"
SCHEMA_VERSION = "1.1"
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
    "podspec": "Pod specs must pass the API server's PodSpec validation: mounts, names, ports, env, probes",
    "references": "Referenced objects must exist or be created at runtime; images should be pinned",
}


DOCS_URI = f"{INFORMATION_URI}/blob/main/docs/preflight.md"
SRCROOT = "%SRCROOT%"  # the uriBaseId code scanning resolves against the checkout


def _artifact(source: str, root: Path | None = None) -> dict[str, str] | None:
    """A SARIF artifactLocation for an object's source: URLs as they are; a local file inside the working tree
    relative to %SRCROOT% (so code scanning annotates the file in the repository), any other as a file:// URI."""
    if "://" in source:
        return {"uri": source}
    if source.startswith("<"):
        return None  # stdin or an in-memory manifest: no artifact to point at
    path = Path(source).absolute()
    base = (root or Path.cwd()).absolute()
    if path.is_relative_to(base):
        return {"uri": path.relative_to(base).as_posix(), "uriBaseId": SRCROOT}
    return {"uri": path.as_uri()}


def fingerprint(finding: Finding) -> str:
    """Stable across runs and releases: the check, the objects and the reason's signature (versions, digests and
    numbers blanked), so code scanning tracks one finding instead of opening a new alert per release."""
    import hashlib

    key = "\0".join([finding.check, *sorted(finding.objects), signature(finding.reason)])
    return hashlib.sha256(key.encode()).hexdigest()


def _help(rule: str) -> dict[str, str]:
    description = CHECK_DESCRIPTIONS.get(rule, rule)
    anchor = f"{DOCS_URI}#checks"
    return {"text": f"{description}. See {anchor}",
            "markdown": f"**{description}.**\n\nWhat `{rule}` proves, how sure an error is and what to do about a "
                        f"finding: [docs/preflight.md]({anchor})."}


@dataclass(frozen=True)
class Report:
    """What a preflight report shows: the findings and what they were judged against."""

    findings: list[Finding]
    bundle: Bundle
    profile: Profile
    apply_mode: str
    baseline: Bundle | None = None  # the release production runs, when the findings were compared with it
    accepted: tuple[str, ...] = ()
    verbose: bool = False  # text: show info findings too

    @property
    def label(self) -> str:
        return getattr(self.bundle.provenance, "label", "manifest")

    @property
    def baseline_label(self) -> str | None:
        return getattr(self.baseline.provenance, "label", "baseline") if self.baseline is not None else None


def _locations(bundle: Bundle, finding: Finding) -> list[KubeObject]:
    by_ref = {str(obj.ref): obj for obj in bundle}
    return [by_ref[ref] for ref in finding.objects if ref in by_ref]


def _provenance(bundle: Bundle | None) -> dict[str, Any] | None:
    to_dict = getattr(getattr(bundle, "provenance", None), "to_dict", None)
    return to_dict() if to_dict is not None else None


def to_document(report: Report) -> dict[str, Any]:
    """The JSON document (schema: findings.schema.json)."""
    items = []
    for finding in report.findings:
        item = finding.to_dict()
        item["locations"] = [{"source": o.source, "document": o.document, "line": o.line}
                             for o in _locations(report.bundle, finding)]
        items.append(item)
    profile = report.profile
    document: dict[str, Any] = {
        "$schema": SCHEMA_ID,
        "schemaVersion": SCHEMA_VERSION,
        "tool": {"name": "argocd-mirror", "version": __version__},
        "candidate": _provenance(report.bundle),
        "profile": {"name": profile.name, "kubernetesVersion": profile.kubernetes_version,
                    "nodes": len(profile.nodes), "cni": profile.cni},
        "applyMode": report.apply_mode,
        "objects": len(report.bundle),
        "passed": not has_error(report.findings),
        "summary": counts(report.findings),
    }
    if report.baseline is not None:
        document["baseline"] = _provenance(report.baseline)
    if report.accepted:
        document["accepted"] = list(report.accepted)
    document["findings"] = items
    return document


def render_json(report: Report) -> str:
    return json.dumps(to_document(report), indent=2, sort_keys=False, default=str)


def _text_line(finding: Finding, report: Report) -> str:
    label = {NEW: "new: ", ALSO_IN_BASELINE: f"also in {report.baseline_label}: "}.get(finding.baseline or "", "")
    return f"  {finding.severity.upper():<7} [{finding.check}] {label}{escape_controls(finding.reason)}"


def render_text(report: Report) -> str:
    """One line per finding, worst first (new ones first with a baseline), the profile's own findings after the
    candidate's, info only with verbose; then the verdict with counts."""
    profile = report.profile
    against = f"; compared with {escape_controls(report.baseline_label)}" if report.baseline_label else ""
    lines = [f"preflight {escape_controls(report.label)}: {len(report.bundle)} objects, profile "
             f"{escape_controls(profile.name)} (Kubernetes {profile.kubernetes_version}, {len(profile.nodes)} "
             f"node(s)), {report.apply_mode} apply{against}"]
    shown = [f for f in report.findings if report.verbose or f.severity != "info"]
    lines += [_text_line(f, report) for f in shown if f.origin == "candidate"]
    from_profile = [f for f in shown if f.origin == "profile"]
    if from_profile:
        lines.append(f"  from profile {escape_controls(profile.name)}, the same for any release:")
        lines += [_text_line(f, report) for f in from_profile]
    tally = counts(report.findings)
    new_errors = sum(1 for f in report.findings if f.severity == "error" and f.baseline == NEW)
    hidden = len(report.findings) - len(shown)
    verdict = "FAIL" if tally["error"] else "PASS"
    lines.append(f"{verdict}: {tally['error']} error(s){f' ({new_errors} new)' if report.baseline else ''}, "
                 f"{tally['warning']} warning(s), {tally['info']} info"
                 f"{' (not shown; -v shows them)' if hidden else ''}")
    return "\n".join(lines)


def _md(text: str) -> str:
    return escape_controls(text.replace("|", "\\|").replace("\n", " "))


def summary_line(report: Report) -> str:
    """One line for stderr, whatever the format and destination: `FAIL <candidate>: 1 error(s), ...`."""
    tally = counts(report.findings)
    new_errors = sum(1 for f in report.findings if f.severity == "error" and f.baseline == NEW)
    return (f"{'FAIL' if tally['error'] else 'PASS'} {escape_controls(report.label)}: {tally['error']} error(s)"
            f"{f' ({new_errors} new)' if report.baseline else ''}, {tally['warning']} warning(s), {tally['info']} info")


def render_markdown(report: Report) -> str:
    findings, profile = report.findings, report.profile
    tally = counts(findings)
    head = "❌ preflight failed" if tally["error"] else "✅ preflight passed"
    against = f", compared with `{_md(report.baseline_label)}`" if report.baseline_label else ""
    lines = [f"### {head}: `{_md(report.label)}`", "",
             f"Profile **{_md(profile.name)}** (Kubernetes {profile.kubernetes_version}, "
             f"{len(profile.nodes)} node(s)), {report.apply_mode} apply, {len(report.bundle)} objects{against}: "
             f"**{tally['error']}** error(s), {tally['warning']} warning(s), {tally['info']} info.", ""]
    if findings:
        lines += ["| severity | check | objects | reason |", "|---|---|---|---|"]
        for f in findings:
            objects = "<br>".join(f"`{_md(o)}`" for o in f.objects[:5]) + (" …" if len(f.objects) > 5 else "")
            tags = [t for t in (f.baseline, "from the profile" if f.origin == "profile" else None) if t]
            severity = f.severity + "".join(f" ({t})" for t in tags)
            lines.append(f"| {severity} | {f.check} | {objects} | {_md(f.reason)} |")
    return "\n".join(lines) + "\n"


def render_sarif(report: Report, root: Path | None = None) -> str:
    """SARIF 2.1.0; paths inside `root` (default: the working directory, a checkout in CI) relative to %SRCROOT%."""
    findings, bundle, profile = report.findings, report.bundle, report.profile
    root = (root or Path.cwd()).absolute()
    rule_ids = list(dict.fromkeys([*CHECK_DESCRIPTIONS, *(f.check for f in findings)]))
    results = []
    for finding in findings:
        result: dict[str, Any] = {
            "ruleId": finding.check,
            "ruleIndex": rule_ids.index(finding.check),
            "level": SARIF_LEVEL[finding.severity],
            "message": {"text": finding.reason},
            "partialFingerprints": {"argocdMirrorFinding/v1": fingerprint(finding)},
            "properties": {"objects": list(finding.objects), "evidence": finding.evidence,
                           **{k: v for k, v in finding.to_dict().items() if k in ("origin", "baseline", "waiver")}},
        }
        if finding.baseline:  # SARIF's own word for it, which code-scanning UIs show
            result["baselineState"] = "new" if finding.baseline == NEW else "unchanged"
        locations = [{
            "physicalLocation": {"artifactLocation": artifact, "region": {"startLine": max(obj.line, 1)}},
            "logicalLocations": [{"fullyQualifiedName": str(obj.ref), "kind": "resource"}],
        } for obj in _locations(bundle, finding) if (artifact := _artifact(obj.source, root)) is not None]
        if locations:
            result["locations"] = locations
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "argocd-mirror preflight", "version": __version__, "informationUri": INFORMATION_URI,
                "rules": [{"id": rule, "shortDescription": {"text": CHECK_DESCRIPTIONS.get(rule, rule)},
                           "helpUri": f"{DOCS_URI}#checks",
                           "help": _help(rule)}
                          for rule in rule_ids],
            }},
            "originalUriBaseIds": {SRCROOT: {"uri": root.as_uri() + "/"}},
            "properties": {"profile": profile.name, "kubernetesVersion": profile.kubernetes_version,
                           "applyMode": report.apply_mode},
            "results": results,
        }],
    }
    return json.dumps(log, indent=2, default=str)


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown, "sarif": render_sarif}
