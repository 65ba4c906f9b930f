"""Client-side apply annotation size: objects `kubectl apply` (without --server-side) cannot create.

Client-side apply stores the whole object as JSON in annotation
kubectl.kubernetes.io/last-applied-configuration, and the API server rejects an object whose annotations
(keys plus values, all of them) exceed 262144 bytes (apimachinery ValidateAnnotationsSize,
TotalAnnotationSizeLimitB = 256 KiB): "metadata.annotations: Too long: must have at most 262144 bytes".
Argo CD's applicationsets.argoproj.io CRD has been over that since v3.3, so only server-side apply works.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from validator.manifests import Bundle, KubeObject
from validator.preflight import Finding
from validator.profiles import Profile

CHECK = "client-side-apply-size"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * (1 << 10)  # apimachinery TotalAnnotationSizeLimitB
# Go's encoding/json escapes these even in compact output (HTML-safe by default, plus JS line separators).
_GO_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
                             "\u2029": "\\u2029"})


def last_applied(obj: KubeObject) -> str:
    """The annotation value kubectl would write: the object as compact Go JSON, annotation itself removed.

    As kubectl's GetModifiedConfiguration does: drop any existing last-applied annotation, keep
    `annotations: {}` when that leaves none (kubectl sets the emptied map back), default the namespace
    of namespaced objects (`kubectl apply -n`), encode with sorted keys, and end with the newline that
    json.Encoder appends.
    """
    body: dict[str, Any] = copy.copy(obj.body)
    metadata = dict(body.get("metadata") or {})
    annotations = {k: v for k, v in (metadata.get("annotations") or {}).items() if k != LAST_APPLIED}
    metadata["annotations"] = annotations
    if obj.namespace:
        metadata["namespace"] = obj.namespace
    body["metadata"] = metadata
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.translate(_GO_ESCAPES) + "\n"


def annotations_size(obj: KubeObject) -> tuple[int, int]:
    """(total bytes of all annotations after client-side apply, bytes of the last-applied value)."""
    value = len(last_applied(obj).encode("utf-8"))
    others = sum(len(str(k).encode()) + len(str(v).encode())
                 for k, v in ((obj.body.get("metadata") or {}).get("annotations") or {}).items() if k != LAST_APPLIED)
    return others + len(LAST_APPLIED) + value, value


def check(bundle: Bundle, profile: Profile, apply_mode: str) -> list[Finding]:
    if apply_mode != "client-side":
        return []  # server-side apply tracks fields in managedFields, no annotation
    findings = []
    for obj in bundle:
        total, value = annotations_size(obj)
        if total > TOTAL_ANNOTATION_SIZE_LIMIT:
            findings.append(Finding(
                CHECK, "error", (str(obj.ref),),
                f"{obj.kind} {obj.name}: client-side apply would write a {value}-byte {LAST_APPLIED} annotation "
                f"({total} bytes of annotations, limit {TOTAL_ANNOTATION_SIZE_LIMIT}); the API server rejects it "
                "with 'metadata.annotations: Too long' - use server-side apply (kubectl apply --server-side)",
                {"annotations_bytes": total, "last_applied_bytes": value, "limit_bytes": TOTAL_ANNOTATION_SIZE_LIMIT,
                 "source": obj.where},
            ))
    return findings
