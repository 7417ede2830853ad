"""zoo.explain's numbers against the real Keras graph (CPU, small inputs, all seven families)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

import zoo  # noqa: E402
from zoo.explain import attribution, compute, family, report  # noqa: E402
from zoo.explain.images import ImageError, decode_image, sample_image  # noqa: E402
from zoo.preprocess import Preprocessing  # noqa: E402

# one variant per family at a small input (the smallest the architecture builds from, or close to it)
FAMILY_CASES = [("lenet5", 32), ("lenet5_original", 32), ("alexnet", 67), ("zfnet", 63), ("vgg11_bn", 32),
                ("googlenet", 64), ("resnet20", 32), ("resnet18", 64), ("densenet40_k12", 32)]


def randomised_batchnorm(model, rng):
    """Moving statistics and affine terms away from 1/0, so that BatchNorm's arithmetic is tested."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c),
                               rng.uniform(0.5, 2.0, c)])
    return model


def small_model(name: str, size: int, rng, **build):
    spec = zoo.get_spec(name)
    model = zoo.build(name, input_shape=(size, size, spec.input.channels), **build)
    return randomised_batchnorm(model, rng), rng.normal(size=(1, size, size, spec.input.channels)).astype("float32")


@pytest.mark.parametrize("name,size", FAMILY_CASES)
def test_unit_arithmetic_reproduces_the_model(name, size):
    """Every layer, three random units each: the numpy recomputation equals the model's activation to 1e-4."""
    rng = np.random.default_rng(15)
    model, x = small_model(name, size, rng)
    graph = compute.Graph(model)
    acts = compute.feature_maps(model, x, graph.names())
    kinds = set()
    for layer_name, node in graph.nodes.items():
        if not node.inputs:
            continue
        for _ in range(3):
            index = tuple(int(rng.integers(0, d)) for d in acts[layer_name].shape[1:])
            trace = compute.unit_trace(graph, layer_name, index, acts)
            assert trace["value"] is not None, f"{layer_name} ({node.kind}) is not recomputed"
            assert trace["difference"] <= 1e-4 * max(1.0, abs(trace["model_value"])), trace
            kinds.add(node.kind)
    expected = {"lenet5_original": {"PartialConv2D", "TrainableSubsampling"}, "alexnet": {"LocalResponseNormalization"},
                "vgg11_bn": {"BatchNormalization", "MaxPooling2D"}, "googlenet": {"Concatenate"},
                "resnet18": {"Add", "ZeroPadding2D"}, "resnet20": {"ZeroPadShortcut"},
                "densenet40_k12": {"Concatenate", "AveragePooling2D"}}.get(name, {"Conv2D", "Dense"})
    assert expected <= kinds


def test_grouped_and_strided_convolution_trace():
    """AlexNet's conv2 has two towers: a unit of the second tower reads only the second half of conv1's maps."""
    rng = np.random.default_rng(0)
    model, x = small_model("alexnet", 67, rng)
    graph = compute.Graph(model)
    acts = compute.feature_maps(model, x, compute.needed_for_units(graph, ["conv2"]))
    filters = acts["conv2"].shape[-1]
    trace = compute.unit_trace(graph, "conv2", (1, 1, filters - 1), acts)
    assert trace["groups"] == 2 and trace["group"] == 1
    half = graph.layers["conv2"].kernel.shape[2]
    assert trace["in_channels"] == [half, 2 * half]
    assert trace["partial_sums"][-1] + trace["bias"] == pytest.approx(trace["pre_activation"])


def test_chain_follows_conv_bn_relu():
    rng = np.random.default_rng(1)
    model, x = small_model("resnet20", 32, rng)
    graph = compute.Graph(model)
    acts = compute.feature_maps(model, x, graph.names())
    chain = compute.unit_chain(graph, "conv1_conv", (3, 4, 2), acts)
    assert [t["op"] for t in chain] == ["conv", "batchnorm", "activation"]
    assert chain[1]["x"] == pytest.approx(chain[0]["model_value"])
    assert chain[2]["value"] == pytest.approx(max(chain[1]["value"], 0.0), abs=1e-5)


def test_feature_maps_equal_the_layers_outputs():
    rng = np.random.default_rng(2)
    model, x = small_model("googlenet", 64, rng)
    names = ["conv1_7x7", "lrn1", "inception_3a_concat", "predictions"]
    maps = compute.feature_maps(model, x, names)
    for name in names:
        alone = keras.Model(model.input, model.get_layer(name).output).predict(x, verbose=0)
        np.testing.assert_allclose(maps[name], alone, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(maps["predictions"], model.predict(x, verbose=0), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name,size,layer_names", [
    ("lenet5", 32, ["conv1", "pool1", "conv2", "pool2"]),
    ("alexnet", 67, ["conv1", "pool1", "conv2"]),
    ("resnet20", 32, ["conv1_conv", "conv2_block1_out", "conv3_block1_1_conv", "conv3_block1_out"]),
    ("googlenet", 64, ["pool1", "conv2_3x3", "inception_3a_concat", "pool3"]),
    ("densenet40_k12", 32, ["conv2_block1_concat", "pool2_pool"]),
])
def test_receptive_fields_equal_the_gradient_support(name, size, layer_names):
    """Connectivity is the field: with ReLUs made linear (no unit dead) and max pools averaging over the same
    windows (every position in a window passes gradient), d(unit)/d(input) is non-zero exactly on the analytic
    field, clipped to the image; per channel, where a channel comes from one branch of a concatenation."""
    rng = np.random.default_rng(3)
    model, _ = small_model(name, size, rng)
    channels = model.input.shape[-1]
    batch = rng.normal(size=(2, size, size, channels)).astype("float32")
    graph = compute.Graph(model)
    fields = compute.receptive_fields(graph)
    with attribution.replaced_relus(model, keras.activations.linear), averaged_max_pools(model):
        for layer_name in layer_names:
            h, w, c = graph.nodes[layer_name].output_shape[1:]
            for row, col, channel in [(0, 0, c - 1), (h // 2, w // 2, 0), (h - 1, w - 1, c // 2)]:
                support = compute.gradient_support(model, layer_name, (row, col, channel), batch)
                field = compute.unit_field(graph, fields, layer_name, channel)
                top, left, bottom, right = field.box(row, col, size, size)
                expected = np.zeros_like(support)
                expected[top:bottom + 1, left:right + 1] = True
                assert np.array_equal(support, expected), (layer_name, row, col, channel, field)


@contextlib.contextmanager
def averaged_max_pools(model):
    """Max pools average over the same windows instead: the same connectivity, gradient to every position."""
    pools = [layer for layer in model.layers if isinstance(layer, layers.MaxPooling2D)]
    for layer in pools:
        layer.call = lambda x, _l=layer: keras.ops.average_pool(x, _l.pool_size, _l.strides, _l.padding)
    try:
        yield
    finally:
        for layer in pools:
            del layer.call


def gap_model():
    """conv 1x1 (linear) -> global average pooling -> softmax dense: Grad-CAM has a closed form here."""
    inp = keras.Input((6, 6, 2))
    a = layers.Conv2D(3, 1, name="feat")(inp)
    out = layers.Dense(4, activation="softmax", name="predictions")(layers.GlobalAveragePooling2D(name="gap")(a))
    return keras.Model(inp, out, name="gap_model")


def test_gradcam_equals_the_hand_computation_flat_nested_and_sequential():
    """d logit_c / d A_k(i,j) = w_kc / (h w), so Grad-CAM = ReLU(sum_k w_kc A_k / (h w)) (CAM over h w)."""
    rng = np.random.default_rng(4)
    flat = gap_model()
    x = rng.normal(size=(1, 6, 6, 2)).astype("float32")
    a = compute.feature_maps(flat, x, ["feat"])["feat"][0].astype("float64")
    w = np.asarray(flat.get_layer("predictions").kernel, "float64")
    hand = {c: np.maximum((a * (w[:, c] / 36.0)).sum(-1), 0.0) for c in range(4)}
    outer_in = keras.Input((6, 6, 2))
    nested = keras.Model(outer_in, flat(outer_in), name="nested")
    sequential = keras.Sequential([keras.Input((6, 6, 2)), flat.get_layer("feat"), flat.get_layer("gap"),
                                   flat.get_layer("predictions")])
    for model in (flat, nested, sequential):
        cams = attribution.gradcam(model, x, "feat", [0, 1, 2, 3])
        for c in range(4):
            np.testing.assert_allclose(cams[c], hand[c], atol=1e-6)
    assert not np.allclose(hand[0], hand[1])
    assert "call" not in vars(flat.get_layer("feat"))  # the probe took its hook away


def test_occlusion_peaks_on_the_known_patch():
    """Class 1's score is the sum of pixels [8:16, 16:24]: occluding exactly that square drops it most."""
    inp = keras.Input((32, 32, 1))
    out = layers.Dense(2, activation="softmax", name="predictions")(layers.Flatten()(inp))
    model = keras.Model(inp, out)
    mask = np.zeros((32, 32, 1), "float32")
    mask[8:16, 16:24] = 0.1
    model.get_layer("predictions").set_weights([np.stack([np.zeros(1024), mask.ravel()], 1).astype("float32"),
                                                np.zeros(2, "float32")])
    x = np.ones((1, 32, 32, 1), "float32")
    result = attribution.occlusion(model, x, [1], patch=8, stride=4)
    probs = result["maps"][1]
    row, col = np.unravel_index(np.argmin(probs), probs.shape)
    assert (result["positions"][row], result["positions"][col]) == (8, 16)
    assert probs.max() > probs.min() + 0.3


def test_deconvnet_uses_switches_rectification_and_transposed_filters():
    """conv 3x3 (ReLU) -> 2x2 max pool: a pool unit projects back as its filter placed at the switch."""
    inp = keras.Input((8, 8, 1))
    conv = layers.Conv2D(1, 3, activation="relu", name="conv")(inp)
    out = layers.Dense(2, activation="softmax", name="predictions")(layers.Flatten()(
        layers.MaxPooling2D(2, name="pool")(conv)))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(5)
    kernel = rng.normal(size=(3, 3, 1, 1)).astype("float32")
    kernel[1, 1] = 3.0  # a positive response somewhere
    model.get_layer("conv").set_weights([kernel, np.zeros(1, "float32")])
    x = np.abs(rng.normal(size=(1, 8, 8, 1))).astype("float32")
    result = attribution.deconvnet(model, x, "pool", [0])[0]
    pooled = compute.feature_maps(model, x, ["conv", "pool"])
    r, c = result["unit"][:2]
    window = pooled["conv"][0, 2 * r:2 * r + 2, 2 * c:2 * c + 2, 0]
    sr, sc = np.unravel_index(np.argmax(window), window.shape)
    top, left = 2 * r + sr, 2 * c + sc
    expected = np.zeros((8, 8))
    expected[top:top + 3, left:left + 3] = kernel[..., 0, 0]
    np.testing.assert_allclose(result["image"][..., 0], expected, atol=1e-6)
    assert model.get_layer("conv").activation is keras.activations.relu  # restored


def test_deconvnet_where_there_is_no_max_pooling_is_not_applicable():
    model = zoo.build("lenet5_original")
    with pytest.raises(attribution.NotApplicableError, match="no max pooling"):
        attribution.deconvnet(model, np.zeros((1, 32, 32, 1), "float32"), "C3", [0])


def test_probabilities_and_logits_match_predict():
    rng = np.random.default_rng(6)
    # Keras' initialisers: He's (the paper's) with randomised BatchNorm statistics gives logits so large that the
    # softmax saturates (1e-27 beside 0.8), and the compiled predict and the eager tape then differ by up to 4e-6
    # in float32 (seen once in CI): the comparison is of the two paths, not of the initialisation.
    model, x = small_model("resnet20", 32, rng, init="keras")
    logits, probs = attribution.predict(model, x)
    np.testing.assert_allclose(probs, model.predict(x, verbose=0)[0], atol=1e-6)
    np.testing.assert_allclose(np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum(), probs, atol=1e-6)


def test_unknown_layer_suggests_close_names():
    graph = compute.Graph(zoo.build("lenet5"))
    with pytest.raises(compute.LayerNotFoundError, match="did you mean conv2"):
        graph.layer("conv_2")


# ---------------------------------------------------------------------------------------------------------------
# Preprocessing and images


def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("prep", [
    Preprocessing(size=32, channels=1, pad=2, mean=[72.9404], std=[90.0212]),
    Preprocessing(size=224, channels=3, resize=256, crop=224, mode="caffe"),
    Preprocessing(size=64, channels=3, resize=72, crop=56, mean=[120.0], std=[60.0]),
    Preprocessing(size=32, channels=3, mean=[125.3, 123.0, 113.9], std=[63.0, 62.1, 66.7]),
], ids=["lenet-pad", "keras-caffe", "crop-then-resize", "cifar"])
@pytest.mark.parametrize("shape", [(28, 28), (300, 400, 3), (50, 40, 4), (32, 32, 1)])
def test_the_steps_shown_make_exactly_the_input_the_model_gets(prep, shape):
    """View 1 is zoo.preprocess.Preprocessing itself: its steps end in __call__'s input, bit for bit."""
    image = np.random.default_rng(7).integers(0, 256, size=shape, dtype="uint8")
    x, steps = prep.steps(image)
    np.testing.assert_array_equal(x, prep(image)[0])
    assert steps[0].name == "original" and steps[-1].name == "normalise"
    assert all(step.image.dtype == np.uint8 for step in steps)


def test_random_weights_use_the_evaluation_pipelines_preprocessing():
    from zoo.pretrained import pipeline_preprocessing

    spec = zoo.get_spec("lenet5")
    prep = report.preprocessing_for(spec, None)
    assert prep == pipeline_preprocessing(spec, spec.dataset)
    x, steps = prep.steps(np.full((28, 28, 1), 200, "uint8"))
    assert x.shape == (32, 32, 1) and [s.name for s in steps] == ["original", "zero pad", "normalise"]
    assert x[0, 0, 0] == pytest.approx((0 - prep.mean[0]) / prep.std[0], rel=1e-6)
    assert x[16, 16, 0] == pytest.approx((200 - prep.mean[0]) / prep.std[0], rel=1e-6)


def test_imagenet_protocol_resizes_the_shorter_side_and_crops():
    prep = report.preprocessing_for(zoo.get_spec("resnet50"), None)
    image = np.random.default_rng(0).integers(0, 255, size=(300, 400, 3), dtype="uint8")
    x, steps = prep.steps(image)
    assert x.shape == (224, 224, 3)
    assert [s.name for s in steps] == ["original", "resize", "center crop", "normalise"]
    assert steps[1].image.shape[:2] == (256, 341)


def test_rgb_image_for_a_grey_model_becomes_luma():
    prep = report.preprocessing_for(zoo.get_spec("lenet5"), None)
    image = np.zeros((32, 32, 3), "uint8")
    image[..., 0] = 255
    x, steps = prep.steps(image)
    assert steps[1].name == "grey" and steps[1].image[0, 0, 0] == round(0.2989 * 255)


def test_not_an_image_is_one_clear_error():
    with pytest.raises(ImageError, match="upload.txt: not an image"):
        decode_image(b"hello, world", "upload.txt")


def test_a_huge_image_is_downscaled_and_said_so(monkeypatch):
    import zoo.explain.images as images

    monkeypatch.setattr(images, "MAX_PIXELS", 100 * 100)
    array, note = decode_image(png_bytes(np.zeros((300, 200), "uint8")), "big.png")
    assert array.shape[:2] == (122, 81) and "downscaled to 81x122" in note


# ---------------------------------------------------------------------------------------------------------------
# The whole report and the command


@pytest.fixture(scope="module")
def lenet_result():
    image, source = sample_image(2)
    return report.explain(report.Request(spec=zoo.get_spec("lenet5"), image=image, image_source=source))


def test_report_probabilities_equal_predict(lenet_result):
    x = lenet_result.x
    np.testing.assert_allclose(lenet_result.data["head"]["probabilities"],
                               lenet_result.model.predict(x, verbose=0)[0], atol=1e-6)
    for key, chain in lenet_result.data["units"].items():
        for trace in chain:
            assert trace["difference"] <= 1e-4 * max(1.0, abs(trace["model_value"])), key


def test_report_has_every_view(lenet_result):
    data = lenet_result.data
    assert {"saliency", "smoothgrad", "gradcam", "occlusion", "deconvnet"} <= set(data["attribution"])
    assert [s["name"] for s in data["preprocessing"]["steps"]] == ["original", "zero pad", "normalise"]
    assert data["filters"]["layer"] == "conv1" and len(data["filters"]["png"]) == 6
    assert data["family"]["connection_tables"][0]["layer"] == "conv2"
    referenced = {ch["png"] for layer in data["layers"] if layer["shown"] for ch in layer["channels"]}
    assert referenced <= set(lenet_result.pngs)
    assert all(content.startswith(b"\x89PNG") for content in lenet_result.pngs.values())


def test_randomised_weights_change_the_maps(tmp_path, lenet_result):
    """The sanity check's random model differs from the given one, and so do its maps."""
    model = lenet_result.model
    weights = tmp_path / "given.weights.h5"
    model.save_weights(weights)
    other = report.build_model(zoo.get_spec("lenet5"), None, seed=1)
    x = lenet_result.x
    cls = lenet_result.data["classes"][0]
    given = attribution.saliency(model, x, [cls])[cls]
    random = attribution.saliency(other, x, [cls])[cls]
    assert not np.allclose(given, random)
    assert lenet_result.data["sanity"]["saliency_rank_correlation"] < 0.95
    reloaded = report.build_model(zoo.get_spec("lenet5"), str(weights))
    np.testing.assert_allclose(attribution.saliency(reloaded, x, [cls])[cls], given, atol=1e-6)


def _main(cli, args):
    import contextlib
    import io as _io

    err = _io.StringIO()
    out = _io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_zoo_explain_writes_the_page_json_and_pngs(tmp_path):
    code, out, err = _cli("explain", "lenet5_original", "--methods", "saliency,deconvnet", "-o", str(tmp_path / "e"))
    assert code == 0, err
    assert (tmp_path / "e" / "index.html").is_file() and (tmp_path / "e" / "png").is_dir()
    data = __import__("json").loads((tmp_path / "e" / "explain.json").read_text())
    assert "no max pooling" in data["attribution"]["not_applicable"]["deconvnet"]
    assert "deconvnet: " in err and "saliency" in data["attribution"]  # said, and the other views made


def _cli(*args):
    import cli

    return _main(cli, args)


@pytest.mark.parametrize("args,message", [
    (["--image", "MISSING.png"], "--image: no such file: MISSING.png"),
    (["--layers", "conv_2"], "did you mean conv2"),
    (["--methods", "gradcam,lrp"], "unknown lrp"),
    (["--class", "12"], "--class: 12 is not a class of lenet5"),
    (["--weights", "resnet.h5"], "weights file not found: resnet.h5"),
    (["--weights", "imagenet"], "unknown weights 'imagenet' for lenet5 (available: fashion_mnist)"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    code, _, err = _cli("explain", "lenet5", "-o", str(tmp_path / "x"), *args)
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err


def test_not_an_image_and_weights_of_another_model(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    code, _, err = _cli("explain", "lenet5", "--image", str(text), "-o", str(tmp_path / "x"))
    assert code != 0 and "not an image" in err and len(err.strip().splitlines()) == 1
    other = tmp_path / "harley.weights.h5"
    zoo.build("lenet5_harley").save_weights(other)
    code, _, err = _cli("explain", "lenet5", "--weights", str(other), "-o", str(tmp_path / "x"))
    assert code != 0 and "lenet5" in err and str(other) in err and len(err.strip().splitlines()) == 1, err


def test_named_weights_bring_their_preprocessing_and_sha256(tmp_path):
    """`--weights fashion_mnist` goes through zoo.pretrained.resolve: the shipped file (its registry sha256), its
    preprocessing in view 1 and explain.json, and the probabilities of zoo.build(name, weights=tag)."""
    code, _, err = _cli("explain", "lenet5", "--weights", "fashion_mnist", "--methods", "saliency",
                        "-o", str(tmp_path / "e"))
    assert code == 0, err
    data = __import__("json").loads((tmp_path / "e" / "explain.json").read_text())
    entry = zoo.get_spec("lenet5").weights["fashion_mnist"]
    assert data["weights"]["sha256"] == entry.sha256 and data["weights"]["name"] == "lenet5.fashion_mnist"
    assert data["preprocessing"]["description"] == entry.preprocessing.describe()
    assert data["preprocessing"]["settings"] == entry.preprocessing.model_dump(mode="json")
    image, _ = sample_image()
    model = zoo.build("lenet5", weights="fashion_mnist")
    expected = model.predict(entry.preprocessing(image), verbose=0)[0]
    np.testing.assert_allclose(data["head"]["probabilities"], expected, atol=1e-6)
    assert data["head"]["top"][0]["name"] == "Trouser"  # the sample's label, and a trained net gets it
    assert "random weights" not in err


def test_a_weights_file_is_resolved_with_its_run_and_hashed(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    zoo.build("lenet5").save_weights(run / "model.weights.h5")
    weights = report.resolve_weights(zoo.get_spec("lenet5"), str(run / "model.weights.h5"))
    facts = report.weights_facts(weights, 0)
    import hashlib

    assert facts["sha256"] == hashlib.sha256((run / "model.weights.h5").read_bytes()).hexdigest()
    assert facts["path"] == str(run / "model.weights.h5") and facts["tag"] is None


# ---------------------------------------------------------------------------------------------------------------
# Family structures: every number equal to one computed from the model's own outputs


def structures(name: str, size: int, seed: int = 8):
    rng = np.random.default_rng(seed)
    model, x = small_model(name, size, rng)
    graph = compute.Graph(model)
    acts = compute.feature_maps(model, x, graph.names())
    return model, x, graph, acts, family.family_view(graph, acts, zoo.get_spec(name).family)


def test_lenet5_c3_connection_table_is_the_layers_and_its_contributions_sum_to_the_output():
    model, x, graph, acts, view = structures("lenet5_original", 32)
    (table,) = view["connection_tables"]
    layer = graph.layers["C3"]
    assert table["layer"] == "C3" and not table["full"]
    assert [row["inputs"] for row in table["rows"]] == [sorted(r) for r in layer.table]
    assert table["connections"] == 60 and table["in_maps"] == 6 and table["out_maps"] == 16
    # the contribution maps of the connected inputs, plus the bias, are C3's output (a linear layer)
    parts = family.per_connection(acts["S2_squash"][0], np.asarray(layer.dense_kernel()))
    np.testing.assert_allclose(parts.sum(axis=2) + np.asarray(layer.bias), acts["C3"][0], atol=1e-4)
    for row in table["rows"]:
        assert row["pre_activation_mean"] == pytest.approx(row["model_mean"], abs=1e-5)
        unconnected = set(range(6)) - set(row["inputs"])
        assert np.all(parts[..., sorted(unconnected), row["output"]] == 0)  # Table I's blanks carry nothing


def test_modern_lenet_table_is_full_and_its_sum_is_the_pre_activation():
    model, x, graph, acts, view = structures("lenet5", 32)
    (table,) = view["connection_tables"]
    layer = graph.layers[table["layer"]]
    assert table["full"] and table["connections"] == 6 * 16
    parts = family.per_connection(acts[table["input"]][0], np.asarray(layer.kernel))
    np.testing.assert_allclose(np.maximum(parts.sum(axis=2) + np.asarray(layer.bias), 0), acts[table["layer"]][0],
                               atol=1e-4)
    assert [r["model_mean"] for r in table["rows"]] == pytest.approx(acts[table["layer"]][0].mean(axis=(0, 1)))


def test_alexnet_towers_and_lrn_are_the_models():
    model, x, graph, acts, view = structures("alexnet", 67)
    towers = {t["layer"]: t for t in view["towers"]}
    assert set(towers) == {n for n, node in graph.nodes.items() if getattr(graph.layers[n], "groups", 1) == 2}
    conv2 = towers["conv2"]
    assert conv2["source"] == "conv1" and conv2["first_layer"]
    out = acts["conv2"][0]
    for tower in conv2["towers"]:
        lo, hi = tower["out_channels"]
        assert tower["mean"] == pytest.approx(float(out[..., lo:hi].mean()), rel=1e-5)
        assert tower["share"] == pytest.approx(float(np.abs(out[..., lo:hi]).sum() / np.abs(out).sum()), rel=1e-5)
    assert sum(t["params"] for t in conv2["towers"]) == graph.layers["conv2"].count_params()
    # each tower reads only its half: changing the other half's inputs leaves its outputs alone
    probe = keras.Model(model.get_layer("conv2").input, model.get_layer("conv2").output)
    pooled = acts["pool1"].copy()
    changed = pooled.copy()
    changed[..., 48:] += 1.0
    a, b = probe(pooled).numpy(), probe(changed).numpy()
    np.testing.assert_allclose(a[..., :128], b[..., :128], atol=1e-6)
    assert not np.allclose(a[..., 128:], b[..., 128:])
    for lrn in view["lrn"]:
        assert lrn["max_difference"] <= 1e-5
        assert lrn["mean_abs_after"] == pytest.approx(float(np.abs(acts[lrn["layer"]][0]).mean()), rel=1e-5)
    chain = compute.unit_chain(graph, "conv1", (3, 3, 5), acts)
    assert [t["op"] for t in chain] == ["conv", "lrn"]  # the LRN step in the unit arithmetic
    assert chain[1]["value"] == pytest.approx(chain[1]["model_value"], rel=1e-5)


def test_googlenet_branch_shares_are_the_branches_outputs():
    model, x, graph, acts, view = structures("googlenet", 64)
    modules = {m["layer"]: m for m in view["inception"]}
    assert len(modules) == 9 and not view["dense"] and not view["residual"]
    m = modules["inception_3a_concat"]
    assert m["fork"] == "pool2"
    assert [b["path"] for b in m["branches"]] == [
        ["inception_3a_1x1"], ["inception_3a_3x3_reduce", "inception_3a_3x3"],
        ["inception_3a_5x5_reduce", "inception_3a_5x5"], ["inception_3a_pool", "inception_3a_pool_proj"]]
    for module in modules.values():
        total = sum(float(np.abs(acts[b["output"]][0]).sum()) for b in module["branches"])
        assert sum(b["share"] for b in module["branches"]) == pytest.approx(1.0)
        for b in module["branches"]:
            assert b["share"] == pytest.approx(float(np.abs(acts[b["output"]][0]).sum()) / total, rel=1e-5)
            lo, hi = b["channels"]
            np.testing.assert_array_equal(acts[module["layer"]][0][..., lo:hi], acts[b["output"]][0])


@pytest.mark.parametrize("name,size,kinds", [
    ("resnet20", 32, {"identity", "option A (subsample, zero channels)"}),
    ("resnet18", 64, {"identity", "projection"}),
])
def test_resnet_residual_against_shortcut_per_block(name, size, kinds):
    model, x, graph, acts, view = structures(name, size)
    blocks = view["residual"]
    assert len(blocks) == sum(node.kind == "Add" for node in graph.nodes.values())
    assert {b["shortcut_kind"] for b in blocks} == kinds
    for b in blocks:
        f, s = acts[b["residual"]][0], acts[b["shortcut"]][0]
        np.testing.assert_allclose(f + s, acts[b["layer"]][0], atol=1e-5)
        assert b["f_rms"] == pytest.approx(float(np.sqrt(np.mean(f.astype("float64") ** 2))), rel=1e-6)
        assert b["x_rms"] == pytest.approx(float(np.sqrt(np.mean(s.astype("float64") ** 2))), rel=1e-6)
        assert "conv" in b["residual"] and any(graph.nodes[n].kind == "Conv2D" for n in b["residual_path"])


def test_densenet_source_of_every_concatenated_channel():
    model, x, graph, acts, view = structures("densenet40_k12", 32)
    blocks = view["dense"]
    assert len(blocks) == 3 and not view["inception"]
    for block in blocks:
        final = acts[block["layer"]][0]
        edges = [s["channels"] for s in block["sources"]]
        assert edges[0][0] == 0 and edges[-1][1] == final.shape[-1]
        assert all(a[1] == b[0] for a, b in zip(edges, edges[1:]))
        for s in block["sources"]:  # each slice of the final concatenation is its source layer's output
            np.testing.assert_array_equal(final[..., s["channels"][0]:s["channels"][1]], acts[s["source"]][0])
        assert len(block["weights"]) == len(block["sources"])  # every source's reader, the block's exit last
        for row in block["weights"]:
            kernel = np.abs(np.asarray(graph.layers[row["layer"]].kernel, "float64"))
            per_channel = kernel.mean(axis=(0, 1, 3)) if kernel.ndim == 4 else kernel.mean(axis=1)
            reads_concat = graph.nodes[row["reads"]].kind == "Concatenate"
            assert len(row["mean_abs_w"]) == (len(family.segments(graph, row["reads"])) if reads_concat else 1)
            lo, hi = block["sources"][0]["channels"]
            assert row["mean_abs_w"][0] == pytest.approx(float(per_channel[lo:hi].mean()))
    assert graph.nodes[blocks[-1]["weights"][-1]["layer"]].kind == "Dense"  # the classifier reads the last block
    # a unit of a concatenation names the layer that made it
    trace = compute.unit_trace(graph, blocks[0]["layer"], (2, 3, 20), acts)
    source = trace["origin"]["layer"]
    assert trace["value"] == pytest.approx(float(acts[source][0, 2, 3, trace["origin"]["channel"]]))


@pytest.mark.slow
def test_imagenet_weights_from_keras_cache_explained_with_caffe_preprocessing(tmp_path, monkeypatch):
    """`--weights imagenet`: Keras' own file from $KERAS_HOME (here one made by keras.applications with random
    weights), mapped into the zoo's ResNet-50; view 1 shows Keras' caffe steps (BGR, mean subtracted) and the
    head equals keras.applications.ResNet50 on preprocess_input of the same crop."""
    from test_predict import keras_file_with_random_weights

    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    twin = keras_file_with_random_weights("resnet50", models)
    entry = zoo.get_spec("resnet50").weights["imagenet"]
    image = np.random.default_rng(9).integers(0, 256, size=(240, 320, 3), dtype="uint8")
    result = report.explain(report.Request(spec=zoo.get_spec("resnet50"), image=image, weights="imagenet",
                                           methods=("saliency",)))
    data = result.data
    assert [s["name"] for s in data["preprocessing"]["steps"]] == ["original", "resize", "center crop", "BGR",
                                                                   "normalise"]
    assert data["preprocessing"]["settings"]["mode"] == "caffe"
    import hashlib

    assert data["weights"]["sha256"] == hashlib.sha256((models / entry.file).read_bytes()).hexdigest()
    geometry = Preprocessing(size=224, channels=3, resize=256, crop=224, mean=[0.0], std=[1.0])
    keras_input = keras.applications.resnet50.preprocess_input(geometry(image).copy())
    np.testing.assert_allclose(result.x, keras_input, atol=1e-3)
    np.testing.assert_allclose(data["head"]["probabilities"], twin.predict(keras_input, verbose=0)[0], atol=1e-4)
