"""Contract check: every response the tests receive must be one that api/openapi.json describes.

tests.support.http.request() calls check() on each response. A response fails the contract (ContractError,
an AssertionError) when its path and method are in no operation, its status is not listed for
that operation, its Content-Type is not one of the listed media types, a required header is
missing, or its JSON body does not match the schema (JSON Schema 2020-12, as OpenAPI 3.1 says).
A path that is not in the document must answer the documented generic 404 (or 405/414/503), as
the document's description says. HEAD is checked against GET, without a body.

Validators are built once per (operation, status, media type). Every check is counted in
STATS, so a test can prove that the checks ran.
"""
import gzip
import json
import os
import re
import threading

from tests.support.paths import ROOT

DOC_PATH = os.path.join(ROOT, "api", "openapi.json")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Statuses any path (listed or not) may answer, with the Error body (the document's description).
GENERIC = {404, 405, 414, 500, 503}
NOT_SERVED = b'{"error": "Not found"}'

STATS = {"checked": 0, "generic": 0}
_lock = threading.Lock()
_state = {}


class ContractError(AssertionError):
    pass


def _load():
    if "doc" not in _state:
        with open(DOC_PATH, encoding="utf-8") as f:
            doc = json.load(f)
        routes = []
        for template, item in doc["paths"].items():
            rx = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template)) + "$"
            routes.append((re.compile(rx), template, item))
        _state.update(doc=doc, routes=routes, validators={})
    return _state["doc"], _state["routes"]


def _resolve(doc, node, depth=0):
    """Inlines local $refs (the document has no recursive schemas; bounded anyway)."""
    if depth > 40:
        raise ContractError("$ref nesting too deep in api/openapi.json")
    if isinstance(node, dict):
        if "$ref" in node and isinstance(node["$ref"], str):
            target = doc
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return _resolve(doc, target, depth + 1)
        return {k: _resolve(doc, v, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(doc, v, depth + 1) for v in node]
    return node


def _route(path):
    _, routes = _load()
    # Exact templates first (so /docs beats /docs/{asset} never matters, but /batches/{id} is exact).
    for rx, template, item in routes:
        if rx.match(path):
            return template, item
    return None, None


def _validator(key, schema):
    with _lock:
        v = _state["validators"].get(key)
        if v is None:
            # Imported here: `make up` runs this package's cluster command line on the build
            # packages alone (scripts/lib.sh), which do not include python3-jsonschema.
            import jsonschema

            v = jsonschema.Draft202012Validator(schema)
            _state["validators"][key] = v
        return v


def _generic_error(method, path, status, headers, body, why):
    if status not in GENERIC:
        raise ContractError(f"{method} {path}: {why} (status {status}); body {body[:200]!r}")
    if method == "HEAD":
        return
    _check_error_body(method, path, status, headers, body)
    STATS["generic"] += 1


def _check_error_body(method, path, status, headers, body):
    ctype = headers.get("content-type", "").split(";")[0].strip()
    if ctype != "application/json":
        raise ContractError(f"{method} {path}: {status} with Content-Type {ctype!r}, not JSON")
    try:
        data = json.loads(body)
    except ValueError as e:
        raise ContractError(f"{method} {path}: {status} body is not JSON: {e}") from None
    if not isinstance(data, dict) or not isinstance(data.get("error"), str) or not data["error"]:
        raise ContractError(f"{method} {path}: {status} body is not {{\"error\": ...}}: {data!r}")


def check(method, path, status, headers, body):
    """Raises ContractError when the response is not one the document describes.

    method: as sent; path: the request target (a query string is ignored); headers: a dict with
    lower-case names; body: bytes."""
    doc, _ = _load()
    method = method.upper()
    path = path.split("?", 1)[0].split("#", 1)[0]
    body = body or b""
    with _lock:
        STATS["checked"] += 1
    template, item = _route(path)
    if item is None:
        _generic_error(method, path, status, headers, body, "path not in api/openapi.json")
        return
    op_method = "get" if method == "HEAD" else method.lower()
    if op_method not in METHODS or op_method not in item:
        if status == 405:
            if "allow" not in headers:
                raise ContractError(f"{method} {path}: 405 without Allow")
            _generic_error(method, path, status, headers, body, "method not served")
            return
        raise ContractError(f"{method} {path}: {status} for a method the document does not list")
    op = item[op_method]
    responses = op.get("responses", {})
    resp = responses.get(str(status))
    if resp is None and status == 404 and op_method == "get" and body == NOT_SERVED:
        # The admin listener serves only /healthz, /readyz and /metrics (the document says so).
        STATS["generic"] += 1
        return
    if resp is None:
        raise ContractError(f"{method} {path} ({template}): status {status} is not documented "
                            f"(documented: {', '.join(sorted(responses))}); body {body[:200]!r}")
    resp = _resolve(doc, resp)
    for name, h in (resp.get("headers") or {}).items():
        if h.get("required") and name.lower() not in headers:
            raise ContractError(f"{method} {path}: {status} lacks the required header {name}")
        pattern = (h.get("schema") or {}).get("pattern")
        if pattern and name.lower() in headers and not re.search(pattern, headers[name.lower()]):
            raise ContractError(f"{method} {path}: header {name}: {headers[name.lower()]!r} "
                                f"does not match {pattern}")
    content = resp.get("content")
    if method == "HEAD" or status == 304:
        return
    if not content:
        if body:
            raise ContractError(f"{method} {path}: {status} has a body, the document says none")
        return
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    media = content.get(ctype)
    if media is None:
        raise ContractError(f"{method} {path}: {status} Content-Type {ctype!r} is not one of "
                            f"{', '.join(content)}")
    schema = media.get("schema")
    if schema is None:
        return
    if headers.get("content-encoding") == "gzip":  # GET answers (issue 16): check what it encodes
        body = gzip.decompress(body)
    if ctype.endswith("json"):
        try:
            data = json.loads(body)
        except ValueError as e:
            raise ContractError(f"{method} {path}: {status} body is not JSON: {e}") from None
    else:
        data = body.decode("utf-8", "replace")
    v = _validator((template, op_method, status, ctype), schema)
    errors = sorted(v.iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        raise ContractError(f"{method} {path}: {status} body breaks the contract at {where}: "
                            f"{e.message} ({len(errors)} error(s))")


def schema_of(template, method, status, ctype="application/json"):
    """The resolved schema of one documented response (for tests of the document itself)."""
    doc, _ = _load()
    resp = _resolve(doc, doc["paths"][template][method]["responses"][str(status)])
    return resp["content"][ctype]["schema"]


# --- Responses read outside support.http.request() -------------------------------------------
# Tests that speak HTTP on their own sockets (raw bytes or their own http.client connection)
# route every COMPLETE response through check_raw() / check_response() below, so they cannot
# bypass the contract: ingest.RawUpload (POST /batches), httpd/test_http.py's keep-alive and
# concurrent clients, ops/test_shutdown.py (the held request, the drained upload, the keep-alive
# clients), httpd/test_slow_clients.py's normal client, httpd/test_abuse.py's idle connections,
# ops/test_reload.py's request held across the reload, ops.Load. Exempt, each for a reason:
# - http.raw_request() and the abuse/slow-client floods of httpd/test_abuse.py and
#   httpd/test_slow_clients.py: deliberately malformed, oversized or never-finished requests;
#   libmicrohttpd answers 400/413/431 or closes before any route runs, which is no operation
#   of the document (and most read no complete answer).
# - ops/test_shutdown.py's streamed uploads cut by SIGTERM: the server closes mid-body.
# - ingest/test_loader.py, ingest/test_gzip.py, deploy/test_envs.py: their sockets are a fake
#   upstream or a free-port probe, not clients of ratesd.
# - Under load (ops.Load, the concurrent and keep-alive clients) one answer in
#   SAMPLE_EVERY is checked: a JSON Schema validation of every answer would slow the load the
#   tests measure.
SAMPLE_EVERY = 20


def parse_raw(data):
    """(status, headers lower-cased, body bytes) of one complete HTTP/1.x response in data, or
    None when data does not hold a complete one (no head, a short body, an unfinished chunked
    body). Bounded by len(data)."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.split(b"\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        return None
    status = int(m.group(1))
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode("latin-1")] = v.strip().decode("latin-1")
    if status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        pos = 0
        for _ in range(1 << 20):
            eol = rest.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(rest[pos:eol].split(b";")[0] or b"0", 16)
            if size == 0:
                return status, headers, body
            if len(rest) < eol + 2 + size + 2:
                return None
            body += rest[eol + 2:eol + 2 + size]
            pos = eol + 2 + size + 2
        return None
    if "content-length" in headers:
        n = int(headers["content-length"])
        return (status, headers, rest[:n]) if len(rest) >= n else None
    return None  # no framing: ends at close; the callers' responses always carry a length


def check_raw(method, path, data):
    """Checks the response in data when it is complete; returns parse_raw(data)."""
    parsed = parse_raw(data)
    if parsed is not None:
        status, headers, body = parsed
        check(method, path, status, headers, b"" if method.upper() == "HEAD" else body)
    return parsed


def check_response(method, path, response, body):
    """Checks an http.client.HTTPResponse whose body the caller has read (body)."""
    check(method, path, response.status, {k.lower(): v for k, v in response.getheaders()}, body)
