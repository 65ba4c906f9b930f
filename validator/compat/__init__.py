"""Upgrade compatibility of a team's own Argo CD configuration, offline.

A candidate's pods can all turn Healthy while the upgrade silently changes what the team configured: a key
in argocd-cmd-params-cm the new manifests no longer read, a default that flips under a key the team never
set, a behaviour change only the upgrade guide describes. This module compares the team's argocd-cm,
argocd-cmd-params-cm and argocd-rbac-cm with two tables shipped as package data:

* data/argocd-config.json, generated from Argo CD's repository (validator.compat.generate): per final
  release from v2.8.0, the keys each ConfigMap's readers know, their defaults, what the install manifests
  ship, and the upgrade guides' sections;
* data/rules.yaml, hand-written: the guides' Detection conditions the table cannot express.

Findings are preflight Findings with check "compat": an error for a key the team sets that the candidate no
longer reads, a warning for a default that changes under a key the team does not set and for a rule whose
condition holds, info for what could not be checked. Everything is local: no network, no clone.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from validator.errors import InputError
from validator.manifests import Bundle, KubeObject, Limits, ObjectRef, decode, mapping_at, parse_yaml_documents
from validator.preflight import SEVERITY_RANK, Finding
from validator.releases import RELEASE_TAG, semver_key

CHECK = "compat"
DATA = Path(__file__).with_name("data")
TABLE_PATH = DATA / "argocd-config.json"
RULES_PATH = DATA / "rules.yaml"
TABLE_SCHEMA_VERSION = 1
RULES_SCHEMA_VERSION = 1
CONFIG_MAPS = ("argocd-cm", "argocd-cmd-params-cm", "argocd-rbac-cm")
GUIDE_URL = "https://argo-cd.readthedocs.io/en/stable/operator-manual/upgrading/{name}/"
RELEASE_URL = "https://github.com/argoproj/argo-cd/releases/tag/{version}"
# --config files: small documents, parsed under bounds that refuse alias bombs and deep nesting.
CONFIG_FILE_LIMITS = Limits(max_bytes=4 * 1024 * 1024, max_documents=200, max_nodes=200_000, max_depth=64)
MAX_CONFIG_FILES = 200
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_NOT_SET = "(not set)"


# --------------------------------------------------------------------------------------------------
# the shipped tables
# --------------------------------------------------------------------------------------------------


class Table:
    """data/argocd-config.json: facts per final release, stored as version ranges."""

    def __init__(self, raw: dict[str, Any], source: str = str(TABLE_PATH)) -> None:
        if raw.get("schemaVersion") != TABLE_SCHEMA_VERSION:
            raise InputError(f"{source}: schemaVersion {raw.get('schemaVersion')!r} is not "
                             f"{TABLE_SCHEMA_VERSION}: this argocd-mirror cannot read it")
        self.releases: list[tuple[str, str]] = [(tag, commit) for tag, commit in raw["releases"]]
        self.index = {tag: i for i, (tag, _) in enumerate(self.releases)}
        self.maps: dict[str, dict[str, Any]] = raw["configMaps"]
        self.guides: dict[str, dict[str, Any]] = raw["guides"]

    @property
    def first(self) -> str:
        return self.releases[0][0]

    @property
    def last(self) -> str:
        return self.releases[-1][0]

    def has(self, version: str) -> bool:
        return version in self.index

    def commit(self, version: str) -> str:
        return self.releases[self.index[version]][1]

    def _in(self, ranges: Iterable[Sequence[str]], version: str) -> bool:
        at = self.index[version]
        return any(self.index[first] <= at <= self.index[last] for first, last in ranges)

    def reads(self, cm: str, key: str, version: str) -> bool:
        """Whether VERSION's code or manifests read KEY of CM (exactly or through a key pattern)."""
        table = self.maps[cm]
        if self._in(table["keys"].get(key, ()), version):
            return True
        return any(fnmatchcase(key, pattern) and self._in(ranges, version)
                   for pattern, ranges in table["patterns"].items())

    def documented(self, cm: str, key: str, version: str) -> bool:
        return self._in(self.maps[cm].get("documented", {}).get(key, ()), version)

    def _valued(self, section: str, cm: str, key: str, version: str) -> str | None:
        for ranges, value in self.maps[cm][section].get(key, ()):
            if self._in(ranges, version):
                return str(value)
        return None

    def shipped(self, cm: str, key: str, version: str) -> str | None:
        """The value VERSION's install manifests give KEY, or None when they leave it out."""
        return self._valued("shipped", cm, key, version)

    def default(self, cm: str, key: str, version: str) -> tuple[str | None, str]:
        """(value, where from) of KEY when the team leaves it alone: what the manifests ship, else the code's
        default when the generator could evaluate it, else (None, "unknown")."""
        shipped = self.shipped(cm, key, version)
        if shipped is not None:
            return shipped, "manifests"
        code = self._valued("defaults", cm, key, version)
        if code is not None and not code.startswith("expr:"):
            return code, "code"
        return None, "unknown"

    def defaulted_keys(self, cm: str) -> set[str]:
        return set(self.maps[cm]["defaults"]) | set(self.maps[cm]["shipped"])

    def replacements(self, cm: str, key: str, version: str) -> list[str]:
        """Keys VERSION reads that feed what KEY fed (the same environment variable or Go constant): a rename."""
        aliases = self.maps[cm].get("aliases", {})
        mine = set(aliases.get(key, ()))
        return sorted(other for other, names in aliases.items()
                      if other != key and mine & set(names) and self.reads(cm, other, version))

    def between(self, baseline: str, candidate: str) -> list[str]:
        """Releases after BASELINE up to CANDIDATE, in version order."""
        return [tag for tag, _ in self.releases[self.index[baseline] + 1: self.index[candidate] + 1]]

    def guides_crossed(self, baseline: str, candidate: str) -> list[str]:
        """Upgrade guides whose target minor an upgrade from BASELINE to CANDIDATE reaches (e.g. 2.14-3.0)."""
        low, high = semver_key(baseline), semver_key(candidate)
        return [name for name, guide in self.guides.items()
                if low[:2] < semver_key(guide["to"])[:2] <= high[:2]]

    def guide_link(self, cm: str, key: str, baseline: str, changed_in: str | None, also: Sequence[str] = ()) -> str:
        """The upgrade-guide section that mentions KEY (or ALSO: its replacements), else the guide of the minor the
        change happened in, else (a patch upgrade has no guide) the release notes of that release."""
        crossed = self.guides_crossed(baseline, changed_in) if changed_in else []
        names = {key, *also}
        for name in reversed(crossed):  # the guide of the release that changed it first
            for section in self.guides[name]["sections"]:
                if names & set(section.get("keys", ())):
                    return GUIDE_URL.format(name=name) + "#" + section["anchor"]
        if crossed:
            return GUIDE_URL.format(name=crossed[-1])
        return RELEASE_URL.format(version=changed_in or baseline)

    def section_title(self, url: str) -> str | None:
        for name, guide in self.guides.items():
            for section in guide["sections"]:
                if url == GUIDE_URL.format(name=name) + "#" + section["anchor"]:
                    return str(section["title"])
        return None


@dataclass(frozen=True)
class Rule:
    id: str
    to: str
    guide: str
    anchor: str
    severity: str
    covers: tuple[tuple[str, str], ...]
    when: Any
    message: str
    detection: str

    @property
    def url(self) -> str:
        return GUIDE_URL.format(name=self.guide) + "#" + self.anchor

    def crossed(self, baseline: str, candidate: str) -> bool:
        return semver_key(baseline) < semver_key(self.to) <= semver_key(candidate)


@functools.cache
def load_table(path: Path = TABLE_PATH) -> Table:
    from validator import files

    data = files.read_bounded(path, 8 * 1024 * 1024, "compatibility table")
    try:
        raw = json.loads(data)
        return Table(raw, str(path))
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a compatibility table ({type(exc).__name__}: {exc})") from None


@functools.cache
def load_rules(path: Path = RULES_PATH) -> tuple[Rule, ...]:
    from validator.manifests import load_config_document

    raw = load_config_document(path, "compat rules")
    if not isinstance(raw, dict) or raw.get("schemaVersion") != RULES_SCHEMA_VERSION:
        raise InputError(f"{path}: not a rules file of schemaVersion {RULES_SCHEMA_VERSION}")
    rules = []
    for entry in raw.get("rules") or ():
        covers = tuple(_split(item) for item in entry.get("covers") or ())
        rules.append(Rule(id=entry["id"], to=entry["to"], guide=entry["guide"], anchor=entry["anchor"],
                          severity=entry["severity"], covers=covers,
                          when=entry["when"], message=" ".join(entry["message"].split()),
                          detection=" ".join(entry["detection"].split())))
    return tuple(rules)


# --------------------------------------------------------------------------------------------------
# the team's configuration
# --------------------------------------------------------------------------------------------------


@dataclass
class TeamConfig:
    """The three ConfigMaps as the inputs hold them (--config overrides the candidate bundle key by key)."""

    data: dict[str, dict[str, str]] = field(default_factory=lambda: {cm: {} for cm in CONFIG_MAPS})
    seen: set[str] = field(default_factory=set)  # ConfigMaps the inputs hold: the others cannot be judged
    refs: dict[str, str] = field(default_factory=dict)  # ConfigMap -> the object reference findings name
    objects: list[KubeObject] = field(default_factory=list)  # the --config ConfigMaps, for locations
    appsets: list[KubeObject] | None = None  # ApplicationSets of the candidate bundle (None: no bundle)
    namespace: str = "argocd"

    def ref(self, cm: str) -> str:
        return self.refs.get(cm) or str(ObjectRef("", "ConfigMap", self.namespace, cm))

    def add(self, obj: KubeObject) -> None:
        name = obj.name
        if name not in CONFIG_MAPS:
            return
        data = obj.body.get("data")
        self.data[name].update({str(k): _text(v) for k, v in (data if isinstance(data, dict) else {}).items()})
        self.seen.add(name)
        self.refs[name] = str(obj.ref)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def config_from_bundle(bundle: Bundle | None) -> TeamConfig:
    config = TeamConfig(namespace=bundle.namespace if bundle is not None else "argocd")
    if bundle is None:
        return config
    for obj in bundle.of_kind("ConfigMap"):
        if obj.group == "" and obj.namespace == bundle.namespace:
            config.add(obj)
    config.appsets = [obj for obj in bundle.of_kind("ApplicationSet") if obj.group == "argoproj.io"]
    return config


def read_configs(paths: Sequence[Path], config: TeamConfig) -> TeamConfig:
    """Add the ConfigMaps of --config PATHs (files, or directories of *.yaml/*.yml) to CONFIG. Anything that is
    not a ConfigMap is bad input: the flag names the team's ConfigMaps and nothing else."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            entries = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
                             and p.name not in KUSTOMIZATION_FILES)
            if not entries:
                raise InputError(f"--config {path}: directory holds no *.yaml or *.yml file")
            files += entries
        elif path.exists():
            files.append(path)
        else:
            raise InputError(f"--config {path}: no such file or directory")
    if len(files) > MAX_CONFIG_FILES:
        raise InputError(f"--config: {len(files)} files is over the limit of {MAX_CONFIG_FILES}")
    found = 0
    for path in files:
        for obj in _config_maps(path, config.namespace):
            config.objects.append(obj)
            if obj.name in CONFIG_MAPS:
                config.add(obj)
                found += 1
    if paths and not found:
        raise InputError(f"--config: no {', '.join(CONFIG_MAPS)} among {', '.join(str(p) for p in paths)}")
    return config


def _config_maps(path: Path, namespace: str) -> list[KubeObject]:
    from validator import files

    source = f"--config {path}"
    text = decode(files.read_bounded(path, CONFIG_FILE_LIMITS.max_bytes, "config file"), source, CONFIG_FILE_LIMITS)
    objects = []
    for index, (doc, line) in enumerate(parse_yaml_documents(text, source, CONFIG_FILE_LIMITS), start=1):
        if doc is None:
            continue
        where = f"{source}: document {index} (line {line})"
        if not isinstance(doc, dict) or doc.get("kind") != "ConfigMap" or doc.get("apiVersion") != "v1":
            kind = doc.get("kind") if isinstance(doc, dict) else None
            what = (f"a {kind}" if isinstance(kind, str) and kind else "a mapping without kind"
                    if isinstance(doc, dict) else f"a YAML {type(doc).__name__}")
            raise InputError(f"{where}: is {what}, not a ConfigMap (apiVersion v1)")
        name = mapping_at(doc, "metadata").get("name")
        if not isinstance(name, str) or not name:
            raise InputError(f"{where}: ConfigMap without metadata.name")
        data = doc.get("data", {})
        if data is not None and not isinstance(data, dict):
            raise InputError(f"{where}: data is not a mapping")
        for key, value in (data or {}).items():
            if not isinstance(value, str):
                raise InputError(f"{where}: data.{key} is a {type(value).__name__}, not a string (quote it; the "
                                 "API server refuses it too)")
        declared = mapping_at(doc, "metadata").get("namespace")
        objects.append(KubeObject(doc, source=str(path), document=index, line=line,
                                  namespace=declared if isinstance(declared, str) and declared else namespace))
    if not objects:
        raise InputError(f"{source}: no ConfigMap (empty file)")
    return objects


# --------------------------------------------------------------------------------------------------
# versions
# --------------------------------------------------------------------------------------------------


def bundle_version(bundle: Bundle) -> str | None:
    """The release a bundle is: its provenance `version`, else the tag of the Argo CD image it runs."""
    provenance = bundle.provenance
    return getattr(provenance, "version", None) or getattr(provenance, "image_version", None)


def check_version(version: str | None, what: str, table: Table) -> str:
    """VERSION if the table knows it; bad input otherwise, saying what the table covers."""
    if version and table.has(version):
        return version
    covers = f"the table covers the final releases {table.first} to {table.last}"
    if not version:
        raise InputError(f"compat: the {what}'s Argo CD version is unknown (no release tag, no single Argo CD image "
                         f"tag): {covers}")
    if RELEASE_TAG.match(version) and semver_key(version)[3] != 1 << 30:
        raise InputError(f"compat: {what} {version} is a release candidate: {covers}")
    if RELEASE_TAG.match(version) and semver_key(version) > semver_key(table.last):
        raise InputError(f"compat: {what} {version} is newer than the table: {covers}; regenerate it with "
                         "python -m validator.compat.generate")
    raise InputError(f"compat: {what} version {version!r} is not in the table: {covers}")


# --------------------------------------------------------------------------------------------------
# findings
# --------------------------------------------------------------------------------------------------


def _short(value: str | None, limit: int = 60) -> str:
    if value is None:
        return _NOT_SET
    flat = " ".join(value.split())
    lines = value.count("\n") + (0 if value.endswith("\n") else 1)
    if len(flat) <= limit and lines <= 1:
        return f'"{flat}"'
    return f'"{flat[:limit - 12]}…" ({lines} lines)'


def _default(value: str | None, source: str, version: str) -> str:
    where = {"code": "code default", "manifests": "shipped by the manifests"}.get(source)
    return f"{_short(value)} in {version}" + (f" ({where})" if where else "")


def _same(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return [line.rstrip() for line in a.strip().splitlines()] == [line.rstrip() for line in b.strip().splitlines()]


@dataclass
class _Context:
    table: Table
    config: TeamConfig
    baseline: str
    candidate: str

    def team_set(self, cm: str) -> dict[str, str]:
        """Keys the team sets: present, and not just what either release's manifests ship."""
        return {key: value for key, value in self.config.data[cm].items()
                if not (_same(value, self.table.shipped(cm, key, self.baseline))
                        or _same(value, self.table.shipped(cm, key, self.candidate)))}

    def first_change(self, probe: Any) -> str | None:
        """The first release after the baseline whose probe differs from the baseline's."""
        before = probe(self.baseline)
        return next((tag for tag in self.table.between(self.baseline, self.candidate) if probe(tag) != before), None)


def _finding(ctx: _Context, severity: str, cm: str, reason: str, url: str, **evidence: Any) -> Finding:
    return Finding(CHECK, severity, (ctx.config.ref(cm),), f"{reason}; read {url}",
                   {"configMap": cm, "baseline": ctx.baseline, "candidate": ctx.candidate, "guide": url,
                    **{k: v for k, v in evidence.items() if v is not None}})


def _key_findings(ctx: _Context) -> dict[tuple[str, str], Finding]:
    """Per (ConfigMap, key): a key the team sets that the candidate no longer reads (error), or that neither
    release reads (info); a default that changes under a key the team leaves alone (warning)."""
    table, b, c = ctx.table, ctx.baseline, ctx.candidate
    found: dict[tuple[str, str], Finding] = {}
    for cm in CONFIG_MAPS:
        if cm not in ctx.config.seen:
            continue
        team = ctx.team_set(cm)
        for key, value in sorted(team.items()):
            read_b, read_c = table.reads(cm, key, b), table.reads(cm, key, c)
            if read_b and not read_c:
                changed = ctx.first_change(lambda v, k=key, m=cm: table.reads(m, k, v))
                renamed = table.replacements(cm, key, c)
                url = table.guide_link(cm, key, b, changed, also=renamed)
                instead = f" (it reads {', '.join(renamed)} instead)" if renamed else ""
                if table.documented(cm, key, c):
                    found[cm, key] = _finding(
                        ctx, "warning", cm, f"{cm} {key} is set, and {c}'s documentation lists it, but no reader of "
                        f"it was found in {c}'s code (the table's patterns may miss it; {b} reads it)", url,
                        kind="no-longer-read", key=key, value=value, changedIn=changed)
                else:
                    since = f"; dropped in {changed}" if changed else ""
                    found[cm, key] = _finding(
                        ctx, "error", cm, f"{cm} {key} is set, but {c} no longer reads it{instead}, so it will be "
                        f"ignored ({b} reads it{since})", url, kind="no-longer-read", key=key, value=value,
                        changedIn=changed, replacement=renamed or None)
            elif not read_b and not read_c:
                documented = table.documented(cm, key, b) or table.documented(cm, key, c)
                note = ("documented, but no reader of it was found in either release's code" if documented else
                        "neither release reads it, as far as the table knows (a typo, or a key of another tool?)")
                found[cm, key] = _finding(ctx, "info", cm, f"{cm} {key} is set: {note}",
                                          RELEASE_URL.format(version=c), kind="unknown-key", key=key)
        for key in sorted(table.defaulted_keys(cm) - set(team)):
            if not (table.reads(cm, key, b) and table.reads(cm, key, c)):
                continue
            (old, old_from), (new, new_from) = table.default(cm, key, b), table.default(cm, key, c)
            known = (old_from != "unknown" and new_from != "unknown") or "manifests" in (old_from, new_from)
            if not known or _same(old, new):
                continue
            changed = ctx.first_change(lambda v, k=key, m=cm: table.default(m, k, v)[0])
            url = table.guide_link(cm, key, b, changed)
            since = f" (since {changed})" if changed and changed != c else ""
            found[cm, key] = _finding(
                ctx, "warning", cm, f"{cm} {key} is not set by the team, and its default changes from "
                f"{_default(old, old_from, b)} to {_default(new, new_from, c)}{since}", url,
                kind="default-changed", key=key, old=old, new=new, changedIn=changed)
    return _group_shipped(ctx, found)


def _group_shipped(ctx: _Context, found: dict[tuple[str, str], Finding]) -> dict[tuple[str, str], Finding]:
    """Several shipped keys under one key pattern (resource.customizations.ignoreResourceUpdates.*) that change
    together are one finding, listing them."""
    groups: dict[tuple[str, str], list[str]] = {}
    for (cm, key), finding in found.items():
        parts = key.split(".")
        exact = key in ctx.table.maps[cm]["keys"]
        if finding.evidence.get("kind") == "default-changed" and len(parts) > 3 and not exact:
            groups.setdefault((cm, ".".join(parts[:3])), []).append(key)
    for (cm, prefix), keys in groups.items():
        if len(keys) < 2:
            continue
        members = [found.pop((cm, key)) for key in sorted(keys)]
        changed = min((str(f.evidence["changedIn"]) for f in members if f.evidence.get("changedIn")),
                      key=semver_key, default=None)
        found[cm, prefix + ".*"] = _finding(
            ctx, "warning", cm, f"{cm} sets none of {prefix}.*, and the defaults of {len(keys)} of them change from "
            f"{ctx.baseline} to {ctx.candidate} ({', '.join(sorted(k[len(prefix) + 1:] for k in keys))})",
            ctx.table.guide_link(cm, prefix, ctx.baseline, changed), kind="default-changed", changedIn=changed,
            keys={f.evidence["key"]: {"old": f.evidence.get("old"), "new": f.evidence.get("new")} for f in members})
    return found


# ---- rules -------------------------------------------------------------------------------------------------


def _split(ref: str) -> tuple[str, str]:
    cm, _, key = ref.partition("/")
    return cm, key


@dataclass
class _Evidence:
    facts: list[str] = field(default_factory=list)  # what the condition saw, for the message
    missing: list[str] = field(default_factory=list)  # what the inputs lacked
    objects: list[str] = field(default_factory=list)  # objects other than the ConfigMaps that it is about


def _condition(ctx: _Context, when: Any, seen: _Evidence) -> bool | None:
    """Evaluate a rule's condition on the team's configuration: True, False, or None when the inputs do not hold
    what it reads (the ConfigMap, or any ApplicationSet)."""
    if not isinstance(when, dict) or len(when) != 1:
        raise InputError(f"compat rules: a condition is a mapping with one operator, not {when!r}")
    ((op, arg),) = when.items()
    if op in ("all", "any"):
        results = []
        for sub in arg:
            branch = _Evidence(missing=seen.missing, objects=seen.objects)
            result = _condition(ctx, sub, branch)
            results.append(result)
            if op == "all" or result:
                seen.facts += branch.facts
        if op == "all":
            return False if False in results else (None if None in results else True)
        return True if True in results else (None if None in results else False)
    if op == "not":
        inner = _condition(ctx, arg, seen)
        return None if inner is None else not inner
    if op in ("unset", "set", "equals", "in"):
        cm, key = _split(arg if op in ("unset", "set") else arg[0])
        if cm not in ctx.config.seen:
            seen.missing.append(cm)
            return None
        value = ctx.team_set(cm).get(key)
        seen.facts.append(f"{cm} {key} {'unset' if value is None else '= ' + _short(value, 40)}")
        if op == "unset":
            return value is None
        if op == "set":
            return value is not None
        wanted = [arg[1]] if op == "equals" else list(arg[1])
        return value is not None and value.strip() in wanted
    if op == "dexSubjects":
        if arg not in ctx.config.seen:
            seen.missing.append(arg)
            return None
        subjects = dex_sub_subjects(ctx.config.data[arg])
        seen.facts += [f"{subject} = {user} via connector {connector}" for subject, user, connector in subjects]
        return bool(subjects)
    if op == "nestedSelectors":
        if not ctx.config.appsets:
            seen.missing.append("ApplicationSet")
            return None
        affected = nested_selector_appsets(ctx.config.appsets)
        seen.facts += [f"{obj.namespace}/{obj.name}" if obj.namespace else obj.name for obj in affected]
        seen.objects += [str(obj.ref) for obj in affected]
        return bool(affected)
    if op == "yamlFieldUnset":
        cm, key = _split(arg[0])
        if cm not in ctx.config.seen:
            seen.missing.append(cm)
            return None
        value = ctx.config.data[cm].get(key)
        parsed = _yaml_mapping(value, f"{cm} {key}") if value else {}
        if parsed is None:
            seen.missing.append(f"{cm} {key} that parses as YAML")
            return None
        return arg[1] not in parsed
    raise InputError(f"compat rules: unknown condition {op!r}")


def _yaml_mapping(text: str, source: str) -> dict[str, Any] | None:
    """TEXT as a YAML mapping ({} when empty or not a mapping); None when it is not YAML (or too big, a bomb)."""
    from validator.manifests import CONFIG_LIMITS

    try:
        documents = parse_yaml_documents(text, source, CONFIG_LIMITS)
    except InputError:
        return None
    doc = documents[0][0] if documents else None
    return doc if isinstance(doc, dict) else {}


_POLICY_LINE = re.compile(r"^\s*([pg])\s*,\s*([^,\s]+)")


def dex_sub_subjects(rbac: dict[str, str]) -> list[tuple[str, str, str]]:
    """(subject, user id, connector id) for every subject in policy.csv / policy.*.csv that is a Dex `sub` claim:
    unpadded base64 of a protobuf whose field 1 is the user id and field 2 the connector id."""
    found: list[tuple[str, str, str]] = []
    for key, text in sorted(rbac.items()):
        if not (key == "policy.csv" or fnmatchcase(key, "policy.*.csv")):
            continue
        for line in text.splitlines():
            match = _POLICY_LINE.match(line)
            if match and (decoded := _dex_sub(match[2])) is not None and match[2] not in (f[0] for f in found):
                found.append((match[2], *decoded))
    return found


def _dex_sub(subject: str) -> tuple[str, str] | None:
    """(user id, connector id) when SUBJECT is a Dex `sub` claim: base64 (padded or not, either alphabet) of a
    protobuf, field 1 (0x0a) the user id, field 2 (0x12) the connector id. The lengths are not trusted (the
    guide's own example gets them wrong); both parts must be printable text."""
    if len(subject) < 8 or not re.fullmatch(r"[A-Za-z0-9_\-+/]+={0,2}", subject):
        return None
    bare = subject.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except ValueError:
        return None
    if len(raw) < 6 or raw[0] != 0x0A:
        return None
    for split in range(3, len(raw) - 2):
        if raw[split] != 0x12:
            continue
        try:
            user, connector = raw[2:split].decode("utf-8"), raw[split + 2:].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if user.isprintable() and connector.isprintable() and user and connector:
            return user, connector
    return None


def nested_selector_appsets(appsets: list[KubeObject]) -> list[KubeObject]:
    """The guide's jq: `.spec.applyNestedSelectors != true and
    .spec.generators[][].generators[][].generators[].selector != null`."""
    names = []
    for obj in appsets:
        spec = mapping_at(obj.body, "spec")
        if spec.get("applyNestedSelectors") is True:
            continue
        if any(grandchild.get("selector") is not None
               for generator in _list(spec.get("generators"))
               for outer in _values(generator)
               for child in _list(outer.get("generators"))
               for inner in _values(child)
               for grandchild in _list(inner.get("generators"))):
            names.append(obj)
    return names


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _values(value: Any) -> list[dict[str, Any]]:
    return [v for v in value.values() if isinstance(v, dict)] if isinstance(value, dict) else []


def _rule_findings(ctx: _Context, keyed: dict[tuple[str, str], Finding]) -> list[Finding]:
    out: list[Finding] = []
    for rule in load_rules():
        if not rule.crossed(ctx.baseline, ctx.candidate):
            continue
        seen = _Evidence()
        result = _condition(ctx, rule.when, seen)
        facts = seen.facts
        folded = [keyed.pop(cover) for cover in rule.covers if cover in keyed]
        cm = rule.covers[0][0] if rule.covers else next(
            (m for m in CONFIG_MAPS if m in str(rule.when)), "argocd-cm")
        evidence = {"kind": "rule", "rule": rule.id, "detection": rule.detection, "changedIn": rule.to}
        if result is None:
            lacking = list(dict.fromkeys(seen.missing))
            how = ("the guide's Detection says how to check the cluster" if lacking == ["ApplicationSet"] else
                   "give it with --config")
            out.append(_finding(ctx, "info", cm, f"rule {rule.id} not checked: the inputs hold no "
                                f"{', '.join(lacking)} ({how})", rule.url, **evidence))
            out += folded
            continue
        if not result:
            out += [replace(f, severity="info", reason=f"{f.reason.rsplit('; read ', 1)[0]}, but the guide says this "
                            f"configuration is unaffected ({rule.id}); read {rule.url}") for f in folded]
            continue
        message = rule.message.format(baseline=ctx.baseline, candidate=ctx.candidate,
                                      facts=f" ({'; '.join(facts)})" if facts else "")
        severity = min([rule.severity, *(f.severity for f in folded)], key=SEVERITY_RANK.__getitem__)
        finding = _finding(ctx, severity, cm, message, rule.url, facts=facts or None,
                           folded=[f.reason for f in folded] or None, **evidence)
        out.append(replace(finding, objects=tuple(seen.objects)) if seen.objects else finding)
    return out


def team_config(candidate: Bundle | None, configs: Sequence[Path] = ()) -> TeamConfig:
    """The team's configuration: the candidate bundle's three ConfigMaps, overridden key by key by the ConfigMaps of
    CONFIGS. A bare version (no bundle) and no CONFIGS means the upstream manifests as shipped: nothing set."""
    config = read_configs(configs, config_from_bundle(candidate))
    if candidate is None and not configs:
        config.seen.update(CONFIG_MAPS)
    return config


def compat_findings(candidate: Bundle | None, baseline: Bundle | None, configs: Sequence[Path] = (), *,
                    candidate_version: str | None = None, baseline_version: str | None = None,
                    strict: bool = False, config: TeamConfig | None = None) -> list[Finding]:
    """Findings (check "compat") for upgrading from BASELINE to CANDIDATE with the team's configuration (CONFIG, or
    team_config(CANDIDATE, CONFIGS)). Versions come from the bundles (provenance version, else image tag) unless
    given.

    STRICT (the `compat` command): a version the table does not know is bad input. Otherwise (preflight and
    validate, where compat rides along) it is one info finding saying why compat did not run."""
    table = load_table()
    try:
        new = check_version(candidate_version or (bundle_version(candidate) if candidate else None), "candidate",
                            table)
        old = check_version(baseline_version or (bundle_version(baseline) if baseline else None), "baseline", table)
    except InputError as exc:
        if strict:
            raise
        return [Finding(CHECK, "info", (), f"configuration compatibility not checked: {exc.one_line()}",
                        {"reason": exc.one_line()})]
    config = config if config is not None else team_config(candidate, configs)
    if old == new:
        return []
    ctx = _Context(table, config, old, new)
    keyed = _key_findings(ctx)
    findings = _rule_findings(ctx, keyed) + list(keyed.values())
    return sorted(findings, key=lambda f: (SEVERITY_RANK[f.severity], f.reason))


__all__ = ["CHECK", "Table", "TeamConfig", "bundle_version", "check_version", "compat_findings", "config_from_bundle",
           "load_rules", "load_table", "read_configs", "team_config"]
