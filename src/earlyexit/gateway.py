"""HTTP APIs (API Gateway v2) served locally: each request invokes its route's Lambda function in-process.

An HTTP API deployed into the engine (its routes and integrations, as moto's API Gateway v2
holds them) answers at ``{base}/execute-api/{apiId}/...``: ``earlyexit serve`` serves it under
its own address, an embedded cloud on a port of its own. A request becomes the payload format
2.0 event that API Gateway sends a Lambda proxy integration, and the function's answer
becomes the HTTP response, as API Gateway maps it
(https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html).
No route: 404 ``{"message":"Not Found"}``; a function that fails: 500
``{"message":"Internal Server Error"}``, as API Gateway answers.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from moto.apigatewayv2.models import apigatewayv2_backends
from moto.awslambda.models import lambda_backends
from moto.utilities.arns import parse_arn
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from earlyexit.engine.runtime.functions import FunctionError, invoke_function

__all__ = ["PREFIX", "HttpApiGateway", "LocalHttpServer", "api_base_url"]

PREFIX = "/execute-api/"
_FUNCTION_IN_URI = re.compile(r"(arn:aws[a-z-]*:lambda:[^/]+:function:[^/]+?)(?:/invocations)?$")
WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def api_base_url(base: str, api_id: str) -> str:
    """The URL an HTTP API answers at, below ``base`` (an endpoint's or a local server's address)."""
    return f"{base.rstrip('/')}{PREFIX}{api_id}"


def _json_response(status: int, body: dict[str, Any]) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def _find_api(api_id: str) -> tuple[Any, str, str] | None:
    for account, regions in apigatewayv2_backends.items():
        for region, backend in regions.items():
            if api_id in backend.apis:
                return backend.apis[api_id], account, region
    return None


def _route_pattern(path: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\{[^}]+\})", path):
        if piece.startswith("{") and piece.endswith("+}"):
            parts.append(f"(?P<{piece[1:-2]}>.+)")
        elif piece.startswith("{"):
            parts.append(f"(?P<{piece[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))


def _match_route(api: Any, method: str, path: str) -> tuple[Any, str, dict[str, str]] | None:
    """The route for ``method path`` (the most specific: exact method before ANY, $default last)."""
    default = None
    for any_method in (False, True):
        for route in api.routes.values():
            if route.route_key == "$default":
                default = route
                continue
            route_method, _, route_path = route.route_key.partition(" ")
            if (route_method == "ANY") != any_method or (not any_method and route_method != method):
                continue
            match = _route_pattern(route_path).fullmatch(path)
            if match:
                return route, route.route_key, match.groupdict()
    return (default, "$default", {}) if default else None


class HttpApiGateway:
    """WSGI middleware: requests under ``/execute-api/{apiId}/`` go to the API's routes, others to ``app``."""

    def __init__(self, app: WsgiApp | None = None) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            if self.app is None:
                return _json_response(404, {"message": "Not Found"})(environ, start_response)
            return self.app(environ, start_response)
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, request: Request) -> Response:
        """Answer ``request`` as the HTTP API it names would."""
        api_id, _, rest = request.path[len(PREFIX):].partition("/")
        found = _find_api(api_id)
        if found is None:
            return _json_response(404, {"message": "Not Found"})
        api, account, region = found
        path = "/" + rest
        matched = _match_route(api, request.method, path)
        if matched is None or not matched[0].target:
            return _json_response(404, {"message": "Not Found"})
        route, route_key, parameters = matched
        integration = api.integrations.get(matched[0].target.split("/", 1)[1])
        function_arn = _FUNCTION_IN_URI.search(str(getattr(integration, "integration_uri", "") or ""))
        if function_arn is None:
            return _json_response(500, {"message": "Internal Server Error"})
        arn = parse_arn(function_arn.group(1))
        function = lambda_backends[arn.account][arn.region].get_function(function_arn.group(1))
        event = _event(request, api_id, account, route_key, path, parameters)
        try:
            result = invoke_function(function, event)
        except FunctionError:
            return _json_response(500, {"message": "Internal Server Error"})
        return _response(result)


def _event(request: Request, api_id: str, account: str, route_key: str, path: str,
           parameters: dict[str, str]) -> dict[str, Any]:
    """The payload format 2.0 event of ``request``."""
    body = request.get_data()
    content_type = request.headers.get("Content-Type", "")
    textual = content_type.startswith(("text/", "application/json")) or not body
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        name = name.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query = parse_qsl(request.query_string.decode(), keep_blank_values=True)
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0", "routeKey": route_key, "rawPath": path,
        "rawQueryString": request.query_string.decode(),
        "headers": headers,
        "requestContext": {
            "accountId": account, "apiId": api_id, "domainName": request.host,
            "domainPrefix": request.host.split(".")[0],
            "http": {"method": request.method, "path": path, "protocol": request.environ.get("SERVER_PROTOCOL",
                                                                                           "HTTP/1.1"),
                     "sourceIp": request.remote_addr or "127.0.0.1",
                     "userAgent": request.headers.get("User-Agent", "")},
            "requestId": uuid.uuid4().hex[:16], "routeKey": route_key, "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": not textual,
    }
    if request.cookies:
        event["cookies"] = [f"{k}={v}" for k, v in request.cookies.items()]
    if query:
        event["queryStringParameters"] = {k: ",".join(v for q, v in query if q == k) for k, _ in query}
    if parameters:
        event["pathParameters"] = parameters
    if body:
        event["body"] = body.decode() if textual else base64.b64encode(body).decode()
    return event


def _response(result: Any) -> Response:
    """The HTTP response API Gateway makes of a payload 2.0 function's answer."""
    if not (isinstance(result, dict) and "statusCode" in result):
        return Response(json.dumps(result), status=200, content_type="application/json")
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    response = Response(data, status=int(result["statusCode"]))
    response.headers.remove("Content-Type")
    for name, value in (result.get("headers") or {}).items():
        response.headers[name] = str(value)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    if "Content-Type" not in response.headers:
        response.headers["Content-Type"] = "application/json"
    return response


class LocalHttpServer:
    """The HTTP APIs on a loopback port of their own (for an embedded cloud, which has no endpoint)."""

    def __init__(self) -> None:
        self._server: BaseWSGIServer = make_server("127.0.0.1", 0, HttpApiGateway(), threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-apis", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
