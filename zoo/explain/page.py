"""explain.json (+ its PNGs) -> one self-contained index.html: inline CSS and JS, the data in
<script type="application/json"> blocks, every image a data URI. It makes no network request and works from
file://; served by `zoo serve` (`serve=True`) it also uploads images and asks for units and classes on demand."""

from __future__ import annotations

import base64
import json
from importlib import resources


def _asset(name: str) -> str:
    return resources.files("zoo.explain").joinpath("static", name).read_text(encoding="utf-8")


def json_block(element_id: str, value) -> str:
    # "</" inside a script element would end it: JSON allows "\/" for "/"
    text = json.dumps(value, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def image_uris(pngs: dict[str, bytes]) -> dict[str, str]:
    return {path: "data:image/png;base64," + base64.b64encode(content).decode("ascii")
            for path, content in pngs.items()}


def render(data: dict, pngs: dict[str, bytes], serve: bool = False, image_key: str | None = None) -> str:
    """The page; `serve`: the `zoo serve` version (upload, drawing pad, units and classes on demand for the image
    the server knows as `image_key`)."""
    title = f"zoo explain: {data['model']['name']}"
    blocks = "\n".join([json_block("explain-data", data), json_block("explain-images", image_uris(pngs)),
                        json_block("explain-mode", {"serve": serve, "image": image_key})])
    return (_asset("page.html").replace("{{title}}", title).replace("{{css}}", _asset("page.css"))
            .replace("{{data}}", blocks).replace("{{js}}", _asset("page.js")))
