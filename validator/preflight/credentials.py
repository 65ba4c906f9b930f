"""A container that calls the Kubernetes API but gets no ServiceAccount token: it fails on its first call.

`automountServiceAccountToken: false` on the pod template or on its ServiceAccount keeps the kubelet from
mounting /var/run/secrets/kubernetes.io/serviceaccount. A client that then looks for in-cluster credentials finds
none: client-go's loader (what every Argo CD binary and kubectl use) fails with "invalid configuration: no
configuration has been provided". Certain only for containers that run a known API caller
(validator.preflight.apineed) and bring no kubeconfig of their own, so only those are reported, as errors.
"""

from __future__ import annotations

from typing import Any

from validator.manifests import Bundle, containers_of
from validator.preflight import Finding
from validator.preflight.apineed import api_call, command_line, token_mount
from validator.preflight.selectors import Lookup, pod_templates
from validator.profiles import Profile

CHECK = "api-credentials"
CLIENT_GO_ERROR = "invalid configuration: no configuration has been provided"


def brings_kubeconfig(container: dict[str, Any]) -> bool:
    """A KUBECONFIG variable or a --kubeconfig flag: credentials from elsewhere, so no token proves nothing."""
    env = container.get("env") or []
    named = any(isinstance(var, dict) and var.get("name") == "KUBECONFIG" for var in env)
    return named or any(word.startswith("--kubeconfig") for word in command_line(container))


def check(bundle: Bundle, profile: Profile, apply_mode: str) -> list[Finding]:
    findings = []
    lookup = Lookup(bundle)
    for tmpl in pod_templates(bundle):
        callers = [(c, call) for _, c in containers_of(tmpl.spec) if (call := api_call(c)) is not None]
        if not callers:
            continue
        token = token_mount(lookup, tmpl)
        if token.mounted:
            continue
        for container, call in callers:
            if brings_kubeconfig(container):
                continue
            name = str(container.get("name"))
            findings.append(Finding(
                CHECK, "error", (str(tmpl.owner.ref),),
                f"{tmpl.label}: container {name} runs {call}, but no ServiceAccount token is mounted "
                f"({token.setting}): it will fail with \"{CLIENT_GO_ERROR}\"; mount the token "
                "(automountServiceAccountToken: true on the pod template) or a projected serviceAccountToken volume",
                {"owner": str(tmpl.owner.ref), "container": name, "api_call": call,
                 "service_account": token.account, "token_removed_by": token.setting}))
    return findings
