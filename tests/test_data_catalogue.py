"""The dataset catalogue, readiness checks, the embedded sample's files and `zoo datasets` (no TensorFlow needed
except where a test compares with TFDS's own builders)."""

import gzip
import hashlib
import json
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from zoo.data import catalogue as cat
from zoo.data import sources

REQUIRED = ["mnist", "fashion_mnist", "cifar10", "cifar100", "imagenet2012", "imagenette", "fashion_mnist_sample"]


def test_catalogue_has_the_required_datasets_with_consistent_facts():
    entries = cat.load_catalogue()
    assert set(REQUIRED) <= set(entries)
    for name in REQUIRED:
        entry = entries[name]
        assert len(entry.names()) == entry.num_classes == len(set(entry.names()))
        assert len(entry.mean) == len(entry.std) == entry.image_shape[2]
        assert entry.eval_split in entry.splits
    assert cat.get_dataset("cifar10").num_classes == 10
    assert cat.get_dataset("cifar100").num_classes == 100
    assert len(cat.get_dataset("cifar100").coarse_class_names) == 20
    assert cat.get_dataset("imagenet2012").num_classes == 1000
    assert cat.get_dataset("imagenet2012").names()[0] == "n01440764"
    assert cat.get_dataset("imagenette").names()[-1] == "n03888257"


def test_holdouts_follow_the_papers():
    info = cat.dataset_info("cifar10")
    assert info.num_examples == {"train": 45000, "validation": 5000, "train_full": 50000, "test": 10000}
    assert info.validation_holdout == 5000
    assert info.mean == (125.3069, 122.9504, 113.8654)
    imagenet = cat.dataset_info("imagenet2012")
    assert imagenet.validation_holdout is None and imagenet.eval_split == "validation"
    assert imagenet.num_examples["validation"] == 50000 and imagenet.num_examples["train"] == 1281167
    sample = cat.dataset_info("fashion_mnist_sample")
    assert sample.num_examples == {"train": 5400, "validation": 600, "train_full": 6000, "test": 1000}  # 10%
    assert cat.dataset_info("cifar10", holdout=0).num_examples["train"] == 50000
    own = cat.dataset_info("imagenette", holdout=100)  # its own validation split wins over a recipe's holdout
    assert own.num_examples["train"] == 9469 and own.num_examples["validation"] == 3925
    with pytest.raises(cat.DatasetError, match="leaves no training images"):
        cat.dataset_info("cifar10", holdout=50000)


def test_unknown_dataset_suggests_close_names():
    with pytest.raises(cat.UnknownDatasetError, match=r"unknown dataset 'cifar-10'; did you mean cifar10"):
        cat.get_dataset("cifar-10")


def test_data_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    assert cat.resolve_data_dir() == cat.Path.home() / "tensorflow_datasets"
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds"))
    assert cat.resolve_data_dir() == tmp_path / "tfds"
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "zoo"))
    assert cat.resolve_data_dir() == tmp_path / "zoo"
    assert cat.resolve_data_dir(tmp_path / "given") == tmp_path / "given"


def test_readiness_and_the_one_line_not_ready_error(tmp_path):
    assert not cat.is_ready("cifar10", tmp_path)
    with pytest.raises(cat.DatasetNotReadyError) as err:
        cat.require_ready("cifar10", tmp_path)
    message = str(err.value)
    assert "\n" not in message
    assert f"dataset 'cifar10' is not prepared in {tmp_path}" in message
    assert "`zoo data prepare cifar10` (downloads it)" in message
    assert "`zoo data prepare cifar10 --from DIR` with DIR holding cifar-10-python.tar.gz" in message
    manual = str(pytest.raises(cat.DatasetNotReadyError, cat.require_ready, "imagenet2012", tmp_path).value)
    assert (f"put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in {tmp_path}/downloads/manual/ "
            "and run `zoo data prepare imagenet2012`") in manual
    assert "train/<class>/ and val/<class>/ image folders" in manual

    version_dir = tmp_path / "cifar10" / "3.0.2"
    version_dir.mkdir(parents=True)
    assert not cat.is_ready("cifar10", tmp_path)  # a folder without dataset_info.json is not a dataset
    (version_dir / "dataset_info.json").write_text("{}")
    (version_dir / "cifar10-train.tfrecord-00000-of-00001").write_bytes(b"x" * 1000)
    assert cat.is_ready("cifar10", tmp_path)
    assert cat.size_on_disk("cifar10", tmp_path) == 1002
    assert cat.is_ready("fashion_mnist_sample", tmp_path)  # embedded: always ready


def test_catalogue_versions_and_names_match_the_installed_tfds_builders():
    tfds = pytest.importorskip("tensorflow_datasets")
    for name in REQUIRED:
        entry = cat.get_dataset(name)
        if entry.tfds is None:
            continue
        builder_cls = tfds.builder_cls(entry.tfds.name)
        assert str(builder_cls.VERSION) == entry.tfds.version, name
        if entry.tfds.config:
            assert entry.tfds.config in {c.name for c in builder_cls.BUILDER_CONFIGS}
    fashion = tfds.builder("fashion_mnist", data_dir="/nonexistent")
    assert fashion.info.features["label"].names == cat.get_dataset("fashion_mnist").names()
    assert fashion.info.features["image"].shape == tuple(cat.get_dataset("fashion_mnist").image_shape)


# ---------------------------------------------------------------------------------------------------------------
# The embedded sample


def test_sample_files_size_balance_and_statistics():
    folder = cat.sample_dir()
    files = sorted(p.name for p in folder.glob("*.gz"))
    assert files == ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                     "train-labels-idx1-ubyte.gz"]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 4_000_000
    train = sources.read_idx_split(*sources.find_idx_files(folder, "train"), image_size=(28, 28), num_classes=10)
    test = sources.read_idx_split(*sources.find_idx_files(folder, "test"), image_size=(28, 28), num_classes=10)
    assert train[0].shape == (6000, 28, 28, 1) and test[0].shape == (1000, 28, 28, 1)
    assert np.bincount(train[1]).tolist() == [600] * 10
    assert np.bincount(test[1]).tolist() == [100] * 10
    assert np.bincount(train[1][-1000:]).tolist() == [100] * 10  # the validation holdout is balanced too
    assert len({hashlib.md5(image.tobytes()).hexdigest() for image in train[0]}) >= 5990  # distinct images
    entry = cat.get_dataset("fashion_mnist_sample")
    pixels = train[0].astype(np.float64)
    assert pixels.mean() == pytest.approx(entry.mean[0], abs=1e-3)
    assert pixels.std() == pytest.approx(entry.std[0], abs=1e-3)


def test_sample_readme_records_provenance_license_and_the_files_sha256():
    folder = cat.sample_dir()
    readme = (folder / "README.md").read_text()
    assert "MIT License" in readme and "Zalando SE" in readme
    assert "scripts/make_sample.py" in readme and "seed 0" in readme
    for path in folder.glob("*.gz"):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"| `{path.name}` | `{digest}` |" in readme, path.name
        with gzip.open(path) as f:  # reproducible gzip: no file name, mtime 0
            f.read(1)
        assert path.read_bytes()[4:8] == b"\0\0\0\0"
    assert len(re.findall(r"\| \d \| .+ \| 600 \| 100 \| 100 \|", readme)) == 10


# ---------------------------------------------------------------------------------------------------------------
# `zoo datasets`


def test_zoo_datasets_json_reports_readiness_and_size(tmp_path):
    from zoo.commands.data import datasets

    version_dir = tmp_path / "mnist" / "3.0.1"
    version_dir.mkdir(parents=True)
    (version_dir / "dataset_info.json").write_text("{}")
    result = CliRunner().invoke(datasets, ["--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["data_dir"] == str(tmp_path)
    rows = {row["name"]: row for row in doc["datasets"]}
    assert set(REQUIRED) <= set(rows)
    assert rows["mnist"]["ready"] is True and rows["mnist"]["size_bytes"] == 2
    assert rows["mnist"]["path"] == str(version_dir)
    assert rows["cifar10"]["ready"] is False and rows["cifar10"]["size_bytes"] == 0
    assert rows["fashion_mnist_sample"]["ready"] is True and rows["fashion_mnist_sample"]["obtain"] == "embedded"
    assert rows["imagenet2012"]["obtain"] == "manual" and rows["imagenet2012"]["tfds"] == "imagenet2012:5.1.0"

    table = CliRunner().invoke(datasets, ["--data-dir", str(tmp_path)])
    assert table.exit_code == 0
    assert re.search(r"mnist\s+mnist:3\.0\.1\s+train 60k, test 10k\s+28x28x1\s+10\s+yes", table.output)
    assert re.search(r"imagenet2012\s+imagenet2012:5\.1\.0\s+train 1\.28M, val 50k, test 100k\s+HxWx3\s+1000\s+no",
                     table.output)


def test_data_commands_import_no_tensorflow(root):
    code = ("import sys, zoo.commands.data, zoo.data; "
            "assert 'tensorflow' not in sys.modules and 'tensorflow_datasets' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_the_data_layer_stands_alone_without_the_registry():
    """zoo/data knows datasets, not models: no module of it imports the registry or takes a Spec or Recipe (the
    translation from a model's needs to a PipelineSpec is the training harness's, zoo/training/inputs.py)."""
    import ast
    from pathlib import Path

    folder = Path(cat.__file__).parent
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = "." * node.level + (node.module or "")
                names = [a.name for a in node.names]
                assert "registry" not in module and "registry" not in names, f"{path.name} imports {module}"
                assert not {"Spec", "Recipe"} & set(names), f"{path.name} imports {names} from {module}"
            elif isinstance(node, ast.Import):
                assert not any("registry" in a.name for a in node.names), f"{path.name} imports the registry"
            elif isinstance(node, ast.Name):
                assert node.id not in ("Spec", "Recipe", "get_spec"), f"{path.name} uses {node.id}"
