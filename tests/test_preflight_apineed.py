"""The evidence ladder for "this container calls the Kubernetes API" (validator.preflight.apineed)."""

from __future__ import annotations

from typing import Any

import pytest

from validator.preflight.apineed import api_call


def container(command: list[str] | None = None, args: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "c", "image": "quay.io/argoproj/argocd:v3.5.1"}
    if command is not None:
        body["command"] = command
    if args is not None:
        body["args"] = args
    return body


@pytest.mark.parametrize(("command", "args", "call"), [
    (["argocd", "admin", "redis-initial-password"], None, "`argocd admin redis-initial-password`, which creates"),
    (["argocd-server", "--insecure"], None, "`argocd-server`, which reads"),
    (None, ["/usr/local/bin/argocd-application-controller"], "`argocd-application-controller`, which watches"),
    (["entrypoint.sh", "argocd-applicationset-controller"], None, "`argocd-applicationset-controller`, which watches"),
    (None, ["/usr/local/bin/argocd-notifications"], "`argocd-notifications`, which watches"),
    (["/shared/argocd-dex", "rundex"], None, "`argocd-dex rundex`, which reads"),
    (["sh", "-c"], ["set -e; kubectl apply -f /manifests"], "`kubectl apply`, which talks to the API server"),
    (["kubectl", "get", "pods"], None, "`kubectl get`"),
])
def test_programs_known_to_call_the_api(command: list[str] | None, args: list[str] | None, call: str) -> None:
    found = api_call(container(command, args))
    assert found is not None and found.startswith(call), found


@pytest.mark.parametrize(("command", "args"), [
    (["/bin/cp", "-n", "/usr/local/bin/argocd", "/shared/argocd-dex"], None),  # Argo CD's dex init container
    (["sh", "-c"], ["/bin/cp /usr/local/bin/argocd /var/run/argocd/argocd && /bin/ln -sf /var/run/argocd/argocd "
                    "/var/run/argocd/argocd-cmp-server"]),
    (["sh"], ["/readonly/haproxy_init.sh"]),  # redis-ha haproxy's config-init
    (None, ["/usr/local/bin/argocd-repo-server"]),  # reads no API (its token is not even mounted)
    (["argocd", "admin", "settings", "validate"], None),  # an admin subcommand we know nothing about
    (["kubectl", "kustomize", "/src"], None),  # client-only
    (["redis-server", "/data/conf/redis.conf"], None),
    (None, None),
])
def test_other_programs_are_not_evidence(command: list[str] | None, args: list[str] | None) -> None:
    assert api_call(container(command, args)) is None
