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
import functools
import io
import os
import platform
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from . import attribution, compute, family

METHODS = ("saliency", "smoothgrad", "gradcam", "occlusion", "deconvnet", "sanity")
TOP_CLASSES = 5
MANY_LAYERS = 40  # above this many spatial layers, the overview shows block outputs only


@dataclass
class Request:
    spec: object
    image: np.ndarray  # uint8 HxWxC as loaded
    image_source: str = "image"
    image_note: Optional[str] = None
    weights: object = None  # zoo.pretrained.Weights, a tag or a path (resolved by zoo.pretrained), or None: random
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
    # zlib level 6: a 224x224 page's PNGs are 2% larger than at 9 and encode 4.5x faster (1.5 s -> 0.3 s CPU)
    Image.fromarray(array).save(buffer, format="PNG", optimize=False, compress_level=6)
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


def resolve_weights(spec, weights):
    """What the caller named -> zoo.pretrained.Weights (the path zoo.build and zoo predict take), or None."""
    if weights is None or weights == "none":
        return None
    from ..pretrained import resolve

    return resolve(spec, weights)


def preprocessing_for(spec, weights):
    """The weights' own preprocessing; for random weights the evaluation pipeline's on the variant's dataset."""
    if weights is not None:
        return weights.preprocessing
    from ..pretrained import pipeline_preprocessing

    return pipeline_preprocessing(spec, spec.dataset)


def build_model(spec, weights=None, seed: int = 0, like=None):
    """The spec's model with `weights` (zoo.pretrained.Weights) loaded, at their input size; or a seeded random
    initialisation (`like`: a model whose input shape and class count it takes)."""
    import keras

    from ..models import build_spec, family_of

    keras.utils.set_random_seed(seed)
    weights = resolve_weights(spec, weights)
    options = {}
    if weights is not None:
        prep = weights.preprocessing
        shape = (prep.size, prep.size, prep.channels)
        options = {"weights": weights}
    elif like is not None:
        shape, options = tuple(like.input_shape[1:]), {"classes": int(like.output_shape[-1])}
    else:
        shape = (spec.input.size, spec.input.size, spec.input.channels)
    if shape != (spec.input.size, spec.input.size, spec.input.channels):
        options["input_shape"] = shape
    return family_of(spec).inference_model(build_spec(spec, **options))


@functools.lru_cache(maxsize=8)
def file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """A weights file's sha256, hashed once per version of the file (zoo serve explains many images with one;
    Keras' ImageNet files are 100 MB)."""
    from ..pretrained import sha256_of

    return sha256_of(path)


def weights_facts(weights, seed: int) -> dict:
    """What explain.json says of the weights: their name, file, sha256 (the registry's for shipped files, else
    hashed here), dataset and classes."""
    if weights is None:
        return {"source": "none", "note": f"random initialisation (seed {seed})", "sha256": None}
    entry = weights.entry
    stat = os.stat(weights.path)
    digest = entry.sha256 if (entry is not None and entry.source == "shipped" and weights.tag) else \
        file_sha256(os.path.abspath(weights.path), stat.st_size, stat.st_mtime_ns)
    return {"source": weights.tag or "file", "name": weights.name, "tag": weights.tag,
            "path": os.path.abspath(weights.path), "sha256": digest, "bytes": os.path.getsize(weights.path),
            "dataset": weights.dataset, "classes": weights.classes,
            "guessed": bool(getattr(weights, "guessed", False)),
            "provenance": entry.provenance if entry is not None else None}


def class_names_for(spec, weights, count: int) -> list[str]:
    from ..pretrained import class_names

    dataset, classes = (weights.dataset, weights.classes) if weights is not None else (spec.dataset, count)
    try:
        names = class_names(dataset, classes)
    except Exception:  # noqa: BLE001 - a names file that is not installed: indices are still honest labels
        names = []
    return names if len(names) == count else [f"class {i}" for i in range(count)]


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


def filters_view(graph, images: Images, towers: list[dict] = ()) -> Optional[dict]:
    """The first convolution's kernels as images (ZFNet's 7x7 beside AlexNet's 11x11 is the classic); where a
    grouped convolution reads them, the filters of each tower (AlexNet's two GPUs, Krizhevsky et al. Fig. 3)."""
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
    fed = next((t for t in towers if t["source"] == first), None)
    return {"layer": first, "shape": list(kernel.shape), "groups": getattr(graph.layers[first], "groups", 1),
            "png": tiles, "note": "each kernel scaled on its own, 0 = mid grey",
            "towers": ({"layer": fed["layer"], "filters": [t["in_channels"] for t in fed["towers"]],
                        "colour_specificity": [t.get("source_colour_specificity") for t in fed["towers"]]}
                       if fed else None)}


def stage_layers(spec, graph) -> list[str]:
    from ..models import family_of

    names = [s.name for s in family_of(spec).feature_stages(spec.arch) if s.name in graph.nodes]
    last = attribution.last_spatial_layer(graph.model)
    return [n for n in names if n != last][-3:] + [last]


def attribution_view(request, model, graph, x, base, classes, images: Images, timings) -> tuple[dict, dict]:
    """The attribution maps; and the given model's saliency and Grad-CAM of the first class at the last spatial
    layer, which the sanity check compares with randomised weights' (computed once, here)."""
    out: dict = {"not_applicable": {}}
    methods = request.methods
    h = x.shape[1]
    stages = stage_layers(request.spec, graph)
    gradcam_layers = stages if "gradcam" in methods else []
    t = time.perf_counter()
    both = attribution.gradients(model, x, gradcam_layers or stages[-1:], classes)
    timings["saliency+gradcam"] = time.perf_counter() - t
    given = {"layer": stages[-1], "saliency": both["saliency"][classes[0]],
             "gradcam": both["gradcam"][stages[-1]][classes[0]]}
    if "saliency" in methods:
        out["saliency"] = {str(c): images.add(f"saliency_{c}", colour(to_unit(m)))
                           for c, m in both["saliency"].items()}
    if "smoothgrad" in methods:
        t = time.perf_counter()
        samples = 16 if h <= 64 else 6  # a 224x224 ResNet-50 pass with its gradient costs ~0.25 s on 2 cores
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
            layers = stages[-3 if h <= 64 else -2:]
            recon = attribution.deconvnet_layers(model, x, {name: None for name in layers})
            out["deconvnet"] = {name: [{"channel": ch, "unit": r["unit"], "activation": r["activation"],
                                        "png": images.add(f"deconv_{name}_{ch}", np.round(to_unit(
                                            r["image"], symmetric=True) * 255).astype("uint8"))}
                                       for ch, r in recon[name].items()] for name in layers}
        timings["deconvnet"] = time.perf_counter() - t
    return out, given


def sanity_view(request, model, x, base, cls: int, given: dict, images: Images, timings) -> dict:
    """Adebayo et al. 2018: the maps with randomised weights beside the given ones; similar maps mean the
    method does not explain the weights."""
    t = time.perf_counter()
    random_model = build_model(request.spec, None, seed=request.seed + 1, like=model)
    layer = given["layer"]
    randomised = attribution.gradients(random_model, x, [layer], [cls])
    random_sal, random_cam = randomised["saliency"][cls], randomised["gradcam"][layer][cls]
    timings["sanity"] = time.perf_counter() - t
    return {"class": cls, "layer": layer, "random_seed": request.seed + 1,
            "given_weights_random": request.weights in (None, "none"),
            "saliency_rank_correlation": attribution.spearman(given["saliency"], random_sal),
            "gradcam_rank_correlation": attribution.spearman(given["gradcam"], random_cam),
            "saliency_png": images.add(f"sanity_saliency_{cls}", colour(to_unit(random_sal))),
            "gradcam_png": images.add(f"sanity_gradcam_{cls}", overlay(base, to_unit(random_cam)))}


# ---------------------------------------------------------------------------------------------------------------
# Everything


def displayed_input(steps) -> np.ndarray:
    """The input as a person sees it (uint8, RGB order): the image after the last geometry or channel step."""
    return [step.image for step in steps if step.name not in ("BGR", "normalise")][-1]


def choose_classes(target, probs: np.ndarray, name: str) -> list[int]:
    """The classes the attribution maps explain: the top 5, or the asked one first and the top others after."""
    if target == "top":
        return [int(c) for c in np.argsort(-probs)[:TOP_CLASSES]]
    target = int(target)
    if not 0 <= target < len(probs):
        raise ValueError(f"--class: {target} is not a class of {name} (0..{len(probs) - 1})")
    return [target] + [int(c) for c in np.argsort(-probs) if c != target][:TOP_CLASSES - 1]


def explain(request: Request, model=None) -> Result:
    """Every view for one image; `model`: the one `request.weights` built already (zoo serve keeps it)."""
    start = time.perf_counter()
    timings: dict[str, float] = {}
    spec = request.spec
    unknown = [m for m in request.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"--methods: unknown {', '.join(unknown)} (choose from {', '.join(METHODS)})")
    weights = resolve_weights(spec, request.weights)
    prep = preprocessing_for(spec, weights)
    x1, steps = prep.steps(request.image)
    x = x1[None]
    base = displayed_input(steps)
    images = Images()
    t = time.perf_counter()
    model = model if model is not None else build_model(spec, weights, request.seed)
    timings["build"] = time.perf_counter() - t
    graph = compute.Graph(model)
    shown = chosen_layers(graph, request.layers)
    t = time.perf_counter()
    fields = compute.receptive_fields(graph)
    needed = set(compute.needed_for_units(graph, shown)) | set(family.needed_layers(graph))
    acts = compute.feature_maps(model, x, [n for n in graph.nodes if n in needed])
    logits, probs = attribution.predict(model, x)
    timings["forward"] = time.perf_counter() - t
    classes = choose_classes(request.target, probs, spec.name)
    t = time.perf_counter()
    layers_view, wanted = layer_views(graph, fields, acts, shown, images, request.top_channels)
    units = units_view(graph, acts, wanted)
    timings["units"] = time.perf_counter() - t
    t = time.perf_counter()
    structures = family.family_view(graph, acts, spec.family)
    timings["family"] = time.perf_counter() - t
    data = {
        "model": {"name": spec.name, "family": spec.family, "params": spec.params, "paper": spec.paper.title,
                  "year": spec.paper.year, "input": list(x.shape[1:]), "keras_name": model.name},
        "weights": weights_facts(weights, request.seed),
        "versions": versions(),
        "image": {"source": request.image_source, "note": request.image_note,
                  "original_shape": list(request.image.shape)},
        "preprocessing": {"description": prep.describe(), "settings": prep.model_dump(mode="json"), "steps": [
            {"name": s.name, "detail": s.detail, "shape": list(s.image.shape),
             "png": images.add(f"input_{i}_{s.name}", s.image)} for i, s in enumerate(steps)]},
        "input_png": images.add("input", base),
        "head": head_view(logits, probs, class_names_for(spec, weights, len(probs))),
        "classes": classes,
        "layers": layers_view,
        "shown_layers": shown,
        "units": units,
        "filters": filters_view(graph, images, structures["towers"]),
        "family": structures,
    }
    data["attribution"], given = attribution_view(request, model, graph, x, base, classes, images, timings)
    if "sanity" in request.methods:
        data["sanity"] = sanity_view(request, model, x, base, classes[0], given, images, timings)
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
