"""A lean structural validator for Kubernetes' JSON schemas and CRD OpenAPI v3 schemas.

Why not a general JSON Schema engine: kubernetes-validate runs jsonschema over the full draft 2020-12
machinery and takes seconds on one Argo CD install.yaml. Kubernetes' schemas use a small vocabulary
(type, $ref, properties, additionalProperties, items, required, enum, oneOf for int-or-string, and for
CRDs nullable and the x-kubernetes-* extensions), so a walker that compiles each schema node once into
a small object and then visits only the data that is actually there is ~50x cheaper and says exactly
the same thing for these schemas: unknown fields, wrong types, missing required fields, bad enums.
"""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
    "boolean": (bool,), "null": (type(None),),
}


class Node:
    """One compiled schema node. Children compile lazily so recursive schemas (JSONSchemaProps) terminate."""

    __slots__ = ("additional", "alternatives", "bool_ok", "crd", "enum", "items", "properties", "prune_null",
                 "pytypes", "required", "types")

    def __init__(self) -> None:
        self.types: tuple[str, ...] | None = None  # None: any type
        self.pytypes: tuple[type, ...] | None = None  # the Python types of `types`, checked with isinstance
        self.bool_ok = True
        self.properties: dict[str, Node] = {}
        self.additional: Node | None = None  # None: no other keys allowed (when properties are declared)
        self.items: Node | None = None
        self.required: tuple[str, ...] = ()
        self.enum: list[Any] | None = None
        self.alternatives: tuple[str, tuple[Node, ...]] | None = None  # ("oneOf"|"anyOf"|"allOf", nodes)
        self.prune_null = False  # a CRD field that is not nullable: the API server drops a null, never rejects it
        self.crd = False  # compiled from a CRD's schema (pruning and defaulting apply)


ANY = Node()
ANY.additional = ANY
ANY.items = ANY


class Compiler:
    """Compiles schema dicts into Nodes, memoised by identity; resolves '#/$defs/NAME' refs in `defs`.

    dialect "kubernetes": kubernetes-validate's strict schemas (types may be lists with "null"; an object
    without additionalProperties is open). dialect "crd": a structural OpenAPI v3 schema, where fields
    not declared are unknown unless x-kubernetes-preserve-unknown-fields says otherwise; inside its junctors
    (allOf/anyOf/oneOf) only values are validated, since a branch may restrict fields it does not declare.
    """

    def __init__(self, defs: dict[str, Any] | None = None, dialect: str = "kubernetes") -> None:
        self.defs = defs or {}
        self.dialect = dialect
        self.crd = dialect in ("crd", "crd-junctor")
        self._junctor: Compiler | None = None  # crd branches: the same rules, but never "unknown field"
        self._memo: dict[int, Node] = {}
        self._keep: list[Any] = []  # schemas we memoised by id must outlive the memo

    def compile(self, schema: Any) -> Node:
        if not isinstance(schema, dict):
            return ANY if schema is not False else _NOTHING
        ref = schema.get("$ref")
        if isinstance(ref, str):
            name = ref.rpartition("/")[2]
            target = self.defs.get(name)
            return self.compile(target) if target is not None else ANY
        node = self._memo.get(id(schema))
        if node is not None:
            return node
        node = Node()
        self._memo[id(schema)] = node
        self._keep.append(schema)
        self._fill(node, schema)
        return node

    def _branches(self) -> Compiler:
        """The compiler of junctor branches: a crd-junctor one under a CRD's schema (itself for everything else,
        nested junctors included)."""
        if self.dialect != "crd":
            return self
        if self._junctor is None:
            self._junctor = Compiler(self.defs, "crd-junctor")
        return self._junctor

    def resource_root(self, schema: Any) -> Node:
        """The root of a custom resource: apiVersion and kind are always allowed, and metadata is the API server's
        ObjectMeta whatever the CRD says of it, so the object is validated whole (a CRD's `required: [metadata]`,
        as Argo CD's have, is met) without its metadata being judged by the CRD's schema."""
        node = self.compile(schema)
        if node is not ANY and node is not _NOTHING:
            node.properties = {"apiVersion": ANY, "kind": ANY, **node.properties, "metadata": ANY}
        return node

    def _fill(self, node: Node, schema: dict[str, Any]) -> None:
        declared = schema.get("type")
        types = tuple(declared) if isinstance(declared, list) else (declared,) if isinstance(declared, str) else None
        if schema.get("x-kubernetes-int-or-string"):
            types = ("integer", "string")
        if self.crd and types is not None and schema.get("nullable"):
            types = (*types, "null")
        node.types = types
        if types is not None and all(t in _TYPES for t in types):
            node.pytypes = tuple(py for t in types for py in _TYPES[t])
            node.bool_ok = "boolean" in types
        node.properties = {k: self.compile(v) for k, v in (schema.get("properties") or {}).items()}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        if additional is False:
            node.additional = None
        elif isinstance(additional, dict):
            node.additional = self.compile(additional)
        elif self.dialect == "crd" and not preserve and (types is None or "object" in types):
            node.additional = None if not additional else ANY
        else:
            node.additional = ANY
        if self.crd and schema.get("x-kubernetes-embedded-resource"):
            for key in ("apiVersion", "kind", "metadata"):
                node.properties.setdefault(key, ANY)
        items = schema.get("items")
        node.items = self.compile(items) if isinstance(items, dict) else ANY
        node.required = tuple(str(r) for r in schema.get("required") or [])
        if self.crd:
            # the API server defaults before it validates (so a required field with a default is never missing)
            # and prunes nulls of non-nullable fields instead of rejecting them (apiextensions prunenulls.go)
            declared_props = schema.get("properties") or {}
            node.required = tuple(r for r in node.required
                                  if not (isinstance(declared_props.get(r), dict) and "default" in declared_props[r]))
            node.prune_null = not schema.get("nullable")
            node.crd = True
        if isinstance(schema.get("enum"), list):
            node.enum = schema["enum"]
        for keyword in ("oneOf", "anyOf", "allOf"):
            branches = schema.get(keyword)
            if isinstance(branches, list) and branches:
                node.alternatives = (keyword, tuple(self._branches().compile(b) for b in branches))
                break


_NOTHING = Node()
_NOTHING.types = ()
_NOTHING.pytypes = ()
_NOTHING.bool_ok = False


def _type_ok(node: Node, value: Any) -> bool:
    if node.pytypes is None:
        return True  # no type, or one we do not know: do not invent errors
    if value.__class__ is bool:
        return node.bool_ok  # bool is an int to Python, not to JSON Schema
    return isinstance(value, node.pytypes)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(node: Node, value: Any, path: str = "", errors: list[str] | None = None, limit: int = 20) -> list[str]:
    """Errors as 'path: message', at most `limit` of them, visiting only the data present."""
    errors = [] if errors is None else errors
    _walk(node, value, path, errors, limit)
    return errors


def _walk(node: Node, value: Any, path: str, errors: list[str], limit: int) -> None:
    if len(errors) >= limit or node is ANY:
        return
    where = path or "(root)"
    if not _type_ok(node, value):
        errors.append(f"{where}: {_describe(value)} is not of type {' or '.join(node.types or ()) or 'nothing'}")
        return
    if node.enum is not None and value is not None and value not in node.enum:
        errors.append(f"{where}: {_describe(value)} is not one of {node.enum}")
        return
    if node.alternatives is not None:
        keyword, branches = node.alternatives
        if keyword == "allOf":
            for branch in branches:
                _walk(branch, value, path, errors, limit)
        else:
            # a branch of another type fails outright; anyOf wants one of the rest to pass, oneOf exactly one.
            # When none does, the errors of the first one (the value's own type) say what is wrong
            typed = [b for b in branches if _type_ok(b, value)]
            results = []
            for branch in typed:
                results.append(validate(branch, value, path, [], limit))
                if not results[-1] and keyword == "anyOf":
                    break  # one is enough; oneOf must see them all
            passing = sum(not r for r in results)
            if passing == 0:
                failed = [r for r in results if r]
                errors.extend(failed[0][: max(1, limit - len(errors))] if failed else
                              [f"{where}: {_describe(value)} matches no alternative of {keyword}"])
                return
            if keyword == "oneOf" and passing > 1:
                errors.append(f"{where}: {_describe(value)} matches {passing} alternatives of oneOf, not exactly one")
                return
    if isinstance(value, dict):
        props = node.properties
        if node.crd and None in value.values():  # a null the API server prunes is as good as absent
            value = {k: v for k, v in value.items()
                     if v is not None or not (props.get(k) or node.additional or ANY).prune_null}
        for key in node.required:
            if key not in value:
                errors.append(f"{where}: required field {key!r} is missing")
        for key, child in value.items():
            target = props.get(key)
            if target is None:
                target = node.additional
                if target is None:
                    if props or node.types is not None:
                        errors.append(f"{f'{path}.' if path else ''}{key}: unknown field {key!r}")
                    continue
            if target is ANY or (target.alternatives is None and target.enum is None
                                 and not isinstance(child, dict | list)
                                 and _type_ok(target, child)):
                continue  # fast path: a scalar of the right type (most of a manifest) needs no call
            _walk(target, child, f"{path}.{key}" if path else str(key), errors, limit)
            if len(errors) >= limit:
                return
    elif isinstance(value, list) and node.items is not None and node.items is not ANY:
        for index, child in enumerate(value):
            _walk(node.items, child, f"{path}[{index}]", errors, limit)
            if len(errors) >= limit:
                return
