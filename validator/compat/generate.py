"""Generate the compatibility table (validator/compat/data/argocd-config.json) from a clone of argoproj/argo-cd.

    python -m validator.compat.generate /path/to/argo-cd [--output FILE] [--since v2.8.0] [--check]

Every final release tag (vX.Y.Z, no -rc) from --since on is read with `git cat-file` / `git grep` on the tag (a
bare clone is enough; nothing is checked out and nothing is fetched). Per release it records:

* argocd-cmd-params-cm (and any other ConfigMap) keys the manifests read: `configMapKeyRef` in
  manifests/install.yaml, ha/install.yaml, namespace-install.yaml and core-install.yaml (the union), with
  the environment variable each key feeds;
* argocd-cm keys the settings code reads: string constants of util/settings/*.go used as an index of the
  argocd-cm data (`argoCDCM.Data[name]`, `cm.Data[name]`), as a prefix (`name+"."+x`,
  `strings.HasPrefix(k, name)`, `fmt.Sprintf("%s.%s", name, ...)`) or through the two indirections the
  code uses (deep-link keys, `sourceTypeToEnableGenerationKey`); apart, as "documented", the keys of the
  example docs/operator-manual/argocd-cm.yaml that no code pattern covers;
* argocd-rbac-cm keys: the `ConfigMap*Key` constants of util/rbac/rbac.go and its `policy.*.csv` pattern;
* defaults: the value the install manifests ship in the three ConfigMaps; for argocd-cm keys the code
  default where it has one of the shapes `if x.Data[k] == "" { return V }`, `v := x.Data[k]; if v == ""
  { return V }`, `x.Data[k] != "false"` (true) or `x.Data[k] == "true"` (false), plus the tracking-method
  wrapper in util/argo; for keys read through an environment variable, the default of the
  `env.Parse*FromEnv("NAME", DEFAULT, ...)` / `env.StringFromEnv("NAME", DEFAULT)` call that reads it;
* each upgrade guide (docs/operator-manual/upgrading/X.Y-A.B.md, as the newest release has it): its `##` and
  `###` headings with the anchors mkdocs gives them, and the known keys each section mentions.

Known limits, stated in docs/compat.md: keys read by other shapes (a key computed at run time, a map literal
elsewhere, a ConfigMap mounted as files) are invisible to these patterns; a default that is not a literal, a
constant or arithmetic on those is recorded as its source text ("expr:...") and never compared; the manifests of
every variant are merged. The output is deterministic: --check compares it with the shipped file.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
DEFAULT_OUTPUT = Path(__file__).with_name("data") / "argocd-config.json"
REPOSITORY = "https://github.com/argoproj/argo-cd"
FIRST_RELEASE = "v2.8.0"
CONFIG_MAPS = ("argocd-cm", "argocd-cmd-params-cm", "argocd-rbac-cm")
MANIFESTS = ("manifests/install.yaml", "manifests/ha/install.yaml", "manifests/namespace-install.yaml",
             "manifests/core-install.yaml")
SETTINGS_DIR = "util/settings/"
RBAC_FILE = "util/rbac/rbac.go"
TRACKING_FILE = "util/argo/resource_tracking.go"
TYPES_FILE = "pkg/apis/application/v1alpha1/types.go"
COMMON_FILE = "common/common.go"
DOCS_CM = "docs/operator-manual/argocd-cm.yaml"
GUIDES_DIR = "docs/operator-manual/upgrading/"
GUIDE_NAME = re.compile(r"^(\d+)\.(\d+)-(\d+)\.(\d+)\.md$")
FINAL_TAG = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
# Go code that reads environment variables (binaries and the libraries they share), without tests and tools.
ENV_PATHSPECS = ("*.go", ":!*_test.go", ":!vendor/", ":!test/", ":!hack/", ":!**/mocks/")


def version_key(tag: str) -> tuple[int, int, int]:
    match = FINAL_TAG.match(tag)
    if not match:
        raise ValueError(f"not a final release tag: {tag}")
    return int(match[1]), int(match[2]), int(match[3])


# --------------------------------------------------------------------------------------------------
# git, read-only: one `git cat-file --batch` process serves every file
# --------------------------------------------------------------------------------------------------


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._git(["rev-parse", "--git-dir"])  # fails early on a path that is not a repository
        self._batch: subprocess.Popen[bytes] | None = None

    def _git(self, args: list[str]) -> str:
        proc = subprocess.run(["git", "-C", str(self.path), *args], capture_output=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace').strip()}")
        return proc.stdout.decode("utf-8", errors="replace")

    def final_tags(self, since: str) -> list[str]:
        tags = [t for t in self._git(["tag", "--list", "v*"]).split() if FINAL_TAG.match(t)]
        return sorted((t for t in tags if version_key(t) >= version_key(since)), key=version_key)

    def commit(self, tag: str) -> str:
        return self._git(["rev-parse", f"{tag}^{{commit}}"]).strip()

    def ls(self, tag: str, directory: str) -> list[str]:
        out = self._git(["ls-tree", "--name-only", f"{tag}:{directory.rstrip('/')}"])
        return [directory + name for name in out.split()]

    def show(self, tag: str, path: str) -> str | None:
        if self._batch is None:
            self._batch = subprocess.Popen(["git", "-C", str(self.path), "cat-file", "--batch"],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        assert self._batch.stdin is not None and self._batch.stdout is not None
        self._batch.stdin.write(f"{tag}:{path}\n".encode())
        self._batch.stdin.flush()
        header = self._batch.stdout.readline().decode().split()
        if len(header) < 3 or header[1] != "blob":
            return None  # "<ref> missing"
        data = self._batch.stdout.read(int(header[2]) + 1)[:-1]
        return data.decode("utf-8", errors="replace")

    def grep(self, tag: str, pattern: str, pathspecs: Iterable[str]) -> list[tuple[str, str]]:
        """(path, line) for every line of TAG matching the extended regex PATTERN."""
        proc = subprocess.run(["git", "-C", str(self.path), "grep", "-E", "-I", pattern, tag, "--", *pathspecs],
                              capture_output=True, check=False)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"git grep failed: {proc.stderr.decode(errors='replace').strip()}")
        out = []
        for line in proc.stdout.decode("utf-8", errors="replace").splitlines():
            _, path, text = line.split(":", 2)  # TAG:path:line
            out.append((path, text))
        return out

    def close(self) -> None:
        if self._batch is not None:
            assert self._batch.stdin is not None
            self._batch.stdin.close()
            self._batch.wait()
            self._batch = None


# --------------------------------------------------------------------------------------------------
# manifests: configMapKeyRef and the data the three ConfigMaps ship with
# --------------------------------------------------------------------------------------------------


def _documents(text: str) -> Iterator[Any]:
    """The YAML documents of a manifest that can hold env or ConfigMap data (CRDs, the bulk, are skipped)."""
    from validator.manifests import parse_yaml_documents

    for chunk in re.split(r"^---\s*$", text, flags=re.M):
        if re.search(r"^kind: CustomResourceDefinition\s*$", chunk, re.M) or not chunk.strip():
            continue
        for doc, _ in parse_yaml_documents(chunk, "manifest"):
            if isinstance(doc, dict):
                yield doc


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def manifest_facts(text: str) -> tuple[dict[str, dict[str, set[str]]], dict[str, dict[str, str]]]:
    """({configmap: {key: {env var}}} read through configMapKeyRef, {configmap: data} shipped)."""
    refs: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    shipped: dict[str, dict[str, str]] = {}
    for doc in _documents(text):
        name = (doc.get("metadata") or {}).get("name")
        if doc.get("kind") == "ConfigMap" and name in CONFIG_MAPS:
            shipped[name] = {str(k): str(v) for k, v in (doc.get("data") or {}).items()}
        for node in _walk(doc):
            ref = (node.get("valueFrom") or {}).get("configMapKeyRef") if isinstance(node.get("valueFrom"),
                                                                                    dict) else None
            if isinstance(ref, dict) and ref.get("name") and ref.get("key"):
                refs[str(ref["name"])][str(ref["key"])].add(str(node.get("name", "")))
    return refs, shipped


# --------------------------------------------------------------------------------------------------
# Go source, by regular expression (what a regex can see is stated in the module docstring)
# --------------------------------------------------------------------------------------------------

_DECLARATION = re.compile(r"^\s*([A-Za-z_]\w*)(?:\s+[\w.\[\]*]+)?\s*=\s*(.+?)\s*(?://.*)?$")
_GO_STRING = re.compile(r'^"([^"\\]*)"$')
_UNITS = {"Nanosecond": 1e-9, "Microsecond": 1e-6, "Millisecond": 1e-3, "Second": 1, "Minute": 60, "Hour": 3600}


def go_declarations(text: str) -> dict[str, str]:
    """name -> right-hand side of the package-level `const`/`var` declarations (blocks and single lines)."""
    declarations: dict[str, str] = {}
    block = False
    for line in text.splitlines():
        if block:
            if line.startswith(")"):
                block = False
                continue
            match = _DECLARATION.match(line)
        elif re.match(r"^(const|var)\s*\($", line):
            block = True
            continue
        else:
            single = re.match(r"^(?:const|var)\s+(.*)$", line)
            match = _DECLARATION.match(single[1]) if single else None
        if match:
            declarations.setdefault(match[1], match[2])
    return declarations


def go_string_consts(text: str) -> dict[str, str]:
    """name -> value of every package-level `name [Type] = "value"`."""
    return {name: m[1] for name, rhs in go_declarations(text).items() if (m := _GO_STRING.match(rhs))}


def evaluate(expr: str, declarations: dict[str, str], depth: int = 0) -> str | None:
    """A Go default expression as the value Argo CD applies, when it is a literal, a named constant, or
    arithmetic on those and time units (durations as seconds: "180s"); None when it is anything else."""
    import ast

    expr = expr.strip()
    while (inner := re.fullmatch(r"(?:string|int|int64|float64|time\.Duration|v1alpha1\.TrackingMethod)\((.*)\)",
                                 expr)) is not None:
        expr = inner[1].strip()
    if depth > 8:
        return None
    if (string := _GO_STRING.match(expr)) is not None:
        return string[1]
    if expr in ("true", "false"):
        return expr
    if re.fullmatch(r"nil|\[\]\w+\{\}|map\[\w+\]\w+\{\}", expr):
        return ""  # an empty list or map: nothing set
    if re.fullmatch(r"[A-Za-z_][\w.]*", expr) and not expr.startswith("time."):
        rhs = declarations.get(expr.rsplit(".", 1)[-1])
        return None if rhs is None else evaluate(rhs, declarations, depth + 1)
    if not re.fullmatch(r"[\w.\s+\-*/()]+", expr):
        return None
    duration = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal duration
        word = match[0]
        if word.startswith("time."):
            duration = True
            return repr(_UNITS[word[5:]]) if word[5:] in _UNITS else "?"
        if re.fullmatch(r"\d+(\.\d+)?", word):
            return word
        value = evaluate(word, declarations, depth + 1)
        if value is not None and value.endswith("s") and re.fullmatch(r"-?[\d.]+s", value):
            duration = True
            return value[:-1]
        return value if value is not None and re.fullmatch(r"-?\d+(\.\d+)?", value) else "?"

    expr = re.sub(r"\b(?:time\.Duration|int64|int|float64)\(", "(", expr)
    arithmetic = re.sub(r"[A-Za-z_][\w.]*|\d+(?:\.\d+)?", substitute, expr)
    if "?" in arithmetic:
        return None
    try:
        tree = ast.parse(arithmetic, mode="eval")
    except SyntaxError:
        return None
    if not all(isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.operator, ast.unaryop))
               for node in ast.walk(tree)):
        return None
    try:
        number = eval(compile(tree, "<default>", "eval"), {"__builtins__": {}})  # only numbers and operators
    except ArithmeticError:
        return None
    text = f"{number:g}" if isinstance(number, float) else str(number)
    return text + "s" if duration else text


def _strip_go_comments(text: str) -> str:
    return re.sub(r"(?m)^\s*//.*$", "", text)


@dataclass
class SettingsKeys:
    exact: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))  # key -> Go names declaring it
    patterns: set[str] = field(default_factory=set)  # fnmatch globs
    unresolved: set[str] = field(default_factory=set)  # index expressions no rule resolves


_CM_INDEX = re.compile(r"\b(?:argoCDCM|cm)\.Data\[([^\]]+)\]")
_HAS_PREFIX = re.compile(r"strings\.(?:HasPrefix|CutPrefix|TrimPrefix)\(\s*\w+\s*,\s*"
                         r"([A-Za-z_]\w*|\"[^\"]*\")\s*(\+\s*\"\.\")?\s*\)")
_SPRINTF_KEY = re.compile(r'fmt\.Sprintf\("%s\.%s[^"]*",\s*([A-Za-z_]\w*)\s*,')
_DEEPLINK_CALL = re.compile(r"GetDeepLinks\(\s*(?:settings\.)?(\w+)\s*\)")
_MAP_STRING_VALUES = re.compile(r"sourceTypeToEnableGenerationKey\s*=\s*map\[[^\]]+\]string\{([^}]*)\}", re.S)


def settings_keys(files: dict[str, str], callers: str) -> SettingsKeys:
    """argocd-cm keys of util/settings/*.go (FILES: path -> text). CALLERS: the source text that passes deep-link
    key constants to GetDeepLinks (the one index whose argument is a parameter)."""
    consts: dict[str, str] = {}
    for text in files.values():
        for name, value in go_string_consts(text).items():
            consts.setdefault(name, value)
    found = SettingsKeys()
    for text in files.values():
        code = _strip_go_comments(text)
        for expr in _CM_INDEX.findall(code):
            expr = expr.strip()
            plus = re.fullmatch(r'([A-Za-z_]\w*)\s*\+\s*"\."\s*\+\s*\w+', expr)
            if expr in consts:
                found.exact[consts[expr]].add(expr)
            elif re.fullmatch(r'"[^"\\]+"', expr):
                found.exact[expr[1:-1]].add("literal")
            elif plus and plus[1] in consts:
                found.patterns.add(consts[plus[1]] + ".*")
            elif expr in ("deeplinkType", "key", "p"):
                continue  # resolved below (deep links, source types) or a prefix loop handled by HasPrefix
            else:
                found.unresolved.add(expr)
        for name, dot in _HAS_PREFIX.findall(code):
            prefix = name[1:-1] if name.startswith('"') else consts.get(name)
            if prefix is not None and re.fullmatch(r"[A-Za-z][\w-]*(\.[\w-]+)*", prefix) and (dot or "." in prefix):
                found.patterns.add(prefix + (".*" if dot else "*"))
        for name in _SPRINTF_KEY.findall(code):
            if name in consts:
                found.patterns.add(consts[name] + ".*")
        for body in _MAP_STRING_VALUES.findall(code):
            for value in re.findall(r':\s*"([^"\\]+)"', body):
                found.exact[value].add("sourceTypeToEnableGenerationKey")
    for name in set(_DEEPLINK_CALL.findall(callers)):
        if name in consts:
            found.exact[consts[name]].add(name)
    return found


def rbac_keys(text: str) -> SettingsKeys:
    found = SettingsKeys()
    for name, value in go_string_consts(text).items():
        if re.fullmatch(r"ConfigMap\w*Key", name):
            found.exact[value].add(name)
    code = _strip_go_comments(text)
    prefix = re.search(r'strings\.HasPrefix\(\s*\w+\s*,\s*"([^"]+)"\s*\)\s*&&\s*'
                       r'strings\.HasSuffix\(\s*\w+\s*,\s*"([^"]+)"', code)
    if prefix:
        found.patterns.add(f"{prefix[1]}*{prefix[2]}")
    return found


_EMPTY_RETURN = re.compile(r'if\s+\w+\.Data\[(\w+)\]\s*==\s*""\s*\{\s*return\s+([^,\n}]+)')
_ASSIGN_THEN_EMPTY = re.compile(r'(\w+)\s*:?=\s*\w+\.Data\[(\w+)\]\s*\n\s*if\s+\1\s*==\s*""\s*\{\s*return\s+([^,\n}]+)')
_OK_THEN_RETURN = re.compile(r'if\s+\w+\s*,\s*ok\s*:=\s*\w+\.Data\[(\w+)\]\s*;\s*ok\s*\{[^{}]*\}\s*'
                             r'return\s+([^,\n}]+),')
_NOT_FALSE = re.compile(r'\w+\.Data\[(\w+)\]\s*!=\s*"false"')
_IS_TRUE = re.compile(r'\w+\.Data\[(\w+)\]\s*==\s*"true"')
_TRACKING_WRAPPER = re.compile(r'func GetTrackingMethod\([^)]*\)[^{]*\{[^}]*tm\s*==\s*""\s*\{\s*return\s+([\w.()]+)',
                               re.S)


def settings_defaults(files: dict[str, str], shared: dict[str, str], tracking: str) -> dict[str, str]:
    """argocd-cm key -> the default the code applies when the key is unset (only the shapes named above).
    SHARED: declarations of the packages the defaults name (common, the API types, util/argo)."""
    declarations: dict[str, str] = {}
    for text in files.values():
        for name, rhs in go_declarations(text).items():
            declarations.setdefault(name, rhs)
    keys = {name: m[1] for name, rhs in declarations.items() if (m := _GO_STRING.match(rhs))}
    every = {**shared, **declarations}
    defaults: dict[str, str] = {}

    def record(name: str, expr: str) -> None:
        value = evaluate(expr, every)
        if name in keys and value is not None:
            key = keys[name]
            if key.endswith("MB") and value.isdigit() and int(value) % (1 << 20) == 0:
                value = str(int(value) >> 20)  # webhook.maxPayloadSizeMB: the code holds its default in bytes
            defaults.setdefault(key, value)

    for text in files.values():
        code = _strip_go_comments(text)
        for name, expr in _EMPTY_RETURN.findall(code):
            record(name, expr)
        for _, name, expr in _ASSIGN_THEN_EMPTY.findall(code):
            record(name, expr)
        for name, expr in _OK_THEN_RETURN.findall(code):
            record(name, expr)
        for name in _NOT_FALSE.findall(code):
            record(name, "true")
        for name in _IS_TRUE.findall(code):
            record(name, "false")
    wrapper = _TRACKING_WRAPPER.search(_strip_go_comments(tracking))
    if wrapper:
        record("settingsResourceTrackingMethodKey", wrapper[1])
    return defaults


_FROM_ENV = re.compile(r"\b(?:env\.)?(?:Parse\w+|String|Strings)FromEnv\(\s*([\w.]+|\"[^\"]+\")\s*,\s*")


def _call_argument(text: str, start: int) -> str | None:
    """The Go expression starting at START up to the next top-level ',' or ')' (None when the line ends first)."""
    depth, index = 0, start
    while index < len(text):
        char = text[index]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                return text[start:index].strip()
            depth -= 1
        elif char == "," and depth == 0:
            return text[start:index].strip()
        elif char in "\"`":
            index = text.find(char, index + 1)
            if index < 0:
                return None
        index += 1
    return None


def env_defaults(lines: Iterable[tuple[str, str]], env_names: dict[str, str],
                 declarations_of: Any) -> dict[str, set[str]]:
    """ENV -> the defaults its `*FromEnv("ENV", DEFAULT, ...)` reads give: a value when `evaluate` can tell,
    else "expr:" and the expression. LINES: (path, line); DECLARATIONS_OF(path): what names in that file mean."""
    defaults: dict[str, set[str]] = defaultdict(set)
    for path, line in lines:
        for match in _FROM_ENV.finditer(line):
            name = match[1]
            env = name[1:-1] if name.startswith('"') else env_names.get(name.rsplit(".", 1)[-1])
            expr = _call_argument(line, match.end())
            if env is None or expr is None:
                continue
            value = evaluate(expr, {})
            if value is None:
                value = evaluate(expr, declarations_of(path))
            defaults[env].add(value if value is not None else "expr:" + re.sub(r"\s+", "", expr))
    return defaults


# --------------------------------------------------------------------------------------------------
# docs: the documented argocd-cm example and the upgrade guides
# --------------------------------------------------------------------------------------------------


def documented_keys(text: str) -> set[str]:
    """The data keys of docs/operator-manual/argocd-cm.yaml (an example ConfigMap: every key is documented)."""
    from validator.manifests import parse_yaml_documents

    keys: set[str] = set()
    for doc, _ in parse_yaml_documents(text, DOCS_CM):
        if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
            keys.update(str(k) for k in doc["data"])
    return keys


def slugify(title: str) -> str:
    """The id Python-Markdown's toc extension (what mkdocs renders the docs with) gives a heading."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "")
    text = re.sub(r"(\*\*|__|\*)(.+?)\1", r"\2", text)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _unique(anchor: str, used: set[str]) -> str:
    while anchor in used or not anchor:
        match = re.match(r"^(.*)_([0-9]+)$", anchor)
        anchor = f"{match[1]}_{int(match[2]) + 1}" if match else f"{anchor}_1"
    used.add(anchor)
    return anchor


def guide_sections(markdown: str, known: set[str], patterns: Iterable[str] = ()) -> list[dict[str, Any]]:
    """`##`/`###` headings with their mkdocs anchors (every heading counts for the _1 suffixes, as in toc), and
    which KNOWN keys (or names under a key PATTERN, like resource.customizations.ignoreResourceUpdates) each
    section's text mentions: in backticks, as `key:` in a YAML example, or in a kubectl jsonpath."""
    patterns = tuple(patterns)
    sections: list[dict[str, Any]] = []
    used: set[str] = set()
    fence: str | None = None
    body: list[str] = []

    def close() -> None:
        if sections:
            text = "\n".join(body)
            tokens = {re.split(r"[:=\s]", t.strip(), maxsplit=1)[0] for t in re.findall(r"`([^`]+)`", text)}
            tokens |= set(re.findall(r"^\s*([\w.-]+):", text, re.M))  # `key: value` lines of a YAML example
            jsonpath = re.sub(r"\\\.", ".", text)  # kubectl -o jsonpath='{.data.a\.b}' and {.data['a.b']}
            tokens |= set(re.findall(r"\.data\.([\w.]+)", jsonpath)) | set(re.findall(r"\.data\['([^']+)'\]", jsonpath))
            tokens = {t.strip("'\"") for t in tokens}
            mentions = sorted(t for t in tokens if t in known or (t.count(".") >= 2 and _matches(t, patterns)))
            if mentions:
                sections[-1]["keys"] = mentions
        body.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        marker = re.match(r"^(```+|~~~+)", stripped)
        if fence is not None:
            if marker and stripped.startswith(fence):
                fence = None
            body.append(line)
            continue
        if marker:
            fence = marker[1]
            body.append(line)
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*\s*$", line)
        if heading:
            anchor = _unique(slugify(heading[2]), used)
            level = len(heading[1])
            if level in (2, 3):
                close()
                sections.append({"level": level, "title": heading[2], "anchor": anchor})
                body.append(heading[2])  # a key in the heading counts as mentioned
                continue
        body.append(line)
    close()
    return sections


# --------------------------------------------------------------------------------------------------
# one release, then the whole table
# --------------------------------------------------------------------------------------------------


@dataclass
class Release:
    tag: str
    commit: str
    keys: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # cm -> key -> sources
    patterns: dict[str, set[str]] = field(default_factory=dict)
    aliases: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # cm -> key -> Go names / env vars
    defaults: dict[str, dict[str, str]] = field(default_factory=dict)  # cm -> key -> code default
    shipped: dict[str, dict[str, str]] = field(default_factory=dict)  # cm -> key -> manifest value
    documented: dict[str, set[str]] = field(default_factory=dict)  # cm -> keys only the docs' example names
    notes: list[str] = field(default_factory=list)


def _env_lines(repo: Repo, tag: str) -> list[tuple[str, str]]:
    return repo.grep(tag, r"FromEnv\(", ENV_PATHSPECS)


def _env_consts(repo: Repo, tag: str) -> dict[str, str]:
    consts: dict[str, str] = {}
    for _, text in repo.grep(tag, r'^\s*(const\s+)?\w+\s*=\s*"[A-Z][A-Z0-9_]+"', ENV_PATHSPECS):
        match = _DECLARATION.match(re.sub(r"^\s*const\s+", "", text))
        if match and (string := _GO_STRING.match(match[2])):
            consts.setdefault(match[1], string[1])
    return consts


def read_release(repo: Repo, tag: str) -> Release:
    release = Release(tag, repo.commit(tag))
    for cm in CONFIG_MAPS:
        release.keys[cm], release.patterns[cm] = defaultdict(set), set()
        release.aliases[cm], release.defaults[cm], release.documented[cm] = defaultdict(set), {}, set()
    envs: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in MANIFESTS:
        text = repo.show(tag, path)
        if text is None:
            release.notes.append(f"{path}: missing")
            continue
        refs, shipped = manifest_facts(text)
        for cm, keys in refs.items():
            for key, names in keys.items():
                envs[cm][key] |= names
        if path == MANIFESTS[0]:
            release.shipped = {cm: shipped.get(cm, {}) for cm in CONFIG_MAPS}
    for cm in CONFIG_MAPS:
        for key, names in envs.get(cm, {}).items():
            release.keys[cm][key].add("manifests")
            release.aliases[cm][key] |= {n for n in names if n}

    settings_files = {p: repo.show(tag, p) or "" for p in repo.ls(tag, SETTINGS_DIR)
                      if p.endswith(".go") and not p.endswith("_test.go")}
    callers = "\n".join(text for _, text in repo.grep(tag, r"GetDeepLinks\(", ENV_PATHSPECS))
    found = settings_keys(settings_files, callers)
    for key, names in found.exact.items():
        release.keys["argocd-cm"][key].add("code")
        release.aliases["argocd-cm"][key] |= names - {"literal"}
    release.patterns["argocd-cm"] |= found.patterns
    release.notes += [f"argocd-cm: unresolved index {expr}" for expr in sorted(found.unresolved)]
    docs = repo.show(tag, DOCS_CM)
    if docs is not None:
        for key in documented_keys(docs):
            if key not in release.keys["argocd-cm"] and not _matches(key, release.patterns["argocd-cm"]):
                release.documented["argocd-cm"].add(key)
    rbac = rbac_keys(repo.show(tag, RBAC_FILE) or "")
    for key, names in rbac.exact.items():
        release.keys["argocd-rbac-cm"][key].add("code")
        release.aliases["argocd-rbac-cm"][key] |= names
    release.patterns["argocd-rbac-cm"] |= rbac.patterns

    shared: dict[str, str] = {}
    for path in (COMMON_FILE, TYPES_FILE, TRACKING_FILE):
        shared.update(go_declarations(repo.show(tag, path) or ""))
    tracking = repo.show(tag, TRACKING_FILE) or ""
    release.defaults["argocd-cm"].update(settings_defaults(settings_files, shared, tracking))
    files: dict[str, dict[str, str]] = {}

    def declarations_of(path: str) -> dict[str, str]:
        if path not in files:
            files[path] = {**shared, **go_declarations(repo.show(tag, path) or "")}
        return files[path]

    from_env = env_defaults(_env_lines(repo, tag), _env_consts(repo, tag), declarations_of)
    for cm in CONFIG_MAPS:
        for key, names in envs.get(cm, {}).items():
            values = set().union(*(from_env.get(n, set()) for n in names)) if names else set()
            if len(values) == 1:
                release.defaults[cm].setdefault(key, next(iter(values)))
            elif len(values) > 1:
                release.notes.append(f"{cm} {key}: several defaults {sorted(values)}")
    return release


def _matches(key: str, patterns: Iterable[str]) -> bool:
    from fnmatch import fnmatchcase

    return any(fnmatchcase(key, p) for p in patterns)


def _ranges(indices: Iterable[int], tags: list[str]) -> list[list[str]]:
    """Sorted release indices as [first, last] runs of consecutive releases."""
    runs: list[list[str]] = []
    previous = None
    for index in sorted(indices):
        if previous is not None and index == previous + 1:
            runs[-1][1] = tags[index]
        else:
            runs.append([tags[index], tags[index]])
        previous = index
    return runs


def _valued(per_release: list[dict[str, str]], tags: list[str]) -> dict[str, list[list[Any]]]:
    """{key: [[ranges, value], ...]} from one {key: value} per release: each distinct value stored once."""
    by_key: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for index, values in enumerate(per_release):
        for key, value in values.items():
            by_key[key][value].append(index)
    return {key: [[_ranges(indices, tags), value] for value, indices in values.items()]
            for key, values in sorted(by_key.items())}


def build_table(releases: list[Release], guides: dict[str, Any]) -> dict[str, Any]:
    tags = [r.tag for r in releases]
    config_maps: dict[str, Any] = {}
    for cm in CONFIG_MAPS:
        key_releases: dict[str, list[int]] = defaultdict(list)
        sources: dict[str, set[str]] = defaultdict(set)
        aliases: dict[str, set[str]] = defaultdict(set)
        pattern_releases: dict[str, list[int]] = defaultdict(list)
        documented: dict[str, list[int]] = defaultdict(list)
        for index, release in enumerate(releases):
            for key in release.documented[cm]:
                documented[key].append(index)
            for key, how in release.keys[cm].items():
                key_releases[key].append(index)
                sources[key] |= how
                aliases[key] |= release.aliases[cm].get(key, set())
            for pattern in release.patterns[cm]:
                pattern_releases[pattern].append(index)
        config_maps[cm] = {
            "keys": {k: _ranges(v, tags) for k, v in sorted(key_releases.items())},
            "sources": {k: ",".join(sorted(v)) for k, v in sorted(sources.items())},
            "patterns": {p: _ranges(v, tags) for p, v in sorted(pattern_releases.items())},
            "documented": {k: _ranges(v, tags) for k, v in sorted(documented.items())},
            "aliases": {k: sorted(v) for k, v in sorted(aliases.items()) if v},
            "defaults": _valued([r.defaults[cm] for r in releases], tags),
            "shipped": _valued([r.shipped.get(cm, {}) for r in releases], tags),
        }
    return {
        "schemaVersion": SCHEMA_VERSION,
        "generator": "python -m validator.compat.generate",
        "repository": REPOSITORY,
        "releases": [[r.tag, r.commit] for r in releases],
        "configMaps": config_maps,
        "guides": guides,
    }


def read_guides(repo: Repo, tag: str, known: set[str], patterns: set[str]) -> dict[str, Any]:
    guides: dict[str, Any] = {}
    for path in repo.ls(tag, GUIDES_DIR):
        name = path.rsplit("/", 1)[-1]
        match = GUIDE_NAME.match(name)
        if not match or (int(match[3]), int(match[4])) < version_key(FIRST_RELEASE)[:2]:
            continue
        text = repo.show(tag, path) or ""
        guides[name[:-3]] = {"to": f"v{match[3]}.{match[4]}.0", "path": path, "readAt": tag,
                             "sections": guide_sections(text, known, patterns)}
    return dict(sorted(guides.items(), key=lambda item: version_key(item[1]["to"])))


def generate(clone: Path, since: str = FIRST_RELEASE, progress: Any = None) -> dict[str, Any]:
    repo = Repo(clone)
    try:
        tags = repo.final_tags(since)
        if not tags:
            raise SystemExit(f"{clone}: no final release tags from {since} on")
        releases = []
        for tag in tags:
            release = read_release(repo, tag)
            if progress:
                progress(f"{tag}: " + ", ".join(f"{cm} {len(release.keys[cm])}" for cm in CONFIG_MAPS)
                         + "".join(f"\n  note: {n}" for n in release.notes))
            releases.append(release)
        known = {key for release in releases for cm in CONFIG_MAPS for key in (*release.keys[cm],
                                                                              *release.documented[cm])}
        patterns = {p for release in releases for cm in CONFIG_MAPS for p in release.patterns[cm]}
        guides = read_guides(repo, tags[-1], known, patterns)
    finally:
        repo.close()
    return build_table(releases, guides)


def dump(table: dict[str, Any]) -> str:
    """Compact but diff-friendly: one line per key, release or guide section."""
    lines = ["{"]
    items = list(table.items())
    for position, (name, value) in enumerate(items):
        comma = "," if position < len(items) - 1 else ""
        if isinstance(value, dict) and value:
            lines.append(f"  {json.dumps(name)}: {{")
            inner = list(value.items())
            for inner_position, (key, item) in enumerate(inner):
                inner_comma = "," if inner_position < len(inner) - 1 else ""
                if isinstance(item, dict) and item:
                    lines.append(f"    {json.dumps(key)}: {{")
                    leaves = list(item.items())
                    for leaf_position, (leaf, leaf_value) in enumerate(leaves):
                        leaf_comma = "," if leaf_position < len(leaves) - 1 else ""
                        if isinstance(leaf_value, dict) and leaf_value:
                            lines.append(f"      {json.dumps(leaf)}: {{")
                            lines.append(",\n".join(f"        {json.dumps(k)}: {json.dumps(v, separators=(',', ':'))}"
                                                    for k, v in leaf_value.items()))
                            lines.append(f"      }}{leaf_comma}")
                        else:
                            lines.append(f"      {json.dumps(leaf)}: "
                                         f"{json.dumps(leaf_value, separators=(',', ':'))}{leaf_comma}")
                    lines.append(f"    }}{inner_comma}")
                else:
                    lines.append(f"    {json.dumps(key)}: {json.dumps(item, separators=(',', ':'))}{inner_comma}")
            lines.append(f"  }}{comma}")
        elif isinstance(value, list):
            lines.append(f"  {json.dumps(name)}: [")
            lines.append(",\n".join(f"    {json.dumps(v, separators=(',', ':'))}" for v in value))
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(name)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m validator.compat.generate",
                                     description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("clone", type=Path, help="a clone (bare is enough) of argoproj/argo-cd with its tags")
    parser.add_argument("--output", "-o", type=Path, default=DEFAULT_OUTPUT, help=f"default {DEFAULT_OUTPUT}")
    parser.add_argument("--since", default=FIRST_RELEASE, help=f"first release (default {FIRST_RELEASE})")
    parser.add_argument("--check", action="store_true", help="exit 1 if OUTPUT differs from what would be written")
    parser.add_argument("--quiet", "-q", action="store_true")
    args = parser.parse_args(argv)
    progress = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    text = dump(generate(args.clone, args.since, progress))
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.is_file() else ""
        if current != text:
            print(f"{args.output} is out of date: regenerate it", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} ({len(text.encode())} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
