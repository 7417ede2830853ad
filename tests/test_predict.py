"""`zoo predict`: image files of every format, bad files named (the others still answered), --top-k clamped, and
keras.applications' ImageNet weights read offline from a KERAS_HOME, equal to Keras' own preprocess_input +
predict."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from zoo import cli
from zoo.data.catalogue import sample_dir

FM_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def run(capsys, *args) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def fm_images(tmp_path_factory):
    """Four sample test images as PNG (grey), JPEG (colour, resized to 100x80), GIF (palette) and BMP."""
    from PIL import Image

    with gzip.open(sample_dir() / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(sample_dir() / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    folder = tmp_path_factory.mktemp("fm")
    files = {"grey.png": Image.fromarray(images[0]),
             "colour.jpg": Image.fromarray(images[1]).resize((100, 80)).convert("RGB"),
             "palette.gif": Image.fromarray(images[2]).convert("P"), "plain.bmp": Image.fromarray(images[3])}
    for name, image in files.items():
        image.save(folder / name, quality=95) if name.endswith(".jpg") else image.save(folder / name)
    return folder, [str(folder / name) for name in files], [FM_NAMES[i] for i in labels[:4]]


def test_predict_every_format_with_the_shipped_weights(capsys, fm_images):
    _, paths, truth = fm_images
    code, out, err = run(capsys, "predict", "lenet5", *paths, "--top-k", "3", "--json")
    assert code == 0, err
    answers = json.loads(out)
    assert [a["image"] for a in answers] == paths
    for answer in answers:
        assert len(answer["top"]) == 3
        probabilities = [p["probability"] for p in answer["top"]]
        assert probabilities == sorted(probabilities, reverse=True) and 0 < sum(probabilities) <= 1 + 1e-6
        assert all(FM_NAMES[p["index"]] == p["label"] for p in answer["top"])
    assert [a["top"][0]["label"] for a in answers][:2] == truth[:2]  # the grey PNG and the resized colour JPEG


def test_bad_files_are_named_and_the_others_answered(capsys, fm_images, tmp_path):
    folder, paths, _ = fm_images
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    code, out, err = run(capsys, "predict", "lenet5", paths[0], str(bad), str(folder), str(empty),
                         str(tmp_path / "missing.png"), "--top-k", "20")
    assert code == 1
    assert out.startswith(f"{paths[0]}:\n") and out.count("%") == 10  # answered, clamped to the 10 classes
    lines = err.strip().splitlines()
    assert lines[0] == "zoo: note: --top-k 20 is more than the 10 classes of lenet5.fashion_mnist: showing 10"
    assert any(line.startswith(f"zoo: error: {bad}: not a JPEG, PNG, BMP or GIF image") for line in lines)
    assert f"zoo: error: {folder}: is a folder, not an image file" in lines
    assert f"zoo: error: {empty}: empty file, not an image" in lines
    assert any(line.startswith(f"zoo: error: {tmp_path / 'missing.png'}: cannot read it") for line in lines)
    assert lines[-1] == "zoo: error: 4 of 5 files not answered (each named above)"
    assert "Traceback" not in err


def test_unknown_weights_tag_is_one_line(capsys, fm_images):
    code, _, err = run(capsys, "predict", "lenet5", fm_images[1][0], "--weights", "imagenet")
    assert code == 1
    assert err == "zoo: error: unknown weights 'imagenet' for lenet5 (available: fashion_mnist)\n"


# -- keras.applications' ImageNet weights, offline ----------------------------------------------------------

DEFAULT_TWINS = ["resnet50", "densenet121"]
SLOW_TWINS = ["vgg16", "vgg19", "resnet101", "resnet152", "densenet169", "densenet201"]


def keras_file_with_random_weights(name: str, folder) -> object:
    """keras.applications' twin of `name` with random weights, BatchNorm statistics far from (0, 1) and non-zero
    conv biases, saved in Keras 2's HDF5 layout under Keras' own file name in `folder` (a KERAS_HOME/models)."""
    import h5py
    from keras import layers
    from keras.src.legacy.saving import legacy_h5_format

    from zoo import get_spec
    from zoo.weights import keras_twin

    rng = np.random.default_rng(12)
    twin = keras_twin(name, weights=None)
    for layer in twin.layers:
        if isinstance(layer, layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n),
                               rng.uniform(0.5, 1.5, n)])
        elif isinstance(layer, (layers.Conv2D, layers.Dense)) and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.05, bias.shape)])
    with h5py.File(folder / get_spec(name).weights["imagenet"].file, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, twin)
    return twin


def images_256(folder, count: int = 2) -> list[str]:
    """Smooth colour images whose shorter side is already 256: the protocol's crop is then an exact 224 slice."""
    from PIL import Image

    rng = np.random.default_rng(3)
    paths = []
    for i in range(count):
        small = rng.integers(0, 256, (8, 8 + 2 * i, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize((256 + 64 * i, 256), Image.BILINEAR)
        paths.append(str(folder / f"image{i}.png"))
        image.save(paths[-1])
    return paths


@pytest.mark.parametrize("name", DEFAULT_TWINS + [pytest.param(n, marks=pytest.mark.slow) for n in SLOW_TWINS])
def test_imagenet_weights_equal_keras_preprocess_input_and_predict(capsys, tmp_path, monkeypatch, name):
    import importlib

    from PIL import Image

    models = tmp_path / "keras" / "models"
    models.mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    twin = keras_file_with_random_weights(name, models)
    paths = images_256(tmp_path)
    code, out, err = run(capsys, "predict", name, *paths, "--weights", "imagenet", "--top-k", "1000", "--json")
    assert code == 0, err
    ours = np.zeros((len(paths), 1000))
    for row, answer in zip(ours, json.loads(out)):
        for p in answer["top"]:
            row[p["index"]] = p["probability"]
    family = {"vgg16": "vgg16", "vgg19": "vgg19"}.get(name, name.rstrip("0123456789"))
    keras_module = importlib.import_module(f"keras.applications.{family}")
    crops = []
    for path in paths:
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype="float32")
        top, left = (pixels.shape[0] - 224) // 2, (pixels.shape[1] - 224) // 2
        crops.append(pixels[top:top + 224, left:left + 224])
    expected = twin.predict(keras_module.preprocess_input(np.stack(crops)), verbose=0)
    assert ours.argmax(1).tolist() == expected.argmax(1).tolist()
    np.testing.assert_allclose(ours, expected, atol=1e-5)


def test_corrupt_or_foreign_weights_files_are_one_line(capsys, fm_images, tmp_path):
    from zoo import get_weights

    shipped = get_weights("lenet5.fashion_mnist").path
    truncated = tmp_path / "cut.weights.h5"
    truncated.write_bytes(shipped.read_bytes()[:1000])
    code, _, err = run(capsys, "predict", "lenet5", fm_images[1][0], "--weights", str(truncated))
    assert code == 1 and err.startswith(f"zoo: error: cannot load weights from {truncated} into lenet5: ")
    assert err.count("\n") == 1
    harley = get_weights("lenet5_harley.fashion_mnist").path  # a shipped file: known by its sha256
    code, _, err = run(capsys, "predict", "lenet5", fm_images[1][0], "--weights", str(harley))
    assert (code, err) == (1, f"zoo: error: {harley} holds lenet5_harley.fashion_mnist (its sha256): weights of "
                              "lenet5_harley, not lenet5\n")
    import zoo

    foreign = tmp_path / "harley.weights.h5"  # any other file: told by its layers
    zoo.build("lenet5_harley").save_weights(foreign)
    code, _, err = run(capsys, "predict", "lenet5", fm_images[1][0], "--weights", str(foreign))
    assert code == 1 and err.startswith(f"zoo: error: {foreign} holds weights of lenet5_harley, not lenet5 (")
