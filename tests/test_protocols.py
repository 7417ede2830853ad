"""The papers' test protocols (zoo/training/protocols.py, `zoo eval --protocol`): the views are the right pixels,
there are as many as declared, their scores are averaged as the papers did, VGG's dense form is the model itself
at its training size, bad requests are one line; end to end through `zoo eval` on TFDS's mock ImageNet and the
embedded Fashion-MNIST sample, and `zoo table results` pairing a run with the published number of its protocol."""

import json

import keras
import numpy as np
import pytest

import cli
import zoo
from zoo.choices import EVAL_PROTOCOLS
from zoo.registry import registry
from zoo.training import protocols as P

tf = pytest.importorskip("tensorflow")


def pattern(batch, height, width, channels):
    """Every pixel different and known: value = ((b * H + row) * W + col) * C + channel."""
    return tf.reshape(tf.range(batch * height * width * channels, dtype=tf.float32), [batch, height, width, channels])


# ---------------------------------------------------------------------------------------------------------------
# The views: pixels, flips, counts


def test_ten_crop_takes_the_corners_the_centre_and_their_mirror_images():
    x = pattern(2, 7, 9, 3)
    views = P.ten_crop(x, 4).numpy()
    assert views.shape == (2, 10, 4, 4, 3)
    a = x.numpy()
    expected = [a[:, :4, :4], a[:, :4, 5:], a[:, 3:, :4], a[:, 3:, 5:], a[:, 1:5, 2:6]]  # TL, TR, BL, BR, centre
    for i, crop in enumerate(expected):
        np.testing.assert_array_equal(views[:, i], crop)
        np.testing.assert_array_equal(views[:, 5 + i], crop[:, :, ::-1])  # its horizontal reflection
    with pytest.raises(P.ProtocolError, match="does not fit"):
        P.five_crop_offsets(3, 9, 4)


def test_ten_crop_on_fixed_size_images_pads_with_black_and_keeps_the_centre():
    g = P.Geometry(size=8, crop=8, resize=None, fill=(-0.5, 2.0))
    canvas = tf.ones([1, 8, 8, 2])
    (views,) = P.PROTOCOLS["10crop"].make_views(canvas, g)
    views = views.numpy()
    assert views.shape == (1, 10, 8, 8, 2) and P.fixed_pad(8) == 1
    np.testing.assert_array_equal(views[0, 4], canvas[0])  # the centre crop of the padded image: the image
    top_left = views[0, 0]
    np.testing.assert_array_equal(top_left[0, :, 0], -0.5)  # the pad row and column: black, normalised
    np.testing.assert_array_equal(top_left[:, 0, 1], 2.0)
    np.testing.assert_array_equal(top_left[1:, 1:], 1.0)  # then the image, shifted by the pad
    np.testing.assert_array_equal(views[0, 8], views[0, 3][:, ::-1])  # a flip of the bottom-right crop


def test_three_squares_of_landscape_and_portrait_images():
    landscape = pattern(1, 4, 10, 1)[0]
    squares = P.three_squares(landscape).numpy()
    a = landscape.numpy()
    for got, left in zip(squares, (0, 3, 6)):
        np.testing.assert_array_equal(got, a[:, left:left + 4])
    portrait = tf.transpose(landscape, [1, 0, 2])  # 10 x 4: top, centre, bottom
    for got, top in zip(P.three_squares(portrait).numpy(), (0, 3, 6)):
        np.testing.assert_array_equal(got, portrait.numpy()[top:top + 4])


def test_googlenet_views_per_square_the_five_crops_the_whole_square_and_the_mirrors():
    g = P.Geometry(size=4, crop=4, resize=5, fill=(0.0,))
    canvas = tuple(tf.random.stateless_uniform([2, 3, q, q, 1], [q, 0]) for q in (6, 7, 8, 9))
    (views,) = P.PROTOCOLS["144crop"].make_views(canvas, g)
    assert views.shape == (2, 144, 4, 4, 1)
    views = views.numpy()
    square = canvas[1][1, 2].numpy()  # scale 2, image 2, the third square
    block = views[1, 36 + 2 * 12: 36 + 3 * 12]  # its 12 views
    np.testing.assert_array_equal(block[0], square[:4, :4])
    np.testing.assert_array_equal(block[4], square[1:5, 1:5])
    whole = tf.image.resize(square[None], [4, 4], antialias=True).numpy()[0]
    np.testing.assert_allclose(block[5], whole, atol=1e-6)  # the square resized to the crop size
    for i in range(6):
        np.testing.assert_array_equal(block[6 + i], block[i][:, ::-1])


def canvas_for(protocol, g, batch=2, channels=3):
    canvas = protocol.canvas(g)
    if canvas.kind == "squares":
        return tuple(tf.zeros([batch, 3, side, side, channels]) for side in canvas.sides)
    side = g.size if canvas.kind == "single" else canvas.side
    return tf.zeros([batch, side, side, channels])


@pytest.mark.parametrize("name", EVAL_PROTOCOLS)
def test_every_protocol_makes_the_views_it_declares(name):
    protocol = P.PROTOCOLS[name]
    geometries = [P.Geometry(size=16, crop=16, resize=18, fill=(0.0,) * 3)]  # a 16 crop of 18: the 224 of 256
    if not protocol.fixed_size:
        geometries.append(P.Geometry(size=16, crop=16, resize=None, fill=(0.0,) * 3))
    for g in geometries:
        groups = protocol.make_views(canvas_for(protocol, g), g)
        assert sum(views.shape[1] for views in groups) == protocol.views, (name, g)
        assert all(views.shape[0] == 2 for views in groups)
        if not protocol.dense:
            assert all(views.shape[2:4] == (16, 16) for views in groups)
    assert protocol.images_per_batch(100) == max(1, 100 // protocol.views)


def test_the_papers_sizes_scale_with_the_evaluation_geometry():
    standard = P.Geometry(size=224, crop=224, resize=256, fill=(0.0,))
    assert [standard.scaled(s) for s in P.GOOGLENET_SIDES] == [256, 288, 320, 352]
    assert P.PROTOCOLS["10crop"].canvas(standard) == P.Canvas("square", side=256, resize=256)
    assert P.PROTOCOLS["dense_multiscale_jittered"].canvas(standard) == P.Canvas("square", side=512, resize=512)
    alexnet = P.Geometry(size=227, crop=227, resize=256, fill=(0.0,))
    assert P.PROTOCOLS["10crop"].canvas(alexnet).side == 256  # 227 crops of the 256 square
    small = P.Geometry(size=64, crop=224, resize=256, fill=(0.0,))  # 224 crops resized to 64
    assert P.PROTOCOLS["10crop"].canvas(small) == P.Canvas("square", side=73, resize=256)
    assert small.scaled(384) == 110


# ---------------------------------------------------------------------------------------------------------------
# Combining scores


def test_posteriors_average_each_views_softmax():
    def forward(x):  # logits a known function of the input: (mean, -mean, 0)
        m = tf.reduce_mean(x, axis=[1, 2, 3])
        return tf.stack([m, -m, tf.zeros_like(m)], axis=-1)

    groups = [tf.random.stateless_uniform([3, 4, 5, 5, 1], [1, 2]), tf.random.stateless_uniform([3, 2, 7, 7, 1],
                                                                                               [3, 4]) * 5]
    got = P.posteriors(forward, groups).numpy()
    means = np.concatenate([g.numpy().mean(axis=(2, 3, 4)) for g in groups], axis=1)  # (3, 6): per image, view
    logits = np.stack([means, -means, np.zeros_like(means)], axis=-1)
    softmax = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(got, softmax.mean(axis=1), rtol=1e-5)
    assert not np.allclose(got, softmax[:, 0])  # the views differ: the average is not the first view's


# ---------------------------------------------------------------------------------------------------------------
# VGG's dense evaluation: the Dense layers as convolutions of the same weights


def randomised(model, seed=0):
    """Weights of a useful scale (VGG's Glorot init with zero biases gives logits near 0: nothing to compare)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([rng.normal(0, 1.5 / np.sqrt(max(1, np.prod(w.shape[:-1]))), w.shape).astype("float32")
                               for w in layer.get_weights()])
    return model


@pytest.mark.parametrize("name", ["vgg11", "resnet20"])
def test_the_dense_form_is_the_model_at_its_training_size(name):
    spec = zoo.get_spec(name)
    model = randomised(zoo.build(name, input_shape=(32, 32, 3), classes=10, classifier_activation=None))
    dense = P.dense_form(model, spec, 3)
    x = np.random.default_rng(1).normal(size=(3, 32, 32, 3)).astype("float32")
    expected = model(x, training=False).numpy()
    got = dense(x, training=False).numpy()
    assert np.abs(expected).max() > 1  # logits worth comparing
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    if name == "vgg11":  # fc1 is a 1x1 convolution over the 1x1 map of a 32 input; at 64 the map is 2x2
        assert [layer.kernel.shape for layer in dense.layers if layer.name == "fc1_conv"] == [(1, 1, 512, 4096)]
    larger = dense(np.random.default_rng(2).normal(size=(2, 64, 80, 3)).astype("float32"), training=False)
    assert larger.shape == (2, 10) and np.isfinite(larger.numpy()).all()


def test_a_head_without_a_dense_form_is_refused():
    spec = zoo.get_spec("lenet5_original")
    model = zoo.build("lenet5_original", classifier_activation=None)
    with pytest.raises(P.ProtocolError, match="lenet5_original has no dense form: its head's layer RBF"):
        P.dense_form(model, spec, 1)


# ---------------------------------------------------------------------------------------------------------------
# Bad requests: one line, before any model is built


def test_unknown_protocol_names_the_close_ones():
    with pytest.raises(P.ProtocolError, match=r"unknown protocol '10crp': did you mean 10crop or 144crop\?"):
        P.get_protocol("10crp")
    with pytest.raises(P.ProtocolError, match="choose from center, 10crop, 144crop"):
        P.get_protocol("zzz")


def grey_prep(**geometry):
    from zoo.preprocess import Preprocessing

    return Preprocessing(size=32, channels=1, mean=[72.9], std=[90.0], **geometry)


def test_protocols_that_do_not_apply_say_why_in_one_line():
    prep = grey_prep(pad=2)
    common = dict(model="lenet5", dataset="fashion_mnist", image_shape=(28, 28, 1))
    for name in ("144crop", "dense_multiscale", "dense_384", "dense_multiscale_jittered", "dense_5scale"):
        with pytest.raises(P.ProtocolError, match=f"{name} resizes and crops larger images; fashion_mnist's 28x28 "
                                                  "images have one size"):
            P.check(name, fixed_size=True, prep=prep, **common)
    assert P.check("10crop", fixed_size=True, prep=prep, **common).views == 10
    assert P.check("dense", fixed_size=True, prep=prep, **common).views == 2
    with pytest.raises(P.ProtocolError, match="TensorFlow ops in the tf.data pipeline"):
        P.check("10crop", fixed_size=True, prep=prep, numpy_input=True, **common)
    assert P.check("center", fixed_size=True, prep=prep, numpy_input=True, **common).views == 1
    with pytest.raises(P.ProtocolError, match="no resize-and-crop geometry"):
        P.check("10crop", model="lenet5", dataset="imagenet2012", fixed_size=False, prep=prep)
    from zoo.preprocess import Preprocessing

    alexnet = Preprocessing(size=227, channels=3, resize=256, crop=227, mean=[0.0], std=[1.0])
    with pytest.raises(P.ProtocolError, match=r"smallest scale \(224 px\) is below alexnet's 227x227 input"):
        P.check("dense_multiscale", model="alexnet", dataset="imagenet2012", fixed_size=False, prep=alexnet)
    assert P.check("dense", model="alexnet", dataset="imagenet2012", fixed_size=False, prep=alexnet).dense
    with pytest.raises(P.ProtocolError, match="144crop's squares at four scales have no one mean image"):
        P.check("144crop", model="alexnet", dataset="imagenet2012", fixed_size=False, prep=alexnet, mean="pixel")
    with pytest.raises(P.ProtocolError, match="--mean pixel is applied with TensorFlow ops"):
        P.check("center", fixed_size=True, prep=prep, numpy_input=True, mean="pixel", **common)


def test_names_declared_once_and_the_registry_uses_them():
    assert tuple(P.PROTOCOLS) == EVAL_PROTOCOLS
    used = {r.eval_protocol for spec in registry().models.values() for r in spec.results} - {None}
    assert used <= set(EVAL_PROTOCOLS) and {"center", "10crop", "144crop", "dense"} <= used
    alexnet = {r.value: r.eval_protocol for r in registry().get("alexnet").results if r.dataset == "imagenet2012"}
    assert alexnet == {40.7: "10crop", 18.2: "10crop"}  # sec. 4.1: ten patches, softmax averaged
    googlenet = {r.value: r.eval_protocol for r in registry().get("googlenet").results if r.dataset == "imagenet2012"}
    assert googlenet == {10.07: "center", 9.15: "10crop", 7.89: "144crop"}


# ---------------------------------------------------------------------------------------------------------------
# zoo table results: a run beside the number of its protocol


def record(model, protocol, accuracy, run_id):
    return {"run_id": run_id, "model": model, "dataset": "imagenet2012", "recipe": "resnet_imagenet",
            "test_accuracy": accuracy, "status": "finished", "complete": True, "train_split": "train_full",
            "protocol": protocol, "finished": "2026-01-01"}


def test_results_table_sets_each_protocol_beside_its_published_number():
    from zoo import tables

    runs = [record("resnet50", None, 0.70, "a"), record("resnet50", "10crop", 0.72, "b"),
            record("resnet50", "dense_5scale", 0.74, "c")]
    rows = {row["protocol"]: row for row in tables.results_rows("imagenet2012", runs=runs)}
    assert set(rows) == {"center", "10crop", "dense_5scale"}  # one row per protocol; an older record: centre
    assert rows["10crop"]["published"] == pytest.approx(100 - 22.85)  # Table 3, 10-crop
    assert rows["dense_5scale"]["published"] == pytest.approx(100 - 20.74)  # Table 4, fully convolutional
    assert rows["center"]["published"] == pytest.approx(100 - 22.85)  # no single-crop number: the least boosted
    shown = json.loads(tables.render_results("imagenet2012", "json", runs=runs))
    assert [(row["protocol"], row["run_id"]) for row in shown] == [("10crop", "b"), ("center", "a"),
                                                                    ("dense_5scale", "c")]


# ---------------------------------------------------------------------------------------------------------------
# End to end: `zoo eval --protocol` on the embedded sample and on TFDS's mock ImageNet


def zoo_cli(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def softmax(logits):
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def expected_scores(posteriors, labels):
    picked = posteriors[np.arange(len(labels)), labels]
    return float((posteriors.argmax(-1) == labels).mean()), float(-np.log(picked).mean())


def lenet_on(evaluation):
    from zoo.training import setup

    model = setup.build_model(evaluation.run, for_training=False)
    evaluation.weights.load_into(model)
    return model


def test_10crop_on_the_sample_through_zoo_eval_is_the_papers_average(capsys):
    """Shipped LeNet-5 weights on the embedded sample: the JSON names the protocol and views; its numbers are the
    average of the softmax over 10 crops cut here with numpy (pad 4 with black, corners, centre, flips)."""
    from zoo.training.evaluate import prepare

    code, out, err = zoo_cli(capsys, "eval", "lenet5", "--weights", "fashion_mnist", "--dataset",
                             "fashion_mnist_sample", "--protocol", "10crop", "--limit", 50, "--batch-size", 40,
                             "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert (shown["protocol"], shown["views"], shown["examples"], shown["split"]) == ("10crop", 10, 50, "test[:50]")
    evaluation = prepare("lenet5", "fashion_mnist", dataset="fashion_mnist_sample", limit=50)
    x, labels = (np.concatenate(parts) for parts in zip(*[(a.numpy(), b.numpy()) for a, b in evaluation.stream(64)]))
    prep = evaluation.preprocessing
    padded = np.pad(x, [(0, 0), (4, 4), (4, 4), (0, 0)], constant_values=-prep.mean[0] / prep.std[0])
    crops = [padded[:, t:t + 32, l:l + 32] for t, l in ((0, 0), (0, 8), (8, 0), (8, 8), (4, 4))]
    views = crops + [c[:, :, ::-1] for c in crops]
    model = lenet_on(evaluation)
    posteriors = np.mean([softmax(model.predict(v, verbose=0)) for v in views], axis=0)
    top1, loss = expected_scores(posteriors, labels)
    assert shown["top1"] == pytest.approx(top1) and shown["loss"] == pytest.approx(loss, rel=1e-4)
    code, out, _ = zoo_cli(capsys, "eval", "lenet5", "--weights", "fashion_mnist", "--dataset",
                           "fashion_mnist_sample", "--protocol", "dense", "--limit", 50)
    assert code == 0 and "protocol: dense, 2 views per image" in out


def test_protocol_bad_input_is_one_line(capsys, tmp_path):
    common = ("eval", "lenet5", "--weights", "fashion_mnist", "--dataset", "fashion_mnist_sample")
    code, _, err = zoo_cli(capsys, *common, "--protocol", "10crp")
    assert code == 2 and err.count("\n") == 1 and "did you mean 10crop or 144crop?" in err
    code, _, err = zoo_cli(capsys, *common, "--protocol", "144crop")
    assert code == 1 and err == ("zoo: error: 144crop resizes and crops larger images; fashion_mnist_sample's "
                                 "28x28 images have one size (use center, 10crop or dense there)\n")
    code, _, err = zoo_cli(capsys, *common, "--protocol", "dense", "--record")
    assert code == 1 and "--record needs a run's weights" in err and err.count("\n") == 1
    code, _, err = zoo_cli(capsys, *common, "--protocol", "dense", "--record", "--limit", 5)
    assert code == 1 and "drop --limit and --split" in err
    code, _, err = zoo_cli(capsys, *common, "--results", tmp_path)
    assert code == 2 and "give --record too" in err
    code, _, err = zoo_cli(capsys, *common, "--protocol", "dense", "--record", "--mean", "pixel")
    assert code == 1 and "drop --mean" in err


def test_record_puts_a_run_under_its_protocol_beside_the_published_number(capsys, tmp_path):
    """A run folder's weights evaluated with --record: a second record of the run under the protocol, which
    `zoo table results` shows as a row of its own."""
    from zoo.training.config import resolve

    run = tmp_path / "run"
    run.mkdir()
    zoo.build("lenet5").save_weights(run / "model.weights.h5")  # a run's own file (a shipped one is its entry)
    (run / "config.json").write_text(json.dumps(resolve("lenet5", dataset="fashion_mnist_sample").to_dict()))
    own = {"run_id": "r1", "model": "lenet5", "dataset": "fashion_mnist_sample", "recipe": "lenet_fmnist",
           "test_accuracy": 0.5, "status": "finished", "complete": True, "train_split": "train", "protocol": "center",
           "finished": "2026-01-01", "notes": []}
    (run / "metrics.json").write_text(json.dumps(own))
    store = tmp_path / "store"
    code, out, err = zoo_cli(capsys, "eval", "lenet5", "--weights", run, "--protocol", "dense", "--record",
                             "--results", store, "--json")
    assert code == 0, err
    shown = json.loads(out)
    saved = json.loads((store / "r1-dense.json").read_text())
    assert (saved["protocol"], saved["test_accuracy"], saved["eval_split"]) == ("dense", shown["top1"], "test")
    assert saved["recipe"] == "lenet_fmnist" and "zoo eval --protocol dense (2 views per image)" in saved["notes"][0]
    (store / "r1.json").write_text(json.dumps(own))
    code, out, _ = zoo_cli(capsys, "table", "results", "--dataset", "fashion_mnist_sample", "--results", store,
                           "--format", "json")
    assert code == 0 and sorted(row["protocol"] for row in json.loads(out)) == ["center", "dense"]


@pytest.fixture(scope="module")
def mock_imagenet(tmp_path_factory):
    """A data dir holding only ImageNet's real metadata (what a prepared dataset has); tfds.testing.mock_data
    serves random images of 5-50 px a side and random labels."""
    import tensorflow_datasets as tfds

    root = tmp_path_factory.mktemp("tfds")
    builder = tfds.builder("imagenet2012", data_dir=str(root))
    builder.data_path.mkdir(parents=True)
    builder.info.write_to_directory(builder.data_path)
    weights = root / "lenet5-1000.weights.h5"
    import keras

    keras.utils.set_random_seed(0)  # the same weights in every run: the losses compared are then the same numbers
    zoo.build("lenet5", classes=1000, classifier_activation=None).save_weights(weights)
    return root, weights


def raw_images(root, count):
    import tensorflow_datasets as tfds

    ds = tfds.load("imagenet2012", split=f"validation[:{count}]", data_dir=str(root), as_supervised=True)
    return [(image.numpy().astype(np.float32), int(label)) for image, label in ds]


def grey_normalised(images, prep):
    from zoo.preprocess import GREY_WEIGHTS

    return (np.tensordot(images, np.array(GREY_WEIGHTS, np.float32), axes=([-1], [0]))[..., None] - prep.mean[0]) \
        / prep.std[0]


def test_10crop_and_144crop_on_mock_imagenet_through_zoo_eval(capsys, mock_imagenet):
    """LeNet-5 (1000 classes, 32 px, grey) on mock ImageNet: 10crop through `zoo eval` equals 10 crops of the
    37 px centre square cut with numpy; 144crop equals GoogLeNet's crops cut here from the raw images."""
    import tensorflow_datasets as tfds

    from zoo.data.pipeline import make_dataset
    from zoo.training.evaluate import evaluate, prepare

    root, weights = mock_imagenet
    with tfds.testing.mock_data(num_examples=5):
        code, out, err = zoo_cli(capsys, "eval", "lenet5", "--weights", weights, "--dataset", "imagenet2012",
                                 "--data-dir", root, "--protocol", "10crop", "--limit", 5, "--json")
        assert code == 0, err
        shown = json.loads(out)
        evaluation = prepare("lenet5", weights, dataset="imagenet2012", data_dir=root, limit=5)
        prep = evaluation.single_view()
        assert (prep.resize, prep.crop, prep.size, shown["views"]) == (37, 32, 32, 10)
        (canvas, labels), = make_dataset("imagenet2012", "validation[:5]", image_size=37, channels=1,
                                         batch_size=8, training=False, eval_resize=37, eval_crop=37, data_dir=root)
        canvas, labels = canvas.numpy(), labels.numpy()
        crops = [canvas[:, t:t + 32, l:l + 32] for t, l in ((0, 0), (0, 5), (5, 0), (5, 5), (2, 2))]
        model = lenet_on(evaluation)
        posteriors = np.mean([softmax(model.predict(v, verbose=0)) for v in crops + [c[:, :, ::-1] for c in crops]],
                             axis=0)
        assert shown["loss"] == pytest.approx(expected_scores(posteriors, labels)[1], rel=1e-4)

        result = evaluate("lenet5", weights, dataset="imagenet2012", data_dir=root, limit=5, protocol="144crop",
                          batch_size=300)
        views, labels = [], []
        for image, label in raw_images(root, 5):
            grey = grey_normalised(image, prep)
            h, w = grey.shape[:2]
            s, longer = min(h, w), max(h, w)
            offsets = (0, (longer - s) // 2, longer - s)
            squares = [grey[o:o + s, :s] if h > w else grey[:s, o:o + s] for o in offsets]
            per_image = []
            for side in (round(q * 37 / 256) for q in (256, 288, 320, 352)):  # GoogLeNet's sides, 256 -> 37
                for square in squares:
                    q = tf.image.resize(square[None], [side, side], antialias=True).numpy()[0]
                    five = [q[t:t + 32, l:l + 32] for t, l in
                            ((0, 0), (0, side - 32), (side - 32, 0), (side - 32, side - 32),
                             ((side - 32) // 2, (side - 32) // 2))]
                    six = five + [tf.image.resize(q[None], [32, 32], antialias=True).numpy()[0]]
                    per_image += six + [v[:, ::-1] for v in six]
            views.append(np.stack(per_image))
            labels.append(label)
        views = np.stack(views)  # (5, 144, 32, 32, 1)
        assert views.shape[1] == 144 and result.views == 144 and result.protocol == "144crop"
        posteriors = softmax(model.predict(views.reshape(-1, 32, 32, 1), verbose=0)).reshape(5, 144, -1).mean(1)
        assert result.loss == pytest.approx(expected_scores(posteriors, np.array(labels))[1], rel=1e-4)

        dense = evaluate("lenet5", weights, dataset="imagenet2012", data_dir=root, limit=5,
                         protocol="dense_multiscale_jittered")
        assert dense.views == 6 and np.isfinite(dense.loss) and 0 <= dense.top1 <= 1


def test_mean_image_subtraction_is_the_training_images_mean_at_the_views_geometry(capsys, tmp_path, monkeypatch):
    """--mean pixel: the mean image of the run's training split (cached in the data dir) replaces the per-channel
    mean; the result equals (x - M) / std computed here from the raw pixels."""
    from zoo.data.pipeline import make_dataset
    from zoo.training import protocols as P
    from zoo.training.evaluate import prepare

    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    evaluation = prepare("lenet5", "fashion_mnist", dataset="fashion_mnist_sample", limit=40, mean="pixel")
    prep, split = evaluation.preprocessing, evaluation.run.config.train_split

    def raw(part):
        batches = make_dataset("fashion_mnist_sample", part, image_size=32, channels=1, batch_size=10000,
                               training=False, mean=[0.0], std=[1.0], pad=2)
        return [(x.numpy(), y.numpy()) for x, y in batches]

    expected = np.concatenate([x for x, _ in raw(split)]).mean(axis=0)
    image = P.mean_image(evaluation, prep)
    np.testing.assert_allclose(image, expected, atol=1e-3)
    assert P.mean_image_path(evaluation, prep).is_file() and str(tmp_path) in str(P.mean_image_path(evaluation, prep))
    assert image.std() > 20  # a mean image, not a constant: Fashion-MNIST's background is black
    code, out, err = zoo_cli(capsys, "eval", "lenet5", "--weights", "fashion_mnist", "--dataset",
                             "fashion_mnist_sample", "--mean", "pixel", "--limit", 40, "--json")
    assert code == 0, err
    shown = json.loads(out)
    (x, labels), = raw("test[:40]")
    logits = lenet_on(evaluation).predict((x - expected) / prep.std[0], verbose=0)
    top1, loss = expected_scores(softmax(logits), labels)
    assert (shown["mean"], shown["protocol"], shown["committed_top1"]) == ("pixel", "center", None)
    assert shown["top1"] == pytest.approx(top1) and shown["loss"] == pytest.approx(loss, rel=1e-3)
    code, _, err = zoo_cli(capsys, "eval", "lenet5", "--weights", "fashion_mnist", "--dataset",
                           "fashion_mnist_sample", "--mean", "pixel", "--protocol", "10crop", "--limit", 8)
    assert code == 0, err
