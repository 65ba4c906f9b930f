"""The kind provider: a pinned kind binary driven with argument lists, a kubeconfig of our own per run."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Sequence
from pathlib import Path

from validator.cluster import images, kindconfig, owner
from validator.cluster.base import Provider
from validator.cluster.kubeapi import ApiError, request, wait_ready
from validator.cluster.kubeconfig import check_kind_kubeconfig
from validator.cluster.model import Cluster
from validator.cluster.tools import Progress, classify_kind_failure, docker_ping, find_tool, last_error, run
from validator.errors import EnvironmentNotReady
from validator.files import atomic_write
from validator.profiles import Profile

NAME_PREFIX = "argocd-mirror-"
KIND_REMEDY = (f"install kind {images.KIND_RELEASE} "
               f"(https://github.com/kubernetes-sigs/kind/releases/tag/{images.KIND_RELEASE})")
KUBECTL_REMEDY = "install kubectl (needed to install Calico for the calico profile)"


def kind_binary() -> str:
    """$ARGOCD_MIRROR_KIND (a pinned binary, e.g. from helm/kind-action's tool cache) or `kind` on PATH."""
    pinned = os.environ.get("ARGOCD_MIRROR_KIND")
    if pinned:
        if not (os.path.isfile(pinned) and os.access(pinned, os.X_OK)):
            raise EnvironmentNotReady(f"ARGOCD_MIRROR_KIND={pinned} is not an executable file: {KIND_REMEDY}")
        return pinned
    return find_tool("kind", KIND_REMEDY)


def _kind_version(kind: str) -> images.KindVersion:
    proc = run([kind, "version"], timeout_s=30)
    if proc.returncode != 0:
        raise EnvironmentNotReady(f"`kind version` failed: {last_error(proc)}")
    version = images.parse_kind_version(proc.stdout)
    images.check_kind_version(version)
    return version


def prerequisites(profile: Profile) -> tuple[str, images.KindVersion]:
    """(kind binary, its version) when this machine can host the profile's mirror; else one EnvironmentNotReady
    that lists every missing prerequisite (Docker, kind and its version, kubectl for Calico), so a user fixes
    them in one go instead of meeting them one run at a time."""
    problems: list[str] = []
    kind, version = "", None
    try:
        docker_ping()
    except EnvironmentNotReady as exc:
        problems.append(str(exc))
    try:
        kind = kind_binary()
        version = _kind_version(kind)
    except EnvironmentNotReady as exc:
        problems.append(str(exc))
    if profile.cni == "calico":
        try:
            find_tool("kubectl", KUBECTL_REMEDY)
        except EnvironmentNotReady as exc:
            problems.append(str(exc))
    if problems or version is None:
        head = "missing prerequisites: " if len(problems) > 1 else ""
        raise EnvironmentNotReady(head + "; ".join(f"({n}) {p}" if len(problems) > 1 else p
                                                   for n, p in enumerate(problems, 1)))
    return kind, version


def new_cluster_name() -> str:
    """argocd-mirror-<8 hex>: unique per run, matches kind's ^[a-z0-9.-]+$ and GENERATED_NAME."""
    return NAME_PREFIX + secrets.token_hex(4)


# Exactly what new_cluster_name() makes: the sweeper deletes these and nothing else. A prefix alone also matched a
# team's own `argocd-mirror-dev` or `argocd-mirror-staging-2`.
GENERATED_NAME = re.compile(re.escape(NAME_PREFIX) + r"[0-9a-f]{8}")


def is_generated_name(name: str) -> bool:
    return GENERATED_NAME.fullmatch(name) is not None


def create_argv(kind: str, name: str, config: Path, image: str, kubeconfig: Path, wait: str | None,
                retain: bool = False) -> list[str]:
    """RETAIN: kind leaves the nodes of a failed create (it deletes them otherwise), for `kind export logs` and a
    kept cluster; the teardown deletes them when the cluster is not to be kept."""
    argv = [kind, "create", "cluster", "--name", name, "--config", str(config), "--image", image,
            "--kubeconfig", str(kubeconfig)]
    return argv + (["--wait", wait] if wait else []) + (["--retain"] if retain else [])


def cluster_names(kind: str) -> list[str]:
    """`kind get clusters`: the clusters kind knows on this Docker engine."""
    proc = run([kind, "get", "clusters"], timeout_s=60)
    if proc.returncode != 0:
        raise classify_kind_failure(proc, "")
    return [line.strip() for line in proc.stdout.splitlines() if line.strip()]


def delete_argv(kind: str, name: str, kubeconfig: Path) -> list[str]:
    return [kind, "delete", "cluster", "--name", name, "--kubeconfig", str(kubeconfig)]


class KindProvider(Provider):
    name = "kind"

    def __init__(self, profile: Profile, run_dir: Path, progress: Progress, *, wait: str = "5m",
                 ready_timeout_s: float = 300, create_timeout_s: float = 900, ready_interval_s: float = 2,
                 preload_images: Sequence[str] = (), image_cache: Path | None = None, retain: bool = False) -> None:
        super().__init__(progress)
        self.profile = profile
        self.run_dir = run_dir
        self.wait = wait
        self.ready_timeout_s = ready_timeout_s
        self.create_timeout_s = create_timeout_s
        self.ready_interval_s = ready_interval_s
        self.preload_images = tuple(preload_images)
        self.image_cache = image_cache
        self.retain = retain  # --keep-cluster on-failure|always: a failed create's nodes stay for diagnosis
        self.kind = ""
        self.image = images.node_image(profile.kubernetes_version)

    def prepare(self) -> Cluster:
        self.kind, version = prerequisites(self.profile)
        name = new_cluster_name()
        # One kubeconfig per cluster: two runs sharing a run directory (the default --artifacts) never rewrite each
        # other's, and a kept cluster's stays valid through later runs. kind merges into an existing file, so a
        # fresh name also means starting from nothing.
        kubeconfig = self.run_dir / f"{name}.kubeconfig"
        return Cluster(name=name, kubeconfig=kubeconfig, context=f"kind-{name}", provider=self.name,
                       created_by_us=True, managed=True,
                       details={"kind_version": str(version), "node_image": self.image})

    def create(self, cluster: Cluster) -> None:
        config = self.run_dir / "kind-config.yaml"
        atomic_write(config, kindconfig.render(kindconfig.kind_config(self.profile, cluster.name)))
        # Without a CNI the nodes stay NotReady until Calico runs, so kind's --wait would only burn its timeout.
        wait = None if self.profile.cni == "calico" else self.wait
        self.progress(f"creating kind cluster {cluster.name} ({self.image.split('@')[0]}, "
                      f"{len(self.profile.nodes)} node(s), {self.profile.cni})")
        owner.write_marker(cluster.name)  # before create: a run killed during create leaves its owner behind
        proc = run(create_argv(self.kind, cluster.name, config, self.image, cluster.kubeconfig, wait,
                               self.retain),
                   timeout_s=self.create_timeout_s)
        if proc.returncode != 0:
            if "node(s) already exist" in f"{proc.stderr}{proc.stdout}":
                # someone else's cluster: never export, keep or delete it (nor claim it)
                cluster.created_by_us = cluster.managed = False
                owner.remove_marker(cluster.name)
            raise classify_kind_failure(proc, cluster.name)
        check_kind_kubeconfig(cluster.kubeconfig, cluster.name)
        api = cluster.api_client()
        if self.profile.cni == "calico":
            self._install_calico(cluster)
        # kind exits 0 even when --wait timed out ("WARNING: Timed out waiting for Ready"): check ourselves.
        wait_ready(api, expected_nodes=len(self.profile.nodes), timeout_s=self.ready_timeout_s,
                   interval_s=self.ready_interval_s)
        for node, labels in kindconfig.api_labels(self.profile, cluster.name).items():
            # labels the kubelet refuses in --node-labels (node-role.kubernetes.io/...): set before anything runs
            self.progress(f"labelling node {node}: {', '.join(f'{k}={v}' for k, v in sorted(labels.items()))}")
            try:
                request(api, "PATCH", f"/api/v1/nodes/{node}", {"metadata": {"labels": labels}},
                        content_type="application/merge-patch+json")
            except ApiError as exc:
                raise EnvironmentNotReady(f"labelling node {node} failed: {exc}") from None
        self.progress(f"cluster {cluster.name} is ready")
        if self.preload_images:
            from validator.cluster.preload import preload_images

            preload_images(cluster, self.preload_images, self.progress, cache_dir=self.image_cache)

    def _install_calico(self, cluster: Cluster) -> None:
        kubectl = [find_tool("kubectl", KUBECTL_REMEDY), "--kubeconfig", str(cluster.kubeconfig),
                   "--context", cluster.context]
        for url in images.CALICO_MANIFESTS:
            # `create`, not `apply`: the operator's CRD bundle is too large for the last-applied annotation.
            self.progress(f"installing Calico {images.CALICO_VERSION}: {url.rsplit('/', 1)[-1]}")
            steps = [[*kubectl, "create", "-f", url]]
            if url == images.CALICO_CRDS:  # custom-resources.yaml fails with "no matches for kind" before this
                steps.append([*kubectl, "wait", "--for=condition=Established", "--timeout=120s", "-f", url])
            for argv in steps:
                proc = run(argv, timeout_s=300)
                if proc.returncode != 0:
                    raise EnvironmentNotReady(f"installing Calico failed ({' '.join(argv[5:])}): {last_error(proc)}")

    def export_logs(self, cluster: Cluster, dest: Path) -> Path | None:
        proc = run([self.kind, "export", "logs", str(dest), "--name", cluster.name], timeout_s=300)
        if proc.returncode != 0:
            raise EnvironmentNotReady(f"kind export logs failed: {last_error(proc)}")
        return dest

    def teardown(self, cluster: Cluster) -> list[str]:
        self.progress(f"deleting kind cluster {cluster.name}")
        proc = run(delete_argv(self.kind, cluster.name, cluster.kubeconfig), timeout_s=300)
        # The exact command, not `argocd-mirror sweep`: its default --older-than 2h spares a cluster this new.
        if proc.returncode != 0:
            return [f"kind delete cluster --name {cluster.name} failed: {last_error(proc)} "
                    f"(delete it later with `{cluster.delete_command()}`)"]
        if self.exists(cluster):  # verify: exit 0 alone is not proof
            return [f"kind cluster {cluster.name} still exists after deletion "
                    f"(delete it with `{cluster.delete_command()}`)"]
        cluster.kubeconfig.unlink(missing_ok=True)  # it named only this cluster, which is gone
        owner.remove_marker(cluster.name)
        return []

    def exists(self, cluster: Cluster) -> bool:
        try:
            return cluster.name in cluster_names(self.kind)
        except EnvironmentNotReady:
            return True  # cannot tell: say it may be there, never that it is gone

    def keep_hint(self, cluster: Cluster) -> list[str]:
        owner.write_marker(cluster.name, kept=True)  # kept on purpose: `sweep --orphans` must not take it when we exit
        return [*super().keep_hint(cluster), f"delete it with: {cluster.delete_command()}"]
