"""Install a candidate bundle the way production does, in an order that makes the mirror meaningful.

Server-side apply by default, through the Python client's apply patch (``PATCH`` with content type
``application/apply-patch+yaml``, ``fieldManager=argocd-mirror``, ``force=true``). That is the request
``kubectl apply --server-side --force-conflicts`` sends for every object: the merge, ownership and
validation all happen in the API server, so the outcome is the same, while this path needs no kubectl
binary, gives the server's error text per object, and can be driven in tests over HTTP against the API
double. ``client-side`` mode mirrors plain ``kubectl apply``: the whole object is stored in the
``kubectl.kubernetes.io/last-applied-configuration`` annotation, so the API server's 262144-byte annotation
limit rejects large CRDs exactly as it does for users (updates are sent as a JSON merge patch of the whole
object plus kubectl's three-way deletions: a key the previous apply set and this one drops is removed; lists
are replaced whole, a simplification of strategic merge that changes nothing for a fresh install).

Before the first object of the candidate is applied, the whole bundle goes through a server-side dry run
(``dryRun=All`` on the very requests the apply sends), so every object the API server refuses is reported in one
failure, not one per run; what needs something only the bundle creates (custom resources of its CRDs) waits for the
real apply.

Order: the namespace first; then everything Argo CD would sync before workloads (NetworkPolicies,
accounts, config, CRDs, RBAC, Services, in gitops-engine's kind order), with CRDs waited on until
Established; then an optional hook (the harness proves NetworkPolicy enforcement there, so policies
already constrain the first pod as they would in a long-running cluster); then workloads; then custom
resources. ``previous`` turns the run into an upgrade or rollback: objects of ``previous`` absent from the
candidate are pruned afterwards, as Argo CD's sync with prune does.

The API edge (``Kube``) lives in validator/kubeapi.py, shared with watch, diagnose and the cluster layer.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import urllib3
from kubernetes.client import ApiClient
from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_fixed

from validator.errors import CandidateFailed, EnvironmentNotReady, InputError
from validator.kubeapi import Kube, KubeError, iter_lines
from validator.manifests import APPLY_ORDER, Bundle, KubeObject, containers_of, crd_kind, pod_spec, split_image
from validator.text import some

FIELD_MANAGER = "argocd-mirror"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
# kubectl (validate=strict, the default since 1.27) and Argo CD's sync (unless Validate=false) ask the API server
# to refuse unknown or duplicate fields; a bare API request gets Warn, which drops them silently. Ask as they do,
# or a manifest production rejects would install on the mirror.
STRICT = {"fieldValidation": "Strict"}
MODES = ("server-side", "client-side")
WORKLOAD_KINDS = frozenset({"DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment", "StatefulSet",
                            "Job", "CronJob"})
Progress = Callable[[str], None]


# --------------------------------------------------------------------------------------------------
# Install
# --------------------------------------------------------------------------------------------------

@dataclass
class DryRun:
    """What the API server said of each object of a bundle before anything of it was applied."""

    accepted: list[str] = field(default_factory=list)
    not_checked: dict[str, str] = field(default_factory=dict)  # object -> why it was not dry-run
    rejected: list[str] = field(default_factory=list)  # "<Kind> <namespace>/<name> (<where>): <the server's message>"

    def summary(self) -> str:
        """The progress line: 'dry run: 57 objects accepted by the API server (3 deferred: ...)'."""
        counts = Counter(self.not_checked.values())
        skipped = "; ".join(f"{n} {why}" for why, n in counts.items())
        return f"dry run: {len(self.accepted)} objects accepted by the API server{f' ({skipped})' if skipped else ''}"


@dataclass
class InstallResult:
    """What the install did, for the report."""

    mode: str
    dry_run: DryRun | None = None
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    established: list[str] = field(default_factory=list)  # CRDs seen Established
    elapsed_s: float = 0.0


def _body(obj: KubeObject) -> dict[str, Any]:
    """The object as sent: namespace defaulted (as `kubectl apply -n`)."""
    body = json.loads(json.dumps(obj.body))
    if obj.namespace:
        body["metadata"]["namespace"] = obj.namespace
    return body


def phases(bundle: Bundle) -> tuple[list[KubeObject], list[KubeObject], list[KubeObject]]:
    """(prerequisites incl. NetworkPolicies and CRDs, workloads and the rest, custom resources), in apply order."""
    ordered = bundle.in_apply_order()
    known = set(APPLY_ORDER)
    first_workload = min((APPLY_ORDER.index(k) for k in WORKLOAD_KINDS if k in known), default=len(APPLY_ORDER))
    prereq = [o for o in ordered if o.kind in known and APPLY_ORDER.index(o.kind) < first_workload]
    custom = [o for o in ordered if o.kind not in known]
    placed = {id(o) for o in prereq + custom}
    rest = [o for o in ordered if id(o) not in placed]
    return prereq, rest, custom


def _last_applied(live: Any) -> dict[str, Any]:
    """What the previous client-side apply sent, from the live object's annotation ({} if none or unreadable)."""
    metadata = live.get("metadata") if isinstance(live, dict) else None
    annotations = (metadata or {}).get("annotations") or {}
    try:
        previous = json.loads(annotations.get(LAST_APPLIED) or "{}")
    except ValueError:
        return {}
    return previous if isinstance(previous, dict) else {}


def with_deletions(new: dict[str, Any], previous: dict[str, Any]) -> dict[str, Any]:
    """The merge patch `kubectl apply` sends, for mappings: the new object, plus null (delete) for every key
    the previous apply set and this one no longer does. Keys others added (the API server's defaults,
    controllers) are left alone, exactly as kubectl's three-way merge leaves them."""
    patch = dict(new)
    for key, old_value in previous.items():
        if key not in new:
            patch[key] = None
        elif isinstance(old_value, dict) and isinstance(new[key], dict):
            patch[key] = with_deletions(new[key], old_value)
    return patch


def _apply_request(kube: Kube, obj: KubeObject, mode: str, dry_run: bool = False) -> Any:
    """The writes `kubectl apply` makes for one object, answered by the API server (KubeError if refused); with
    dry_run, each write asks for dryRun=All: judged and answered as the real one, nothing persisted."""
    query = {**STRICT, "dryRun": "All"} if dry_run else STRICT
    client_side = {**query, "fieldManager": "kubectl-client-side-apply"}
    res = kube.resource(obj.api_version, obj.kind)
    path = res.path(obj.namespace, obj.name)
    body = _body(obj)
    if mode == "server-side":
        return kube.call("PATCH", path, body, {**query, "fieldManager": FIELD_MANAGER, "force": "true"},
                         content_type="application/apply-patch+yaml")
    body.setdefault("metadata", {}).setdefault("annotations", {})[LAST_APPLIED] = (
        json.dumps(_body(obj), separators=(",", ":"), sort_keys=True) + "\n")
    live = _get_or_none(kube, path)
    if live is None:
        try:
            return kube.call("POST", res.path(obj.namespace), body, client_side)
        except KubeError as exc:
            if exc.reason != "AlreadyExists":
                raise
            live = kube.call("GET", path)  # a retried POST whose first try had landed: update instead
    patch = with_deletions(body, _last_applied(live))
    return kube.call("PATCH", path, patch, client_side, content_type="application/merge-patch+json")


def _not_the_candidates(what: str, exc: KubeError) -> EnvironmentNotReady | None:
    """The refusal as "could not validate" when it is not the candidate's doing (a failing API server, our access,
    a namespace being deleted), else None."""
    if exc.transient:
        return EnvironmentNotReady(f"{what}: API server failing: {exc.message}")
    if why := _mirror_problem(exc):
        return EnvironmentNotReady(f"{what}: {why}: {exc.message}")
    return None


def apply_one(kube: Kube, obj: KubeObject, mode: str) -> dict[str, Any]:
    """Apply one object; an API rejection (4xx) becomes CandidateFailed with the server's message."""
    try:
        result = _apply_request(kube, obj, mode)
    except KubeError as exc:
        if problem := _not_the_candidates(f"apply {obj.ref}", exc):
            raise problem from None
        if exc.reason == "NotFound" and "no matches for kind" in exc.message:
            raise CandidateFailed(f"apply {obj.ref} ({obj.where}): {exc.message}; ensure CRDs are installed first") \
                from None
        raise CandidateFailed(f"apply {obj.ref} ({obj.where}) rejected by the API server: {exc.message}") from None
    return result if isinstance(result, dict) else {}


def _get_or_none(kube: Kube, path: str) -> Any:
    try:
        return kube.call("GET", path)
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise


def _mirror_problem(exc: KubeError) -> str | None:
    """Why a refusal is the mirror's fault, not the candidate's, or None.

    401 and RBAC 403s ('User "x" cannot create resource ...') are our access; a 403 'unable to create new
    content in namespace x because it is being terminated' is a namespace left by an earlier run. Other 403s
    (an admission policy or webhook denying the object) are about the candidate.
    """
    if exc.status == 401 or (exc.status == 403 and " cannot " in exc.message):
        return "our credentials may not do this"
    if exc.status == 403 and "because it is being terminated" in exc.message:
        return "its namespace is being deleted"
    return None


# Why an object was not dry-run (the key of DryRun.not_checked's counts in the progress line).
REJECTIONS_QUOTED = 10  # rejections the root-cause line names before "N more"
DEFERRED = "deferred: what they need (CRD, namespace...) comes with the bundle"
NO_DRY_RUN_WEBHOOK = "unchecked: an admission webhook of the cluster does not support dry run"
_MISSING = re.compile(r'([a-z0-9.-]+) "([^"]+)" not found')  # apimachinery's NotFound: 'serviceaccount "x" not found'


def _plurals(kind: str) -> set[str]:
    k = kind.lower()
    return {k, f"{k}s", f"{k}es", f"{k[:-1]}ies"}


def _not_judged(exc: KubeError, bundle: Bundle) -> str | None:
    """Why a dry-run refusal says nothing about the candidate, or None (a rejection).

    Nothing is created during a dry run, so a check against another object (a namespace, the ServiceAccount a Pod
    names, the Role a binding grants to a user without `bind`) cannot pass for an object the bundle brings first:
    a NotFound naming one of the bundle's objects is deferred to the real apply. A webhook that does not declare
    itself free of side effects refuses every dry run (400), whatever the object: the real apply judges it.
    """
    if exc.status == 400 and "does not support dry run" in exc.message:
        return NO_DRY_RUN_WEBHOOK
    if exc.status in (403, 404):
        for resource, name in _MISSING.findall(exc.message):
            if any(o.name == name and resource.split(".")[0] in _plurals(o.kind) for o in bundle):
                return DEFERRED
    return None


def dry_run(kube: Kube, bundle: Bundle, mode: str) -> DryRun:
    """Send every object's apply request with dryRun=All, in apply order, and collect what the API server rejects.

    Raises CandidateFailed naming every rejected object with the server's message (a real apply would stop at the
    first), EnvironmentNotReady when the refusal is not the candidate's (as apply_one). Custom resources of a CRD
    the bundle brings are not sent unless the cluster already serves that CRD Established and the candidate's
    would not change it: judged against no CRD, or an older one, a healthy resource could be refused.
    """
    result = DryRun()
    own_crds = {crd_kind(o.body) for o in bundle if o.kind == "CustomResourceDefinition"}
    served: set[tuple[str, str]] = set()  # the bundle's CRDs the cluster serves already, as the candidate has them
    stopped = ""
    prereq, rest, custom = phases(bundle)
    for obj in prereq + rest + custom:
        if (obj.group, obj.kind) in own_crds and (obj.group, obj.kind) not in served:
            result.not_checked[str(obj.ref)] = DEFERRED
            continue
        try:
            live = _get_or_none(kube, kube.path_of(obj)) if obj.kind == "CustomResourceDefinition" else None
            would_be = _apply_request(kube, obj, mode, dry_run=True)
        except KubeError as exc:
            if problem := _not_the_candidates(f"dry run of {obj.ref}", exc):
                if not result.rejected:
                    raise problem from None
                stopped = f" (and no verdict on the rest: {problem})"
                break
            if why := _not_judged(exc, bundle):
                result.not_checked[str(obj.ref)] = why
            else:
                name = f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name
                result.rejected.append(f"{obj.kind} {name} ({obj.where}): {exc.message}")
            continue
        if live is not None and _established(live) and isinstance(would_be, dict) and \
                would_be.get("spec") == live.get("spec"):
            served.add(crd_kind(obj.body))
        result.accepted.append(str(obj.ref))
    if result.rejected:
        listed = some(result.rejected, REJECTIONS_QUOTED)  # then "N more": one line that stays readable
        raise CandidateFailed(f"API server rejected {len(result.rejected)} object(s) (dry run): "
                              f"{'; '.join(listed)}{stopped}")
    return result


def ensure_namespace(kube: Kube, namespace: str, mode: str) -> None:
    """`kubectl apply -n argocd` needs the namespace; create it like `kubectl create namespace` if absent.

    A namespace still Terminating (left by an earlier run on an `existing` cluster) would refuse every object
    with a 403 that reads like the candidate's fault, so it is reported as the mirror's problem up front."""
    ns = KubeObject({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    try:
        live = _get_or_none(kube, kube.path_of(ns))
    except KubeError as exc:
        raise EnvironmentNotReady(f"namespace {namespace}: {exc.message}") from None
    if live is None:
        apply_one(kube, ns, mode)
    elif (live.get("status") or {}).get("phase") == "Terminating":
        raise EnvironmentNotReady(f"namespace {namespace} is still being deleted (Terminating): wait until it is "
                                  "gone, or use a fresh cluster")


def _established(crd: dict[str, Any]) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])


def _names_problem(crd: dict[str, Any]) -> str | None:
    for c in (crd.get("status") or {}).get("conditions") or []:
        if c.get("type") == "NamesAccepted" and c.get("status") == "False":
            return f"names not accepted: {c.get('message', '')}"
    return None


def wait_established(kube: Kube, names: list[str], timeout_s: float = 60) -> list[str]:
    """Watch CRDs until every named one is Established (list once, then one watch stream; no polling).

    A 410 (our resourceVersion compacted away) means list again *and read the items*: a CRD established in
    the gap sends no further event, so a relist that kept only its resourceVersion would wait for nothing.
    Other ERROR events (a 5xx from the watch cache) and dropped streams resume from the last version.
    """
    if not names:
        return []
    res = kube.resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    pending = set(names)
    deadline = time.monotonic() + timeout_s

    def observe(crd: dict[str, Any]) -> None:
        name = (crd.get("metadata") or {}).get("name")
        if name not in pending:
            return
        if why := _names_problem(crd):
            raise CandidateFailed(f"CustomResourceDefinition {name}: {why}")
        if _established(crd):
            pending.discard(name)

    def relist() -> str:
        listing = kube.call("GET", res.path())
        for crd in listing.get("items") or []:
            observe(crd)
        return str((listing.get("metadata") or {}).get("resourceVersion") or "")  # "": watch from now

    rv: str | None = relist()  # None: the version expired, list again
    while pending:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            try:  # the last word is a fresh list: a watch that kept failing must not be read as "not Established"
                relist()
            except KubeError as exc:
                raise EnvironmentNotReady(f"CustomResourceDefinitions could not be read at the {timeout_s:.0f} s "
                                          f"deadline: {exc.message}") from None
            if pending:
                raise CandidateFailed(f"CustomResourceDefinitions not Established within {timeout_s:.0f} s: "
                                      f"{', '.join(sorted(pending))}")
            break
        try:
            if rv is None:
                rv = relist()
                continue
            response = kube.stream(res.path(), {"watch": "true", "resourceVersion": rv,
                                                "timeoutSeconds": max(1, int(remaining))}, remaining + 5)
            try:
                for line in iter_lines(response):
                    event = json.loads(line)
                    crd = event.get("object") or {}
                    if event.get("type") == "ERROR":
                        if crd.get("code") == 410:
                            rv = None
                        else:
                            time.sleep(0.1)
                        break
                    rv = (crd.get("metadata") or {}).get("resourceVersion", rv)
                    observe(crd)
                    if not pending:
                        break
            finally:
                response.close()  # possibly left mid-stream: never back into the pool
        except KubeError as exc:
            if exc.status == 410:  # the expiry answered as an HTTP status instead of an in-stream event
                rv = None
            elif not exc.transient:
                raise EnvironmentNotReady(f"watching CRDs: {exc.message}") from None
            time.sleep(0.1)
        except (urllib3.exceptions.HTTPError, OSError, ValueError):
            time.sleep(0.1)  # a dropped or garbled stream: reconnect (bounded by the deadline)
    kube.forget_discovery()  # the new kinds are served now
    return sorted(names)


def await_discovery(kube: Kube, api_version: str, kind: str, timeout_s: float = 10) -> None:
    """Give discovery a moment to list a kind whose CRD was just Established (the discovery documents are
    updated asynchronously), so a short lag is not reported as the candidate's "no matches for kind". A kind
    still unknown afterwards is left to apply_one, which says so."""
    not_yet = retry_if_exception(lambda exc: isinstance(exc, KubeError) and exc.status == 404)
    with contextlib.suppress(KubeError):
        for attempt in Retrying(retry=not_yet, stop=stop_after_delay(timeout_s), wait=wait_fixed(0.25), reraise=True):
            with attempt:
                kube.resource(api_version, kind)  # asks discovery again while the kind is not listed


def namespaces_of(bundle: Bundle) -> set[str]:
    """Every namespace installing BUNDLE writes into or creates."""
    return ({o.namespace for o in bundle if o.namespace} | {o.name for o in bundle if o.kind == "Namespace"}
            | {bundle.namespace})


def cluster_claims(bundle: Bundle) -> set[tuple[str, str]]:
    """(kind, name) of what installing BUNDLE writes at cluster scope: its namespaces and cluster-scoped objects."""
    return {("Namespace", ns) for ns in namespaces_of(bundle)} | {(o.kind, o.name) for o in bundle if not o.namespace}


def prune(kube: Kube, previous: Bundle, bundle: Bundle, progress: Progress | None = None) -> list[str]:
    """Delete objects of `previous` the candidate no longer has (reverse apply order, background cascade)."""
    pruned = []
    in_use = namespaces_of(bundle)
    for obj in reversed(previous.in_apply_order()):
        if obj.ref in bundle.index:
            continue
        if obj.kind == "Namespace" and obj.name in in_use:
            continue  # deleting it would delete the candidate we just applied
        try:
            kube.call("DELETE", kube.path_of(obj), query={"propagationPolicy": "Background"})
        except KubeError as exc:
            if exc.status == 404:
                continue
            if exc.transient:
                raise EnvironmentNotReady(f"prune {obj.ref}: {exc.message}") from None
            raise CandidateFailed(f"prune {obj.ref}: {exc.message}") from None
        pruned.append(str(obj.ref))
        if progress:
            progress(f"pruned {obj.ref}")
    return pruned


def install(api: ApiClient, bundle: Bundle, mode: str = "server-side", previous: Bundle | None = None,
            progress: Progress | None = None, before_workloads: Callable[[ApiClient], None] | None = None,
            crd_timeout_s: float = 60) -> InstallResult:
    """Apply `bundle` (over `previous` when upgrading/rolling back, pruning what it dropped).

    `before_workloads(api)` runs after policies/config/CRDs and before any workload: the harness passes a call to
    prove_networkpolicy_enforced there. Raises CandidateFailed on a rejected object, EnvironmentNotReady when the
    API server cannot be used.
    """
    if mode not in MODES:
        raise InputError(f"unknown apply mode {mode!r} (use one of: {', '.join(MODES)})")
    started = time.monotonic()
    kube = Kube(api)
    result = InstallResult(mode=mode)
    say = progress or (lambda _msg: None)
    ensure_namespace(kube, bundle.namespace, mode)
    result.dry_run = dry_run(kube, bundle, mode)
    say(result.dry_run.summary())
    prereq, rest, custom = phases(bundle)
    for obj in prereq:
        apply_one(kube, obj, mode)
        result.applied.append(str(obj.ref))
    crds = [o.name for o in prereq if o.kind == "CustomResourceDefinition"]
    if crds:
        say(f"waiting for {len(crds)} CRDs to be Established")
        result.established = wait_established(kube, crds, crd_timeout_s)
    if before_workloads is not None:
        before_workloads(api)
    served_now = {crd_kind(o.body) for o in prereq if o.kind == "CustomResourceDefinition"}
    for api_version, kind in dict.fromkeys((o.api_version, o.kind) for o in custom if (o.group, o.kind) in served_now):
        await_discovery(kube, api_version, kind)
    for obj in rest + custom:
        apply_one(kube, obj, mode)
        result.applied.append(str(obj.ref))
    say(f"applied {len(result.applied)} objects ({mode} apply)")
    if previous is not None:
        result.pruned = prune(kube, previous, bundle, progress)
    result.elapsed_s = time.monotonic() - started
    return result


# --------------------------------------------------------------------------------------------------
# What runs must be what was asked for
# --------------------------------------------------------------------------------------------------

def normalize_image(image: str) -> tuple[str, str | None, str | None]:
    """(repository with registry and library/ defaulted, tag, digest): 'redis:7' == 'docker.io/library/redis:7'."""
    repo, tag, digest = split_image(image)
    first = repo.split("/", 1)[0]
    if "/" not in repo or ("." not in first and ":" not in first and first != "localhost"):
        repo = f"docker.io/{repo}" if "/" in repo else f"docker.io/library/{repo}"
    if tag is None and digest is None:
        tag = "latest"
    return repo, tag, digest


def image_mismatches(workload: dict[str, Any], pods: list[dict[str, Any]]) -> list[str]:
    """Containers of the workload's current pods that run a different image than the candidate specifies.

    Pods whose own spec differs from the workload's template belong to an older revision and are skipped.
    """
    spec = pod_spec(KubeObject(workload)) or {}
    wanted = {c.get("name"): str(c.get("image", "")) for _, c in containers_of(spec)}
    problems = []
    for pod in pods:
        pod_wants = {c.get("name"): str(c.get("image", "")) for _, c in containers_of(pod.get("spec") or {})}
        if pod_wants != wanted:
            continue
        status = pod.get("status") or {}
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            want = wanted.get(cs.get("name"))
            running = str(cs.get("image") or "")
            pulled = bool(cs.get("imageID")) or bool((cs.get("state") or {}).get("running"))
            if not want or not running or not pulled:
                continue
            w_repo, w_tag, w_digest = normalize_image(want)
            r_repo, r_tag, r_digest = normalize_image(running)
            image_id = str(cs.get("imageID") or "")
            if running.startswith("sha256:"):  # containerd may report only the image ID (several tags, one image)
                if not w_digest:
                    continue  # cannot tell which tag: no evidence of a mismatch
                same = w_digest in image_id or running == w_digest
            elif w_digest:
                same = w_repo == r_repo and (w_digest in image_id or w_digest == r_digest)
            else:
                same = w_repo == r_repo and w_tag == r_tag
            if not same:
                problems.append(f"Pod/{pod['metadata'].get('namespace')}/{pod['metadata']['name']} container "
                                f"{cs.get('name')} runs {running}, the candidate specifies {want}")
    return problems
