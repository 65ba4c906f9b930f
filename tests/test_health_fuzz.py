"""Bad input never raises: arbitrary JSON-shaped objects (with the field names the rules read, wrong types and all)
through assess, explain, evidence, environment_exempt, owner_of, and FailFast.observe. A malformed object may read
Unknown or give no signal, but never a traceback, and never Healthy by accident of a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from validator.failfast import FailFast
from validator.health import (
    CHECKS,
    HealthStatus,
    KStatus,
    assess,
    environment_exempt,
    evidence,
    explain,
    kstatus,
    owner_of,
)

FIELDS = ["status", "spec", "metadata", "conditions", "containerStatuses", "initContainerStatuses", "state",
          "lastState", "waiting", "terminated", "running", "reason", "message", "exitCode", "restartCount", "ready",
          "phase", "type", "replicas", "updatedReplicas", "availableReplicas", "readyReplicas", "observedGeneration",
          "generation", "paused", "updateStrategy", "rollingUpdate", "partition", "loadBalancer", "ingress",
          "ownerReferences", "labels", "annotations", "name", "namespace", "uid", "kind", "controller",
          "deletionTimestamp", "restartPolicy", "desiredNumberScheduled", "numberAvailable", "service", "suspend",
          "lastScheduleTime", "lastSuccessfulTime", "active", "pod-template-hash"]
STRINGS = ["True", "False", "Unknown", "CrashLoopBackOff", "ErrImagePull", "Running", "Pending", "Failed", "Bound",
           "Lost", "LoadBalancer", "OnDelete", "RollingUpdate", "ReplicaSet", "Installing", "Established",
           "NamesAccepted", "ReplicaFailure", "Progressing", "ProgressDeadlineExceeded", "Always", "Never", "", "x"]
scalars = st.none() | st.booleans() | st.integers(-3, 5) | st.floats(allow_nan=True) | st.sampled_from(STRINGS)
json_like = st.recursive(scalars, lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
    st.sampled_from(FIELDS), kids, max_size=5), max_leaves=25)
kinds = st.sampled_from(sorted(CHECKS)) | st.tuples(st.sampled_from(["", "apps", "x.io"]),
                                                    st.sampled_from(["Pod", "Foo"]))
versions = st.sampled_from(["v1", "v2", "v1beta1"])


@st.composite
def live_objects(draw: st.DrawFn) -> dict[str, Any]:
    group, kind = draw(kinds)
    version = draw(versions)
    out: dict[str, Any] = {"apiVersion": f"{group}/{version}" if group else version, "kind": kind}
    for key in ("metadata", "spec", "status"):
        if draw(st.booleans()):
            out[key] = draw(json_like)
    return out


@settings(max_examples=800, deadline=None)
@given(live_objects(), st.booleans())
def test_nothing_raises_on_malformed_objects(live: dict[str, Any], strict: bool) -> None:
    health = assess(live, strict=strict)
    assert health.status is None or isinstance(health.status, HealthStatus)
    assert isinstance(health.message, str)
    explain(live, health)
    evidence(live)
    environment_exempt(live, health)
    owner_of(live)
    assert isinstance(kstatus(live, age_s=30).status, KStatus)
    ff = FailFast()
    ff.observe(live, 0.0)
    ff.observe(live, 1e6)
    ff.forget(live)
