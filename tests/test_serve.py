"""`zoo serve` on 127.0.0.1 only: the page, uploads (good, not an image, too large), units on demand, and
concurrent requests that never take it down. Every request is bounded by a timeout; the server is shut down."""

from __future__ import annotations

import io
import json
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("keras")

import zoo  # noqa: E402
from zoo.explain.images import sample_image  # noqa: E402
from zoo.explain.report import Request  # noqa: E402
from zoo.explain.serve import Explainer, make_server  # noqa: E402

TIMEOUT = 60


def png_bytes(array) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def server():
    image, source = sample_image(1)
    request = Request(spec=zoo.get_spec("lenet5"), image=image, image_source=source,
                      methods=("saliency", "gradcam"))
    httpd = make_server(Explainer(request, max_upload=200_000), "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)
    assert not thread.is_alive()


def call(url: str, data: bytes | None = None):
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET",
                                 headers={"Content-Type": "application/octet-stream"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_binds_to_localhost(server):
    _, httpd = server
    assert httpd.server_address[0] == "127.0.0.1"


def test_the_page_is_served_in_serve_mode(server):
    base, _ = server
    status, body = call(base + "/")
    assert status == 200
    html = body.decode()
    assert '"serve":true' in html and 'id="explain-data"' in html


def test_upload_explains_the_image_and_units_come_on_demand(server):
    base, _ = server
    image = np.zeros((28, 28), "uint8")
    image[6:22, 12:16] = 255
    status, body = call(base + "/api/explain?class=3", png_bytes(image))
    assert status == 200, body
    answer = json.loads(body)
    assert answer["data"]["classes"][0] == 3 and answer["data"]["model"]["name"] == "lenet5"
    assert all(uri.startswith("data:image/png;base64,") for uri in answer["images"].values())
    status, body = call(f"{base}/api/unit?image={answer['image']}&layer=conv2&index=4,5,7")
    assert status == 200, body
    chain = json.loads(body)["chain"]
    assert chain[0]["op"] == "conv" and chain[0]["difference"] <= 1e-4 * max(1, abs(chain[0]["model_value"]))


def test_not_an_image_gets_a_clear_message(server):
    base, _ = server
    status, body = call(base + "/api/explain", b"this is a text file, not a picture")
    assert status == 400
    assert json.loads(body)["error"].startswith("upload: not an image")


def test_an_upload_over_the_limit_is_refused(server):
    base, _ = server
    status, body = call(base + "/api/explain", b"\0" * 300_000)
    assert status == 413
    assert "over the limit of 200,000 bytes" in json.loads(body)["error"]


def test_bad_unit_requests_are_answered_not_fatal(server):
    base, _ = server
    status, body = call(base + "/api/unit?image=nope&layer=conv2&index=0,0,0")
    assert status == 404 and "upload it again" in json.loads(body)["error"]
    _, page = call(base + "/")
    key = page.decode().split('"image":"')[1].split('"')[0]
    status, body = call(f"{base}/api/unit?image={key}&layer=conv_2&index=0,0,0")
    assert status == 400 and "did you mean conv2" in json.loads(body)["error"]
    status, body = call(f"{base}/api/unit?image={key}&layer=conv2&index=99,0,0")
    assert status == 400 and "outside" in json.loads(body)["error"]


def test_concurrent_requests_never_crash_it(server):
    base, _ = server
    _, page = call(base + "/")
    key = page.decode().split('"image":"')[1].split('"')[0]
    good = png_bytes(np.random.default_rng(0).integers(0, 255, (32, 32), dtype="uint8"))
    jobs = [("GET", f"{base}/api/unit?image={key}&layer=conv1&index={i % 28},{i % 7},{i % 6}", None)
            for i in range(12)]
    jobs += [("POST", base + "/api/explain", good), ("POST", base + "/api/explain", b"junk")] * 3
    jobs += [("GET", base + "/", None)] * 4
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda job: call(job[1], job[2])[0], jobs))
    assert statuses.count(400) == 3 and set(statuses) == {200, 400}
    assert call(base + "/")[0] == 200  # still up


def test_named_weights_are_served_with_their_preprocessing():
    """`zoo serve MODEL --weights TAG`: the page and every upload use those weights and their preprocessing."""
    from zoo.pretrained import resolve

    spec = zoo.get_spec("lenet5")
    weights = resolve(spec, "fashion_mnist")
    image, source = sample_image(0)
    explainer = Explainer(Request(spec=spec, image=image, image_source=source, weights=weights,
                                  methods=("saliency",)))
    key, result = explainer.explain(png_bytes(image[..., 0]))
    assert result.data["weights"]["sha256"] == spec.weights["fashion_mnist"].sha256
    assert result.data["preprocessing"]["description"] == weights.preprocessing.describe()
    expected = explainer.model.predict(weights.preprocess(image), verbose=0)[0]
    np.testing.assert_allclose(result.data["head"]["probabilities"], expected, atol=1e-6)
    assert result.data["head"]["top"][0]["name"] == "Trouser"
