"""HTTP front of the double: the URL space, verbs and wire formats of kube-apiserver, over a Store.

Speaks what the real `kubernetes` client sends: JSON bodies, apply patches (`application/apply-patch+yaml`),
merge patches, chunked watch streams of JSON lines, Status objects for errors. Faults (500s, delays,
dropped watches) are checked per request so tests can aim them at a verb or a path.
"""

from __future__ import annotations

import copy
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from .store import ApiError, ResourceType, Store, match_fields, match_labels, not_found, now_rfc3339


@dataclass
class Fault:
    """Answer `count` matching requests with `status` (or delay them by `delay_s` and carry on)."""

    status: int = 500
    count: int = 1
    verb: str | None = None  # 'list', 'watch', 'get', 'create', 'apply', 'patch', 'update', 'delete', 'logs'
    path_contains: str | None = None
    delay_s: float = 0.0
    message: str = "Internal error occurred: injected fault"
    retry_after_s: int | None = None  # the Retry-After an API Priority and Fairness 429 carries

    def matches(self, verb: str, path: str) -> bool:
        return (self.verb in (None, verb)) and (self.path_contains is None or self.path_contains in path)


@dataclass
class Faults:
    rules: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    drop_generation: int = 0  # bumped by drop_watches(); open streams end when it changes
    abrupt_drop: bool = False

    def fail(self, status: int = 500, count: int = 1, verb: str | None = None, path_contains: str | None = None,
             message: str | None = None, retry_after_s: int | None = None) -> None:
        reason = {429: "Too many requests, please try again later.", 503: "the server is currently unable to "
                  "handle the request", 500: "Internal error occurred: injected fault"}
        self.rules.append(Fault(status, count, verb, path_contains, 0.0, message or reason.get(status, "fault"),
                                retry_after_s))

    def slow(self, delay_s: float, count: int = 1, verb: str | None = None, path_contains: str | None = None) -> None:
        self.rules.append(Fault(0, count, verb, path_contains, delay_s))

    def take(self, verb: str, path: str) -> Fault | None:
        with self.lock:
            for rule in self.rules:
                if rule.count > 0 and rule.matches(verb, path):
                    rule.count -= 1
                    return rule
        return None


_STATUS_REASON = {400: "BadRequest", 404: "NotFound", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType",
                  422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge patches are treated the same: enough for status writes)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class _HTTPServer(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 drops SYNs when many watches connect at once (1 s retransmit)


class Parsed:
    """A resource URL split into its parts."""

    def __init__(self, rt: ResourceType, ns: str, name: str, sub: str) -> None:
        self.rt, self.ns, self.name, self.sub = rt, ns, name, sub


class Server:
    """Routes requests to the store; one instance per ApiDouble."""

    def __init__(self, store: Store, faults: Faults, version: str = "v1.31.0",
                 logs: Callable[[str, str, str, bool], str | None] | None = None) -> None:
        self.store = store
        self.faults = faults
        self.version = version
        self.logs = logs
        self.requests: Counter[tuple[str, str]] = Counter()
        self.log: list[tuple[str, str]] = []  # (verb, path) in arrival order
        self.requests_lock = threading.Lock()
        self.stopping = threading.Event()
        self.bookmark_interval_s = 1.0
        self.httpd = _HTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]

    # -- plumbing ----------------------------------------------------------------------------------
    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()  # answer without waiting for delayed ACKs (headers and body are separate writes)
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.handle(self, "GET")

            def do_POST(self) -> None:
                server.handle(self, "POST")

            def do_PUT(self) -> None:
                server.handle(self, "PUT")

            def do_PATCH(self) -> None:
                server.handle(self, "PATCH")

            def do_DELETE(self) -> None:
                server.handle(self, "DELETE")

        return Handler

    def count(self, verb: str, path: str, raw_path: str) -> None:
        with self.requests_lock:
            self.requests[(verb, path)] += 1
            if len(self.log) < 100_000:
                self.log.append((verb, raw_path))

    @staticmethod
    def send_json(h: BaseHTTPRequestHandler, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)

    @staticmethod
    def send_text(h: BaseHTTPRequestHandler, code: int, text: str) -> None:
        data = text.encode()
        h.send_response(code)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def parse(self, path: str) -> tuple[Parsed | None, str]:
        """Resource path -> Parsed, or (None, discovery-kind) for discovery and unknown paths."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None, "discovery"
        if not rest:
            return None, "discovery"
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], (rest[1] if len(rest) > 1 else ""), (rest[2] if len(rest) > 2 else "")
        rt = self.store.type_for(group, plural)
        if rt is None or rt.version != version:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return Parsed(rt, ns, name, sub), "resource"

    @staticmethod
    def verb_of(method: str, parsed: Parsed | None, query: dict[str, str], content_type: str) -> str:
        if parsed is None:
            return "discovery"
        if parsed.sub == "log":
            return "logs"
        if method == "GET":
            return "watch" if query.get("watch") in ("true", "1") else ("get" if parsed.name else "list")
        if method == "PATCH":
            verb = "apply" if "apply-patch" in content_type else "patch"
        else:
            verb = {"POST": "create", "PUT": "update", "DELETE": "delete"}.get(method, method.lower())
        return f"dry-run-{verb}" if "dryRun" in query else verb  # counted (and faulted) apart from real writes

    @staticmethod
    def dry_run(query: dict[str, str]) -> bool:
        """dryRun=All: the request goes through every check and answers as usual, and nothing is stored."""
        if "dryRun" not in query:
            return False
        if query["dryRun"] != "All":
            raise ApiError(400, "BadRequest", f'Unsupported value: "{query["dryRun"]}": supported values: "All"')
        return True

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        content_type = h.headers.get("Content-Type", "")
        try:
            parsed, _ = self.parse(url.path)
            verb = self.verb_of(method, parsed, query, content_type)
            key = url.path if parsed is None else self._template(parsed)
            self.count(verb, key, url.path)
            fault = self.faults.take(verb, url.path)
            if fault is not None:
                if fault.delay_s:
                    time.sleep(fault.delay_s)
                else:
                    raise ApiError(fault.status, _STATUS_REASON.get(fault.status, "InternalError"), fault.message,
                                   retry_after_s=fault.retry_after_s)
            if parsed is None:
                self.discovery(h, url.path)
                return
            if verb == "watch":
                self.watch(h, parsed, query)
                return
            code, body = self.dispatch(method, parsed, query, raw, content_type)
            if isinstance(body, str):
                self.send_text(h, code, body)
            else:
                self.send_json(h, code, body)
        except ApiError as exc:
            retry_after = {} if exc.retry_after_s is None else {"Retry-After": str(exc.retry_after_s)}
            self.send_json(h, exc.code, exc.status(), retry_after)
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    @staticmethod
    def _template(p: Parsed) -> str:
        """'/apis/apps/v1/namespaces/{ns}/deployments[/{name}][/sub]': requests are counted per template."""
        base = f"/apis/{p.rt.group}/{p.rt.version}" if p.rt.group else "/api/v1"
        ns = "/namespaces/{ns}" if p.ns else ""
        return base + ns + f"/{p.rt.plural}" + ("/{name}" if p.name else "") + (f"/{p.sub}" if p.sub else "")

    # -- discovery ---------------------------------------------------------------------------------
    def discovery(self, h: BaseHTTPRequestHandler, path: str) -> None:
        path = path.rstrip("/")
        if path in ("/readyz", "/livez", "/healthz"):
            self.send_text(h, 200, "ok")
            return
        if path == "/version":
            major, minor = self.version.lstrip("v").split(".")[:2]
            self.send_json(h, 200, {"major": major, "minor": minor, "gitVersion": self.version,
                                    "gitCommit": "0" * 40, "gitTreeState": "clean",
                                    "buildDate": "2024-08-13T07:28:49Z", "goVersion": "go1.22.5", "compiler": "gc",
                                    "platform": "linux/amd64"})
            return
        with self.store.lock:
            types = list(self.store.types.values())
        if path == "/api":
            self.send_json(h, 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}]})
            return
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for rt in types:
                if rt.group and rt.version not in groups.setdefault(rt.group, []):
                    groups[rt.group].append(rt.version)
            self.send_json(h, 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                 "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}} for g, vs in groups.items()]})
            return
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) == 2:
            gv, group, version = parts[1], "", parts[1]
        elif parts[:1] == ["apis"] and len(parts) == 3:
            gv, group, version = f"{parts[1]}/{parts[2]}", parts[1], parts[2]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        resources = []
        for rt in types:
            if (rt.group, rt.version) == (group, version):
                verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
                resources.append({"name": rt.plural, "singularName": rt.kind.lower(), "namespaced": rt.namespaced,
                                  "kind": rt.kind, "verbs": verbs, "shortNames": list(rt.short)})
                resources.append({"name": f"{rt.plural}/status", "singularName": "", "namespaced": rt.namespaced,
                                  "kind": rt.kind, "verbs": ["get", "patch", "update"]})
                if rt.kind == "Pod":
                    resources.append({"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod",
                                      "verbs": ["get"]})
        if not resources:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        self.send_json(h, 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                                "resources": resources})

    # -- verbs -------------------------------------------------------------------------------------
    def dispatch(self, method: str, p: Parsed, q: dict[str, str], raw: bytes, ctype: str) -> tuple[int, Any]:
        store, rt = self.store, p.rt
        dry = method != "GET" and self.dry_run(q)
        if p.sub == "log" and method == "GET":
            return 200, self.pod_log(p, q)
        if method == "GET" and not p.name:
            items, rv = store.list(rt, p.ns, q.get("labelSelector"), q.get("fieldSelector"))
            return 200, {"kind": f"{rt.kind}List", "apiVersion": rt.api_version,
                         "metadata": {"resourceVersion": str(rv)}, "items": items}
        if method == "GET":
            obj = store.get(rt, p.ns, p.name)
            if obj is None:
                raise not_found(rt, p.name)
            return 200, obj
        if method == "DELETE":
            obj = store.get(rt, p.ns, p.name) if dry else store.delete(rt, p.ns, p.name)
            if obj is None:
                raise not_found(rt, p.name)
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                         "details": {"name": p.name, "group": rt.group, "kind": rt.plural,
                                     "uid": obj["metadata"].get("uid")}}
        body = self._body(raw, ctype)
        if method == "POST":
            self._check_identity(rt, p, body, creating=True)
            return 201, store.create(rt, body, p.ns, dry_run=dry)
        if method == "PUT":
            self._check_identity(rt, p, body)
            with store.lock:
                current = store.get(rt, p.ns, p.name)
                if current is None:
                    raise not_found(rt, p.name)
                sent_rv = (body.get("metadata") or {}).get("resourceVersion")
                if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                    raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.qualified} "{p.name}": '
                                   "the object has been modified; please apply your changes to the latest version "
                                   "and try again")
                body.setdefault("metadata", {})["namespace"] = p.ns
                return 200, store.replace(rt, body, status_only=p.sub == "status", keep_status=p.sub != "status",
                                          dry_run=dry)
        if method == "PATCH":
            if "apply-patch" in ctype:
                return self.apply(p, q, body, dry)
            if "json-patch" in ctype:
                raise ApiError(415, "UnsupportedMediaType", "json-patch is not supported by the API double")
            with store.lock:
                current = store.get(rt, p.ns, p.name)
                if current is None:
                    raise not_found(rt, p.name)
                patched = merge_patch(current, body)
                return 200, store.replace(rt, patched, status_only=p.sub == "status", dry_run=dry)
        raise ApiError(405, "MethodNotAllowed", f"method {method} not allowed")

    @staticmethod
    def _body(raw: bytes, ctype: str) -> dict[str, Any]:
        try:  # JSON is YAML: the client sends apply patches as JSON, so try the fast parser first
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                if "yaml" not in ctype:
                    raise
                body = yaml.load(raw.decode(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        return body

    @staticmethod
    def _check_identity(rt: ResourceType, p: Parsed, body: dict[str, Any], creating: bool = False) -> None:
        meta = body.get("metadata") or {}
        if body.get("kind") not in (None, rt.kind):
            raise ApiError(400, "BadRequest", f"the API version in the data ({body.get('apiVersion')}) does not "
                           f"match the expected API version ({rt.api_version})")
        if rt.namespaced and meta.get("namespace") and p.ns and meta["namespace"] != p.ns:
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace "
                           "sent on the request")
        if not creating and meta.get("name") and p.name and meta["name"] != p.name:
            raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")

    def apply(self, p: Parsed, q: dict[str, str], body: dict[str, Any], dry: bool = False) -> tuple[int, Any]:
        """Server-side apply, create-or-merge: the applied fields replace this manager's; status is kept. dry: the
        same checks and answer (201 with the would-be object, or 200 with the merged one), nothing stored."""
        store, rt = self.store, p.rt
        manager = q.get("fieldManager", "")
        if not manager:
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                           "is required for apply patch")
        self._check_identity(rt, p, body)
        body.setdefault("metadata", {})["name"] = p.name
        entry = {"manager": manager, "operation": "Apply", "apiVersion": rt.api_version, "time": now_rfc3339(),
                 "fieldsType": "FieldsV1", "fieldsV1": {}}
        with store.lock:
            current = store.get(rt, p.ns, p.name)
            if current is None:
                new = copy.deepcopy(body)
                new.pop("status", None)
                new["metadata"]["managedFields"] = [entry]
                return 201, store.create(rt, new, p.ns, dry_run=dry)
            others = [m for m in current["metadata"].get("managedFields") or []
                      if m.get("manager") != manager and m.get("operation") == "Update"]
            spec_of = lambda o: {k: v for k, v in o.items() if k not in ("metadata", "status", "apiVersion", "kind")}  # noqa: E731
            if others and q.get("force") not in ("true", "1") and spec_of(body) != spec_of(current):
                names = ", ".join(sorted({f'"{m["manager"]}"' for m in others}))
                raise ApiError(409, "Conflict", f"Apply failed with 1 conflict: conflict with {names} using "
                               f"{rt.api_version}: .spec")
            new = {**spec_of(body), "apiVersion": rt.api_version, "kind": rt.kind}
            meta = copy.deepcopy(current["metadata"])
            for section in ("labels", "annotations"):
                if body["metadata"].get(section):
                    meta[section] = {**(meta.get(section) or {}), **body["metadata"][section]}
            for field_name in ("ownerReferences", "finalizers"):
                if field_name in body["metadata"]:
                    meta[field_name] = body["metadata"][field_name]
            kept = [m for m in meta.get("managedFields") or [] if m.get("manager") != manager]
            if q.get("force") in ("true", "1"):
                kept = [m for m in kept if m.get("operation") != "Update"]
            mine = [m for m in meta.get("managedFields") or [] if m.get("manager") == manager]
            meta["managedFields"] = [*kept, entry]
            new["metadata"] = meta
            unchanged = ({k: v for k, v in new.items() if k != "metadata"} == spec_of(current) | {
                "apiVersion": rt.api_version, "kind": rt.kind} and meta.get("labels") == current["metadata"].get(
                "labels") and meta.get("annotations") == current["metadata"].get("annotations"))
            if unchanged and mine and len(kept) == len(current["metadata"].get("managedFields") or []) - 1:
                store.validate(rt, new)  # validated all the same
                return 200, current  # a no-op apply changes nothing, not even resourceVersion
            return 200, store.replace(rt, new, dry_run=dry)

    def pod_log(self, p: Parsed, q: dict[str, str]) -> str:
        pod = self.store.get(p.rt, p.ns, p.name)
        if pod is None:
            raise not_found(p.rt, p.name)
        spec = pod.get("spec") or {}
        names = [c["name"] for c in spec.get("containers") or []]
        inits = [c["name"] for c in spec.get("initContainers") or []]
        container = q.get("container")
        if not container:
            if len(names) != 1:
                raise ApiError(400, "BadRequest", f"a container name must be specified for pod {p.name}, choose one "
                               f"of: [{' '.join(names)}] or one of the init containers: [{' '.join(inits)}]")
            container = names[0]
        if container not in names + inits:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {p.name}")
        previous = q.get("previous") in ("true", "1")
        text = self.logs(p.ns, p.name, container, previous) if self.logs else None
        if text is None:
            if previous:
                raise ApiError(400, "BadRequest",
                               f'previous terminated container "{container}" in pod "{p.name}" not found')
            text = ""
        tail = q.get("tailLines")
        if tail is not None and tail.isdigit():
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-int(tail):]) if int(tail) else ""
        return text

    # -- watch -------------------------------------------------------------------------------------
    def watch(self, h: BaseHTTPRequestHandler, p: Parsed, q: dict[str, str]) -> None:
        """Chunked stream of JSON lines from the shared history; 410 as an ERROR event, as the apiserver does."""
        store, rt = self.store, p.rt
        labels, fields = q.get("labelSelector"), q.get("fieldSelector")
        deadline = time.monotonic() + float(q.get("timeoutSeconds") or 1800)
        bookmarks = q.get("allowWatchBookmarks") in ("true", "1")
        drop_gen = self.faults.drop_generation
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def wanted(obj: dict[str, Any]) -> bool:
            ns_ok = not p.ns or obj["metadata"].get("namespace") == p.ns
            return ns_ok and match_labels(obj["metadata"].get("labels") or {}, labels) and match_fields(obj, fields)

        def send(lines: list[dict[str, Any]]) -> None:
            if lines:
                data = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
                h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                h.wfile.flush()

        rv_param = q.get("resourceVersion") or "0"
        try:
            initial: list[dict[str, Any]] = []
            with store.lock:
                if rv_param == "0":
                    items, cursor = store.list(rt, p.ns, labels, fields)
                    initial = [{"type": "ADDED", "object": o} for o in items]
                else:
                    cursor = int(rv_param)
            send(initial)
            last_sent = time.monotonic()
            while True:
                out: list[dict[str, Any]] = []
                gone: ApiError | None = None
                with store.lock:
                    try:
                        for ev in store.events_since(cursor):
                            cursor = ev.rv
                            if ev.rt == rt and wanted(ev.obj):
                                out.append({"type": ev.type, "object": ev.obj})
                    except ApiError as exc:
                        gone = exc
                    if not out and gone is None:
                        if self.stopping.is_set() or self.faults.drop_generation != drop_gen:
                            break
                        if time.monotonic() >= deadline:
                            break
                        store.changed.wait(0.2)
                        idle = time.monotonic() - last_sent
                        if bookmarks and idle >= self.bookmark_interval_s:
                            out.append({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version,
                                                                       "metadata": {"resourceVersion": str(cursor)}}})
                if gone is not None:
                    send([{"type": "ERROR", "object": gone.status()}])
                    break
                if out:
                    send(out)
                    last_sent = time.monotonic()
            if self.faults.drop_generation != drop_gen and self.faults.abrupt_drop:
                h.close_connection = True
                return  # no terminating chunk: the client sees the connection die mid-stream
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        h.close_connection = True

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="apidouble-http", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        with self.store.lock:
            self.store.changed.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()
