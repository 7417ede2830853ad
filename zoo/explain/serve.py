"""`zoo serve`: the explainer page behind a local HTTP server, computing on demand with zoo.explain's functions.

The standard library's ThreadingHTTPServer: the server answers a handful of routes on 127.0.0.1 for one user,
so a framework would add a dependency and nothing it needs. Page and image requests are answered concurrently;
the computations share one model whose layers the attribution methods hook for a forward pass, so they run one
at a time under a lock. Every handler turns any error into a JSON {"error": one line} answer: a request never
takes the server down.

    GET  /                                   the page for the start image
    POST /api/explain?class=top|K            body: an image file (at most max_upload bytes) -> {data, images, image}
    GET  /api/unit?image=KEY&layer=L&index=r,c,ch   any unit's arithmetic chain
    GET  /api/image?image=KEY                the uploaded image's bytes (to recompute it for another class)
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import replace
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from ..errors import ZooError
from . import report
from .page import image_uris, render
from .images import ImageError, decode_image

CACHED_IMAGES = 8


class RequestError(ZooError, ValueError):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status


class Explainer:
    """The model (built once), the results of the last few images, and the lock the computations take."""

    def __init__(self, request: report.Request, max_upload: int = 10_000_000):
        self.request = request
        self.max_upload = max_upload
        self.lock = threading.Lock()
        self.results: OrderedDict[str, tuple[report.Result, bytes]] = OrderedDict()
        self.model = report.build_model(request.spec, request.weights, request.seed)
        start = report.png(request.image)
        self.start_key, self.start = self.explain(start, request.target, note=request.image_note,
                                                  source=request.image_source)

    def explain(self, content: bytes, target="top", note=None, source: str = "upload"):
        key = hashlib.sha256(content).hexdigest()[:16] + f"-{target}"
        with self.lock:
            if key in self.results:
                self.results.move_to_end(key)
                return key, self.results[key][0]
        image, downscaled = decode_image(content, source)
        request = replace(self.request, image=image, image_source=source, image_note=note or downscaled,
                          target=target)
        with self.lock:
            result = report.explain(request, model=self.model)
            self.results[key] = (result, content)
            while len(self.results) > CACHED_IMAGES:
                self.results.popitem(last=False)
        return key, result

    def result(self, key: str) -> tuple[report.Result, bytes]:
        with self.lock:
            if key not in self.results:
                raise RequestError(HTTPStatus.NOT_FOUND, f"image {key!r} is not (or no longer) on the server: "
                                   "upload it again")
            return self.results[key]

    def unit(self, key: str, layer: str, index: tuple[int, ...]) -> list[dict]:
        result, _ = self.result(key)
        with self.lock:
            return report.unit_on_demand(result, layer, index)

    def page(self) -> str:
        return render(self.start.data, self.start.pngs, serve=True, image_key=self.start_key)


def _target(value: str):
    if value in ("", "top"):
        return "top"
    try:
        return int(value)
    except ValueError:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"class: expected 'top' or an index, got {value!r}") from None


def _index(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise RequestError(HTTPStatus.BAD_REQUEST, f"index: expected r,c,ch or k, got {value!r}") from None


class Handler(BaseHTTPRequestHandler):
    explainer: Explainer  # set on the subclass make_server creates
    server_version = "zoo-serve"

    def log_message(self, format, *args):  # quiet: one user, one machine
        pass

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, value) -> None:
        self._send(status, json.dumps(value, allow_nan=False).encode("utf-8"), "application/json")

    def _guarded(self, action) -> None:
        try:
            action()
        except RequestError as e:
            self._json(e.status, {"error": str(e)})
        except (ImageError, ValueError, KeyError) as e:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(e).strip().splitlines()[0] if str(e) else repr(e)})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away
        except Exception as e:  # noqa: BLE001 - a request never takes the server down
            try:
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(e).__name__}: {e}".splitlines()[0]})
            except OSError:
                pass

    def do_GET(self):
        self._guarded(self._get)

    def do_POST(self):
        self._guarded(self._post)

    def _get(self):
        url = urlparse(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.explainer.page().encode("utf-8"), "text/html; charset=utf-8")
        elif url.path == "/api/unit":
            chain = self.explainer.unit(query.get("image", ""), query.get("layer", ""),
                                        _index(query.get("index", "")))
            self._json(HTTPStatus.OK, {"chain": chain})
        elif url.path == "/api/image":
            _, content = self.explainer.result(query.get("image", ""))
            self._send(HTTPStatus.OK, content, "application/octet-stream")
        else:
            raise RequestError(HTTPStatus.NOT_FOUND, f"no such page: {url.path}")

    def _post(self):
        url = urlparse(self.path)
        if url.path != "/api/explain":
            raise RequestError(HTTPStatus.NOT_FOUND, f"no such endpoint: {url.path}")
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "upload: Content-Length required")
        size = int(length)
        if size > self.explainer.max_upload:
            self.close_connection = True  # the body is not read
            raise RequestError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"upload: {size:,} bytes is over the limit of "
                               f"{self.explainer.max_upload:,} bytes (zoo serve --max-upload-mb)")
        if size == 0:
            raise RequestError(HTTPStatus.BAD_REQUEST, "upload: empty body (send an image file)")
        content = self.rfile.read(size)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        key, result = self.explainer.explain(content, _target(query.get("class", "top")))
        self._json(HTTPStatus.OK, {"image": key, "data": result.data, "images": image_uris(result.pngs),
                                   "note": result.data["image"]["note"]})


def make_server(explainer: Explainer, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"explainer": explainer})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
