"""Promotion gate: move a team's Argo CD pin to the version that just passed, and only that version.

Pins live in files people maintain by hand (an Application, a kustomization, a README), so the edit is
a targeted text replacement of the version token: comments, quoting, key order and indentation stay
as they were. A YAML round-trip would lose them. Pinning is refused unless a passing verdict says the
manifest at that tag, for that variant, is byte-for-byte (sha256) the one that was validated.
"""

from __future__ import annotations

import difflib
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from validator.candidate import resolve
from validator.errors import CandidateFailed, InputError
from validator.files import atomic_write, read_bounded
from validator.releases import RELEASE_TAG, Sources
from validator.report import read_verdict
from validator.text import clip

# libyaml's composer: the same nodes and marks (but for a BOM) in ~2 s and ~120 MB per MB of YAML where pure Python
# takes ~9 s, and it stops at 1000 levels of nesting where the pure-Python scanner is quadratic in them.
try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

# An Application, a kustomization or a README with an install URL is kilobytes; composing YAML costs ~120x its
# size in memory, so a pin file is held far below the manifest limit.
MAX_FILE_BYTES = 1024 * 1024
# GitHub hosts, owners and repositories are case-insensitive, and kustomize lower-cases the host: so are we.
ARGOCD_REPO = re.compile(r"^(?:https?://|ssh://git@|git@)?github\.com[/:]argoproj/argo-cd(?:\.git)?/?$", re.I)
RAW_URL = re.compile(
    r"https://raw\.githubusercontent\.com/argoproj/argo-cd/(?:refs/tags/)?(?P<ref>[\w.\-]+)/(?P<path>manifests/[\w./-]+)",
    re.I,
)
# kustomize remote resources: https://, git::, ssh:// and git@host:owner/repo forms; `version=` is `ref=` to kustomize
KUSTOMIZE_REF = re.compile(
    r"github\.com[/:]argoproj/argo-cd(?:\.git)?/{1,2}(?P<path>manifests[\w./-]*)\?(?:[\w=&.-]*&)?(?:ref|version)="
    r"(?P<ref>[\w.\-]+)",
    re.I,
)
# What else can name an Argo CD version in a pin file: a line about argo-cd / the argocd image with a release tag.
_ARGOCD_MENTION = re.compile(r"argoproj/argo-?cd", re.I)
_VERSION_TOKEN = re.compile(r"\bv\d+\.\d+\.\d+(?:-rc\d+)?\b")
# manifests/<this> -> variant, for both the rendered files and their kustomize directories
_VARIANT_PATHS = {
    "install.yaml": "install", "cluster-install": "install",
    "ha/install.yaml": "ha", "ha/cluster-install": "ha",
    "namespace-install.yaml": "namespace-install", "namespace-install": "namespace-install",
    "core-install.yaml": "core-install", "core-install": "core-install",
    "crds": "any",  # the CRDs every variant shares; namespace-install users add them beside it (installation.md)
}
ANY_VARIANT = "any"


@dataclass(frozen=True)
class PinSite:
    """One place in a file that pins an Argo CD version: the text span of the version token."""

    start: int
    end: int
    old: str
    line: int
    kind: str  # application | kustomize-ref | raw-url
    variant: str | None  # None: the pin's manifests are not a variant we validate


def variant_of(manifest_path: str) -> str | None:
    """'manifests/ha/install.yaml' -> 'ha'; None for anything we never validated (e.g. ha/namespace-install)."""
    rest = manifest_path.strip("/").removeprefix("manifests").strip("/")
    return _VARIANT_PATHS.get(rest)


def _line_numbers(text: str) -> Callable[[int], int]:
    """index -> line of TEXT, by bisecting one list of newlines: counting them again for every pin was quadratic
    (a minute for a file of URLs)."""
    newlines = [match.start() for match in re.finditer("\n", text)]
    return lambda index: bisect_left(newlines, index) + 1


@lru_cache(maxsize=2)  # the pin sites and the leftover check read the same text: compose it once
def _yaml_documents(text: str) -> tuple[list[yaml.Node], int]:
    """TEXT's YAML documents and the offset of their marks in TEXT; none if TEXT is not YAML (a README: the URL
    patterns still apply). Nesting is bounded: libyaml stops at 1000 levels, pure Python at its recursion limit."""
    body = text.removeprefix("\ufeff")  # libyaml's marks do not count a byte-order mark, Python's do
    try:
        return [doc for doc in yaml.compose_all(body, Loader=_Loader) if doc is not None], len(text) - len(body)
    except (yaml.YAMLError, RecursionError):
        return [], 0


def _mapping_nodes(node: yaml.Node) -> Iterator[yaml.MappingNode]:
    """Every mapping under NODE, once: an alias composes to the very node its anchor names, and walking it again
    for every alias is exponential (a few hundred bytes of alias bomb is 9^10 walks)."""
    stack, seen = [node], set()
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            yield current
            for key, value in current.value:
                stack.extend((key, value))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def _scalar(mapping: yaml.MappingNode, key: str) -> yaml.ScalarNode | None:
    for k, v in mapping.value:
        if isinstance(k, yaml.ScalarNode) and k.value == key and isinstance(v, yaml.ScalarNode):
            return v
    return None


def _application_variant(source: yaml.MappingNode) -> str | None:
    path = _scalar(source, "path")
    base = path.value if path is not None else ""
    for k, v in source.value:
        if isinstance(k, yaml.ScalarNode) and k.value == "directory" and isinstance(v, yaml.MappingNode):
            include = _scalar(v, "include")
            if include is not None:  # a glob or brace list ('{a.yaml,b.yaml}') is no variant we can name
                return variant_of(f"{base}/{include.value}") if re.fullmatch(r"[\w.-]+\.yaml", include.value) \
                    else None
    return variant_of(base) or (variant_of(f"{base}/install.yaml") if base.strip("/") == "manifests" else None)


def application_sites(text: str) -> list[PinSite]:
    """targetRevision of every source whose repoURL is upstream Argo CD (Application, ApplicationSet template)."""
    (documents, shift), line_of = _yaml_documents(text), _line_numbers(text)
    sites = []
    for document in documents:
        for mapping in _mapping_nodes(document):
            repo, revision = _scalar(mapping, "repoURL"), _scalar(mapping, "targetRevision")
            if repo is None or revision is None or not ARGOCD_REPO.match(repo.value.strip()):
                continue
            start, end = revision.start_mark.index + shift, revision.end_mark.index + shift
            if revision.style in ('"', "'"):
                start, end = start + 1, end - 1
            if text[start:end] != revision.value:
                continue  # escapes or folding: not a token we can replace exactly
            sites.append(PinSite(start, end, revision.value, line_of(start), "application",
                                 _application_variant(mapping)))
    return sites


def url_sites(text: str) -> list[PinSite]:
    """Raw install URLs and kustomize remote resources (?ref=) anywhere in the text."""
    sites, line_of = [], _line_numbers(text)
    for kind, pattern in (("raw-url", RAW_URL), ("kustomize-ref", KUSTOMIZE_REF)):
        for match in pattern.finditer(text):
            path = match["path"].rstrip(".")
            sites.append(PinSite(match.start("ref"), match.end("ref"), match["ref"], line_of(match.start()),
                                 kind, variant_of(path)))
    return sorted(sites, key=lambda s: s.start)


def find_pins(text: str) -> list[PinSite]:
    """Every pin, once: a YAML alias composes to the very node its anchor names (one span, not two)."""
    unique = {site.start: site for site in application_sites(text) + url_sites(text)}
    return sorted(unique.values(), key=lambda s: s.start)


def leftovers(text: str, version: str) -> list[str]:
    """Lines of an already rewritten TEXT that still name another Argo CD version, in a form `pin` does not
    rewrite (an image tag, kustomize `images: newTag`, a URL form we do not know): pinning half a file is worse
    than refusing. Comments are not pins."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        if _ARGOCD_MENTION.search(code) and any(t != version for t in _VERSION_TOKEN.findall(code)):
            found.append(f"line {number}: {clip(code.strip())}")
    found += [f"line {line}: newTag {clip(tag)} of image {clip(name)}"
              for line, name, tag in _image_tags(text) if tag != version]
    return found


def _image_tags(text: str) -> list[tuple[int, str, str]]:
    """(line, image, newTag) of kustomize `images:` entries for Argo CD's image."""
    tags = []
    for document in _yaml_documents(text)[0]:
        for mapping in _mapping_nodes(document):
            name, tag = _scalar(mapping, "name"), _scalar(mapping, "newTag")
            if name is not None and tag is not None and _ARGOCD_MENTION.search(name.value):
                tags.append((tag.start_mark.line + 1, name.value, tag.value))
    return tags


def rewrite(text: str, sites: list[PinSite], new: str) -> str:
    """TEXT with every site's token replaced by NEW; nothing else changes."""
    out, cursor = [], 0
    for site in sorted(sites, key=lambda s: s.start):
        out += [text[cursor:site.start], new]
        cursor = site.end
    out.append(text[cursor:])
    return "".join(out)


def unified_diff(path: Path, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"a/{path}", tofile=f"b/{path}"))


@dataclass(frozen=True)
class PinPlan:
    path: Path
    version: str
    sites: list[PinSite]
    before: str
    after: str
    baseline: str | None = None  # the version the verdict upgraded from and rolled back to, if it did

    @property
    def untested_upgrades(self) -> list[str]:
        """Pinned versions this move leaves that the verdict never upgraded from: production makes that upgrade."""
        return sorted({s.old for s in self.sites if s.old not in (self.version, self.baseline)})

    @property
    def changed(self) -> bool:
        return self.before != self.after

    @property
    def diff(self) -> str:
        return unified_diff(self.path, self.before, self.after)


def passing_release(verdict: dict[str, Any], verdict_path: Path) -> dict[str, Any]:
    """The candidate provenance of a PASS verdict for a release tag, or a one-line refusal."""
    status = verdict["status"]
    why = clip(str(verdict.get("root_cause")))  # quoted in one line: never a whole hostile document
    if status == "fail":
        raise CandidateFailed(f"refusing to pin: {verdict_path} is a FAIL verdict ({why})")
    if status != "pass":
        raise InputError(f"refusing to pin: {verdict_path} is not a pass (status {status}: {why})")
    prov: dict[str, Any] = verdict["candidate"]
    version = prov.get("version")
    if prov.get("source") not in ("stable", "tag") or not version or not RELEASE_TAG.fullmatch(version) \
            or not prov.get("commit"):
        raise InputError(f"refusing to pin: {verdict_path} validated a {prov.get('source')} candidate, not a release "
                         "tag resolved to a commit; only stable or tag candidates can be pinned")
    return prov


def plan_pin(path: Path, verdict_path: Path, sources: Sources | None = None) -> PinPlan:
    """Everything `pin` will change, after checking the verdict, every site's variant and upstream's sha256."""
    verdict = read_verdict(verdict_path)
    prov = passing_release(verdict, verdict_path)
    installed_by = [s.get("name") for s in verdict.get("scenarios") or [] if s.get("name") != "ha"]
    if prov["variant"] != "ha" and not installed_by:  # `--scenario ha` alone installs ha/install.yaml only
        raise InputError(f"refusing to pin: {verdict_path} passed only the ha scenario, which installed the ha "
                         f"manifests, not the {prov['variant']} ones it names; validate with --variant ha to pin "
                         "those, or run a scenario that installs the candidate")
    if path.exists() and not path.is_file():  # a pipe or device: nothing to rewrite, and writing back would block
        raise InputError(f"{path}: not a regular file; pin rewrites its FILE in place")
    data = read_bounded(path, MAX_FILE_BYTES, "pin file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    sites = find_pins(text)
    if not sites:
        raise InputError(f"no Argo CD pin in {path}: looked for an Application source with repoURL "
                         "github.com/argoproj/argo-cd, a kustomize ?ref= resource and a raw install URL")
    for site in sites:
        if site.variant not in (prov["variant"], ANY_VARIANT):
            raise InputError(f"refusing to pin {path}:{site.line}: it pins the {site.variant or 'unrecognised'} "
                             f"manifests but the verdict validated the {prov['variant']} variant")
    upstream = resolve(prov["version"], variant=prov["variant"], sources=sources).provenance
    if (upstream.sha256, upstream.commit) != (prov["sha256"], prov["commit"]):
        raise InputError(
            f"refusing to pin: {prov['version']} ({prov['variant']}) now resolves to commit {upstream.commit} sha256 "
            f"{upstream.sha256}, but the verdict passed commit {prov['commit']} sha256 {prov['sha256']}: validate again"
        )
    after = rewrite(text, sites, prov["version"])
    left = leftovers(after, prov["version"])
    if left:
        raise InputError(f"refusing to pin {path}: after rewriting {len(sites)} pin(s) it would still name another "
                         f"Argo CD version ({'; '.join(left[:3])}); edit those by hand or align them first")
    baseline = verdict.get("baseline")
    upgraded_from = baseline.get("version") if isinstance(baseline, dict) else None
    return PinPlan(path, prov["version"], sites, text, after, upgraded_from)


def apply_plan(plan: PinPlan) -> None:
    """Write the edit atomically, keeping the file's permissions (mkstemp would leave 0600)."""
    if plan.changed:
        mode = plan.path.stat().st_mode & 0o7777
        atomic_write(plan.path, plan.after.encode("utf-8"))
        plan.path.chmod(mode)
