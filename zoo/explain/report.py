"""One model, one image -> every view as data (explain.json) and images (PNGs), from the real Keras graph.

`explain(request)` is what `zoo explain` and `zoo serve` call; `write(result, folder)` writes
folder/explain.json, folder/png/*.png and folder/index.html. What is precomputed (so the static page has it) and
what `zoo serve` computes on demand (any unit, any class):

- feature maps of the shown layers: the `top_channels` most active channels of each, as PNGs;
- unit arithmetic: per shown channel its strongest unit and its centre unit (the page computes any unit's
  receptive field itself from the layer's field; the arithmetic of other units is `zoo serve`'s);
- head, attribution maps for the top-5 classes, Grad-CAM at every feature stage, deconvnet at the stages,
  occlusion, and the sanity check against randomised weights.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import attribution, compute
from .preprocess import Preprocessing

METHODS = ("saliency", "smoothgrad", "gradcam", "occlusion", "deconvnet", "sanity")
TOP_CLASSES = 5
MANY_LAYERS = 40  # above this many spatial layers, the overview shows block outputs only


@dataclass
class Request:
    spec: object
    image: np.ndarray  # uint8 HxWxC as loaded
    image_source: str = "image"
    image_note: Optional[str] = None
    weights: Optional[str] = None  # a file, or None: random initialisation
    target: str | int = "top"  # "top" or a class index
    methods: tuple[str, ...] = METHODS
    layers: Optional[list[str]] = None
    top_channels: int = 8
    seed: int = 0


@dataclass
class Result:
    data: dict
    pngs: dict[str, bytes] = field(default_factory=dict)
    model: object = None
    graph: object = None
    x: object = None


# ---------------------------------------------------------------------------------------------------------------
# Images


def png(array: np.ndarray) -> bytes:
    """uint8 HxW, HxWx1 or HxWx3 -> PNG bytes."""
    from PIL import Image

    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def to_unit(values: np.ndarray, symmetric: bool = False) -> np.ndarray:
    """Scale to 0..1 for display (per map); symmetric: 0 -> 0.5."""
    values = np.asarray(values, "float64")
    if symmetric:
        top = np.abs(values).max() or 1.0
        return 0.5 + 0.5 * values / top
    lo, hi = values.min(), values.max()
    return np.zeros_like(values) if hi <= lo else (values - lo) / (hi - lo)


# viridis at five stops: a perceptually ordered map without importing matplotlib (start-up time counts here)
STOPS = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], "float64")


def colour(values01: np.ndarray) -> np.ndarray:
    t = np.clip(values01, 0, 1) * (len(STOPS) - 1)
    low = np.floor(t).astype(int).clip(0, len(STOPS) - 2)
    frac = (t - low)[..., None]
    return np.round(STOPS[low] * (1 - frac) + STOPS[low + 1] * frac).astype("uint8")


def resized(values: np.ndarray, height: int, width: int) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(np.asarray(values, "float32"), mode="F")
    return np.asarray(image.resize((width, height), Image.BILINEAR), "float64")


def overlay(base: np.ndarray, heat01: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """A heat map over the (grey or RGB) input, at the input's size."""
    h, w = base.shape[:2]
    heat = colour(resized(heat01, h, w))
    rgb = np.repeat(base, 3, axis=-1) if base.shape[-1] == 1 else base
    return np.round(rgb * (1 - alpha) + heat * alpha).astype("uint8")


class Images:
    """PNGs by relative path (png/NAME.png), with unique names."""

    def __init__(self):
        self.files: dict[str, bytes] = {}

    def add(self, name: str, array: np.ndarray) -> str:
        path = "png/" + re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".png"
        self.files[path] = png(array)
        return path

    def grey(self, name: str, values: np.ndarray, symmetric: bool = False) -> str:
        return self.add(name, np.round(to_unit(values, symmetric) * 255).astype("uint8"))


# ---------------------------------------------------------------------------------------------------------------
# Model and weights


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_model(spec, weights: Optional[str], seed: int = 0):
    """The spec's model at its input size, with the weights file loaded (or a seeded random initialisation)."""
    import keras

    from ..models import build_spec, family_of

    keras.utils.set_random_seed(seed)
    family = family_of(spec)
    model = build_spec(spec, weights=weights)
    return family.inference_model(model)


def weights_facts(weights: Optional[str], seed: int) -> dict:
    if weights is None:
        return {"source": "none", "note": f"random initialisation (seed {seed})", "sha256": None}
    return {"source": os.path.abspath(weights), "sha256": sha256(weights), "bytes": os.path.getsize(weights)}


def versions() -> dict:
    import keras
    import tensorflow as tf

    from .. import __version__

    return {"zoo": __version__, "tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


# ---------------------------------------------------------------------------------------------------------------
# Which layers


BLOCK = re.compile(r"^(conv\d+_block\d+|inception_\d[a-z]|pool\d+|block\d+)")


def block_of(name: str) -> str:
    match = BLOCK.match(name)
    return match.group(1) if match else name


def default_layers(graph: compute.Graph) -> list[str]:
    """The overview's layers: every spatial layer for the small nets; block outputs, pools and the stem for the
    deep ones (ResNet's `_out`, DenseNet's and inception's concatenations)."""
    candidates = [n for n, node in graph.nodes.items()
                  if node.inputs and graph.spatial(n) and node.kind not in ("ZeroPadding2D", "Dropout", "InputLayer")]
    if len(candidates) <= MANY_LAYERS:
        return candidates
    keep = []
    for n in candidates:
        kind = graph.nodes[n].kind
        after_add = kind == "Activation" and any(graph.nodes[s].kind == "Add" for s in graph.nodes[n].inputs)
        if kind in ("Concatenate", "MaxPooling2D", "AveragePooling2D") or after_add or n == candidates[0]:
            keep.append(n)
    return keep


def chosen_layers(graph: compute.Graph, names: Optional[list[str]]) -> list[str]:
    if not names:
        return default_layers(graph)
    for name in names:
        graph.layer(name)  # LayerNotFoundError with close names
        if not graph.spatial(name):
            raise ValueError(f"--layers: {name!r} has no feature maps (output {graph.nodes[name].output_shape})")
    return list(names)


# ---------------------------------------------------------------------------------------------------------------
# The views


def head_view(logits: np.ndarray, probs: np.ndarray, names: list[str]) -> dict:
    order = np.argsort(-probs)[:TOP_CLASSES]
    return {"logits": logits.tolist(), "probabilities": probs.tolist(), "class_names": names,
            "softmax": "p_i = exp(z_i - max z) / sum_j exp(z_j - max z)", "max_logit": float(logits.max()),
            "top": [{"class": int(c), "name": names[c], "probability": float(probs[c]), "logit": float(logits[c])}
                    for c in order]}


def class_names(spec, count: int) -> list[str]:
    from ..data.catalogue import get_dataset

    try:
        names = get_dataset(spec.dataset).names()
    except Exception:  # a names file that is not installed (ImageNet's lives in tensorflow_datasets)
        names = []
    return names if len(names) == count else [f"class {i}" for i in range(count)]


def layer_views(graph, fields, acts, shown, images: Images, top: int) -> tuple[list[dict], dict[str, list]]:
    """Per layer: kind, inputs, shape, field, block; for the shown ones, the top channels as PNGs. Returns the
    layer list and, per shown layer, the units to precompute."""
    views, units = [], {}
    for name, node in graph.nodes.items():
        view = {"name": name, "kind": node.kind, "inputs": list(node.inputs), "block": block_of(name),
                "shape": [d for d in node.output_shape[1:]], "field": fields[name].as_dict(),
                "shown": name in shown}
        layer = graph.layers[name]
        for attr in ("kernel_size", "strides", "padding", "pool_size", "groups", "filters", "units"):
            value = getattr(layer, attr, None)
            if value is not None and not callable(value):
                view[attr] = list(value) if isinstance(value, tuple) else value
        if name in shown:
            a = acts[name][0]
            strength = a.reshape(-1, a.shape[-1]).max(axis=0)
            order = np.argsort(-strength)[:top]
            view["channels"] = []
            units[name] = []
            for ch in order:
                ch = int(ch)
                r, c = np.unravel_index(np.argmax(a[..., ch]), a.shape[:2])
                view["channels"].append({"channel": ch, "max": float(a[..., ch].max()), "min": float(a[..., ch].min()),
                                         "mean": float(a[..., ch].mean()), "argmax": [int(r), int(c)],
                                         "png": images.grey(f"map_{name}_{ch}", a[..., ch]),
                                         "field": compute.unit_field(graph, fields, name, ch).as_dict()})
                units[name] += [(int(r), int(c), ch), (a.shape[0] // 2, a.shape[1] // 2, ch)]
        views.append(view)
    return views, units


def unit_key(name: str, index) -> str:
    return f"{name}:{','.join(str(int(i)) for i in index)}"


def units_view(graph, acts, wanted: dict[str, list]) -> dict:
    out = {}
    for name, indices in wanted.items():
        for index in indices:
            key = unit_key(name, index)
            if key not in out:
                out[key] = compute.unit_chain(graph, name, index, acts)
    return out


def filters_view(graph, images: Images) -> Optional[dict]:
    """The first convolution's kernels as images (ZFNet's 7x7 beside AlexNet's 11x11 is the classic)."""
    first = next((n for n, node in graph.nodes.items() if node.kind in ("Conv2D", "PartialConv2D")), None)
    if first is None:
        return None
    kernel = np.asarray(graph.layers[first].kernel, "float64")
    if kernel.ndim != 4:
        return None
    tiles = []
    rgb = kernel.shape[2] == 3
    for f in range(kernel.shape[-1]):
        k = kernel[..., f] if rgb else kernel[..., 0, f]
        tiles.append(images.add(f"filter_{first}_{f}", np.round(to_unit(k, symmetric=True) * 255).astype("uint8")))
    return {"layer": first, "shape": list(kernel.shape), "groups": getattr(graph.layers[first], "groups", 1),
            "png": tiles, "note": "each kernel scaled on its own, 0 = mid grey"}


def family_view(graph, acts) -> dict:
    """The family's own structures, generically: additions (ResNet's |F(x)| against |x|), concatenations
    (GoogLeNet's branch shares, DenseNet's source layers), connection tables (LeNet-5's C3), towers (AlexNet's
    groups) and LRN."""
    merges, tables, towers, lrns = [], [], [], []
    for name, node in graph.nodes.items():
        if name not in acts:
            continue
        if node.kind == "Add" and all(s in acts for s in node.inputs):
            merges.append({"layer": name, "op": "add", "inputs": [
                {"name": s, "mean_abs": float(np.abs(acts[s][0]).mean())} for s in node.inputs]})
        elif node.kind == "Concatenate" and all(s in acts for s in node.inputs):
            total = sum(float(np.abs(acts[s][0]).sum()) for s in node.inputs) or 1.0
            offset, parts = 0, []
            for s in node.inputs:
                width = acts[s].shape[-1]
                parts.append({"name": s, "channels": [offset, offset + width],
                              "share": float(np.abs(acts[s][0]).sum()) / total})
                offset += width
            merges.append({"layer": name, "op": "concat", "inputs": parts})
        layer = graph.layers[name]
        if node.kind == "PartialConv2D":
            tables.append({"layer": name, "table": layer.table, "inputs": layer.in_maps})
        elif node.kind == "Conv2D" and getattr(layer, "groups", 1) > 1:
            towers.append({"layer": name, "groups": layer.groups, "filters": layer.filters})
        elif node.kind == "LocalResponseNormalization" and node.inputs[0] in acts:
            lrns.append({"layer": name, "mean_abs_before": float(np.abs(acts[node.inputs[0]][0]).mean()),
                         "mean_abs_after": float(np.abs(acts[name][0]).mean())})
    first_two = [n for n, node in graph.nodes.items() if node.kind == "Conv2D"][:2]
    if not tables and len(first_two) == 2 and graph.nodes[first_two[1]].inputs:  # full connectivity (modern LeNet)
        inputs = graph.layers[first_two[0]].filters
        tables.append({"layer": first_two[1], "full": True, "inputs": inputs,
                       "table": [list(range(inputs))] * graph.layers[first_two[1]].filters})
    return {"merges": merges, "connection_tables": tables, "towers": towers, "lrn": lrns}


def stage_layers(spec, graph) -> list[str]:
    from ..models import family_of

    names = [s.name for s in family_of(spec).feature_stages(spec.arch) if s.name in graph.nodes]
    last = attribution.last_spatial_layer(graph.model)
    return [n for n in names if n != last][-3:] + [last]


def attribution_view(request, model, graph, x, base, classes, images: Images, timings) -> dict:
    out: dict = {"not_applicable": {}}
    methods = request.methods
    h, w = x.shape[1:3]
    gradcam_layers = stage_layers(request.spec, graph) if "gradcam" in methods else []
    if "saliency" in methods or gradcam_layers:
        t = time.perf_counter()
        both = attribution.gradients(model, x, gradcam_layers, classes, with_saliency="saliency" in methods)
        timings["saliency+gradcam"] = time.perf_counter() - t
    if "saliency" in methods:
        out["saliency"] = {str(c): images.add(f"saliency_{c}", colour(to_unit(m)))
                           for c, m in both["saliency"].items()}
    if "smoothgrad" in methods:
        t = time.perf_counter()
        samples = 16 if h <= 64 else 6  # a 224x224 ResNet-50 pass with its gradient costs ~1 s on 2 cores
        m = attribution.smoothgrad(model, x, classes[0], samples=samples)
        out["smoothgrad"] = {"class": classes[0], "samples": samples, "noise": 0.15,
                             "png": images.add(f"smoothgrad_{classes[0]}", colour(to_unit(m)))}
        timings["smoothgrad"] = time.perf_counter() - t
    if gradcam_layers:
        out["gradcam"] = {"layers": gradcam_layers, "default": gradcam_layers[-1], "maps": {}}
        for name in gradcam_layers:
            out["gradcam"]["maps"][name] = {str(c): {
                "png": images.add(f"gradcam_{name}_{c}", overlay(base, to_unit(cam))),
                "values": np.round(cam, 6).tolist() if cam.size <= 64 else None, "shape": list(cam.shape),
                "max": float(cam.max())} for c, cam in both["gradcam"][name].items()}
    if "occlusion" in methods:
        t = time.perf_counter()
        occ = attribution.occlusion(model, x, classes)
        out["occlusion"] = {"patch": occ["patch"], "stride": occ["stride"], "positions": occ["positions"],
                            "fill": "the dataset mean (0 after normalisation)", "maps": {
            str(c): {"png": images.add(f"occlusion_{c}", overlay(base, 1.0 - to_unit(m))),
                     "probabilities": np.round(m, 6).tolist()} for c, m in occ["maps"].items()}}
        timings["occlusion"] = time.perf_counter() - t
    if "deconvnet" in methods:
        t = time.perf_counter()
        if not attribution.has_max_pooling(model):
            out["not_applicable"]["deconvnet"] = (f"{model.name} has no max pooling: the deconvnet unpools "
                                                  "through max-pool switches (the other views are made)")
        else:
            out["deconvnet"] = {}
            for name in stage_layers(request.spec, graph)[-3 if h <= 64 else -2:]:
                a = compute.feature_maps(model, x, [name])[name][0]
                channels = [int(c) for c in np.argsort(-a.reshape(-1, a.shape[-1]).max(axis=0))[:4]]
                recon = attribution.deconvnet(model, x, name, channels)
                out["deconvnet"][name] = [{"channel": ch, "unit": r["unit"], "activation": r["activation"],
                                           "png": images.add(f"deconv_{name}_{ch}", np.round(to_unit(
                                               r["image"], symmetric=True) * 255).astype("uint8"))}
                                          for ch, r in recon.items()]
        timings["deconvnet"] = time.perf_counter() - t
    return out


def sanity_view(request, model, graph, x, base, cls: int, images: Images, timings) -> dict:
    """Adebayo et al. 2018: the maps with randomised weights beside the given ones; similar maps mean the
    method does not explain the weights."""
    t = time.perf_counter()
    random_model = build_model(request.spec, None, seed=request.seed + 1)
    layer = attribution.last_spatial_layer(model)
    given = attribution.gradients(model, x, [layer], [cls])
    randomised = attribution.gradients(random_model, x, [layer], [cls])
    given_sal, random_sal = given["saliency"][cls], randomised["saliency"][cls]
    given_cam, random_cam = given["gradcam"][layer][cls], randomised["gradcam"][layer][cls]
    timings["sanity"] = time.perf_counter() - t
    return {"class": cls, "layer": layer, "random_seed": request.seed + 1,
            "given_weights_random": request.weights is None,
            "saliency_rank_correlation": attribution.spearman(given_sal, random_sal),
            "gradcam_rank_correlation": attribution.spearman(given_cam, random_cam),
            "saliency_png": images.add(f"sanity_saliency_{cls}", colour(to_unit(random_sal))),
            "gradcam_png": images.add(f"sanity_gradcam_{cls}", overlay(base, to_unit(random_cam)))}


# ---------------------------------------------------------------------------------------------------------------
# Everything


def explain(request: Request, model=None) -> Result:
    start = time.perf_counter()
    timings: dict[str, float] = {}
    spec = request.spec
    unknown = [m for m in request.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown {', '.join(unknown)} (choose from {', '.join(METHODS)})")
    prep = Preprocessing.for_spec(spec)
    x1, steps = prep.apply(request.image)
    x = x1[None].astype("float32")
    base = steps[-1].image
    images = Images()
    t = time.perf_counter()
    model = model if model is not None else build_model(spec, request.weights, request.seed)
    timings["build"] = time.perf_counter() - t
    graph = compute.Graph(model)
    shown = chosen_layers(graph, request.layers)
    t = time.perf_counter()
    fields = compute.receptive_fields(graph)
    needed = compute.needed_for_units(graph, shown)
    acts = compute.feature_maps(model, x, sorted(set(needed) | {n for n, nd in graph.nodes.items()
                                                              if nd.kind in ("Add", "Concatenate",
                                                                             "LocalResponseNormalization")}
                                                 | {s for n, nd in graph.nodes.items()
                                                    if nd.kind in ("Add", "Concatenate",
                                                                   "LocalResponseNormalization")
                                                    for s in nd.inputs}))
    logits, probs = attribution.predict(model, x)
    timings["forward"] = time.perf_counter() - t
    names = class_names(spec, len(probs))
    if request.target == "top":
        classes = [int(c) for c in np.argsort(-probs)[:TOP_CLASSES]]
    else:
        target = int(request.target)
        if not 0 <= target < len(probs):
            raise ValueError(f"--class: {target} is not a class of {spec.name} (0..{len(probs) - 1})")
        classes = [target] + [int(c) for c in np.argsort(-probs) if c != target][:TOP_CLASSES - 1]
    t = time.perf_counter()
    layers_view, wanted = layer_views(graph, fields, acts, shown, images, request.top_channels)
    units = units_view(graph, acts, wanted)
    timings["units"] = time.perf_counter() - t
    data = {
        "model": {"name": spec.name, "family": spec.family, "params": spec.params, "paper": spec.paper.title,
                  "year": spec.paper.year, "input": list(x.shape[1:]), "keras_name": model.name},
        "weights": weights_facts(request.weights, request.seed),
        "versions": versions(),
        "image": {"source": request.image_source, "note": request.image_note,
                  "original_shape": list(request.image.shape)},
        "preprocessing": {**prep.describe(), "steps": [
            {"name": s.name, "detail": s.detail, "png": images.add(f"input_{i}_{s.name}", s.image)}
            for i, s in enumerate(steps)]},
        "input_png": images.add("input", base),
        "head": head_view(logits, probs, names),
        "classes": classes,
        "layers": layers_view,
        "shown_layers": shown,
        "units": units,
        "filters": filters_view(graph, images),
        "family": family_view(graph, acts),
    }
    data["attribution"] = attribution_view(request, model, graph, x, base, classes, images, timings)
    if "sanity" in request.methods:
        data["sanity"] = sanity_view(request, model, graph, x, base, classes[0], images, timings)
    timings["total"] = time.perf_counter() - start
    data["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    return Result(data=data, pngs=images.files, model=model, graph=graph, x=x)


def unit_on_demand(result: Result, layer: str, index: tuple[int, ...]) -> list[dict]:
    """Any unit's arithmetic chain (what `zoo serve` answers for a click the page had not precomputed)."""
    graph = result.graph
    graph.layer(layer)
    shape = graph.nodes[layer].output_shape[1:]
    if len(index) != len(shape) or any(not 0 <= i < d for i, d in zip(index, shape)):
        raise ValueError(f"unit {list(index)} is outside {layer}'s output {list(shape)}")
    names = compute.needed_for_units(graph, [layer])
    after = layer
    while len(graph.consumers.get(after, [])) == 1:  # the elementwise layers unit_chain follows
        after = graph.consumers[after][0]
        if graph.nodes[after].kind not in ("BatchNormalization", "Activation", "ReLU", "Dropout",
                                           "LocalResponseNormalization"):
            break
        names.append(after)
    acts = compute.feature_maps(result.model, result.x, names)
    return compute.unit_chain(graph, layer, index, acts)


def write_atomic(path: Path, content: bytes) -> None:
    """Readers see the old file or the whole new one (zoo.io.atomic_path collects garbage for h5py on every
    file, 0.4 s each with TensorFlow loaded: too slow for a page's hundreds of PNGs)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write(result: Result, folder: str | os.PathLike, html: Optional[str] = None) -> Path:
    """folder/explain.json, folder/png/*.png and folder/index.html, each written atomically (the PNGs as a
    folder: written beside, then swapped in, so no reader sees a mix of two runs' images)."""
    import json
    import shutil
    import tempfile

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fresh = Path(tempfile.mkdtemp(dir=folder, prefix=".png.", suffix=".partial"))
        for path, content in result.pngs.items():
            (fresh / Path(path).name).write_bytes(content)
        os.chmod(fresh, 0o777 & ~_umask())
        target = folder / "png"
        if target.exists():
            old = folder / f".png.old.{os.getpid()}"
            os.replace(target, old)
            os.replace(fresh, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(fresh, target)
        text = json.dumps(result.data, separators=(",", ":"), allow_nan=False)
        write_atomic(folder / "explain.json", text.encode("utf-8"))
        if html is None:
            from .page import render

            html = render(result.data, result.pngs)
        write_atomic(folder / "index.html", html.encode("utf-8"))
    except OSError as e:
        raise OSError(f"--output: cannot write {folder}: {e.strerror or e}") from None
    return folder / "index.html"


def data_uri(content: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(content).decode("ascii")
