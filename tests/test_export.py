"""`zoo export`: each format reloaded in its own runtime and compared with Keras; AlexNet's grouped convolutions
give a valid ONNX file; an inexact or failed export leaves nothing; missing packages are one line."""

from __future__ import annotations

import numpy as np
import pytest

import cli
import zoo
from zoo import export as exporting



def run(capsys, *args):
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt,name", [("onnx", "lenet5.onnx"), ("litert", "lenet5.tflite"),
                                      ("savedmodel", "lenet5_savedmodel")])
def test_export_each_format_with_the_shipped_weights(capsys, tmp_path, fmt, name):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        pytest.importorskip("tf2onnx")
    output = tmp_path / name
    code, out, err = run(capsys, "export", "lenet5", "--weights", "fashion_mnist", "--format", fmt, "-o",
                         str(output))
    assert code == 0, err
    assert output.exists() and f"-> {output} ({fmt})" in out
    diff = float(out.rsplit("= ", 1)[1].split()[0])
    assert diff <= 1e-4
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary left beside it


def test_include_preprocessing_takes_raw_pixels(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime

    w = zoo.get_weights("lenet5.fashion_mnist")
    model = exporting.with_preprocessing(w.build(), w.preprocessing)
    raw = exporting.example_batch(w.preprocessing, raw=True)
    result = exporting.export_model(model, tmp_path / "p.onnx", "onnx", raw)
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    found = session.run(None, {session.get_inputs()[0].name: raw})[0]
    expected = w.build().predict(w.preprocess(raw), verbose=0)
    np.testing.assert_allclose(found, expected, atol=1e-5)


def test_alexnet_grouped_convs_give_a_valid_onnx_file(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    from zoo.models import family_of

    spec = zoo.get_spec("alexnet")  # AlexNet's conv towers (groups=2 in conv2, 4, 5) with small dense layers
    model = family_of(spec).build(spec.arch.model_copy(update={"dense": [32, 32]}), spec.input, classes=10,
                                  input_shape=(99, 99, 3), name="alexnet")
    build, grouped = exporting.export_build(model)
    assert grouped == 3  # conv2, conv4, conv5: the two towers
    x = np.random.default_rng(0).normal(size=(2, 99, 99, 3)).astype("float32")
    np.testing.assert_allclose(build.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    result = exporting.export_model(model, tmp_path / "alexnet.onnx", "onnx", x)
    onnx.checker.check_model(str(result.path))
    assert result.grouped_convs == 3 and result.max_abs_diff <= 1e-4


def test_an_inexact_export_fails_and_leaves_nothing(tmp_path, monkeypatch):
    runtime, run_artifact = exporting.RUNTIMES["litert"]
    monkeypatch.setitem(exporting.RUNTIMES, "litert", (runtime, lambda path, x: run_artifact(path, x) + 1e-3))
    output = tmp_path / "lenet5.tflite"
    w = zoo.get_weights("lenet5.fashion_mnist")
    with pytest.raises(exporting.ExportError, match=r"differs from Keras by 0.001 \(more than 0.0001\); nothing "
                                                    r"written"):
        exporting.export_model(w.build(), output, "litert", exporting.example_batch(w.preprocessing))
    assert list(tmp_path.iterdir()) == []


def test_bad_output_and_missing_packages_are_one_line(capsys, tmp_path, monkeypatch):
    code, _, err = run(capsys, "export", "lenet5", "--format", "onnx", "-o", str(tmp_path / "x.tflite"))
    assert code == 1 and err == f"zoo: error: --output {tmp_path / 'x.tflite'}: onnx files end in .onnx\n"
    code, _, err = run(capsys, "export", "lenet5", "--format", "litert", "-o", str(tmp_path))
    assert code == 1 and "is a folder; a litert export is one file" in err
    monkeypatch.setitem(exporting.NEEDS, "onnx", ("onnx", "tf2onnx", "zoo_no_such_runtime"))
    code, _, err = run(capsys, "export", "lenet5", "--format", "onnx", "-o", str(tmp_path / "x.onnx"))
    assert code == 1
    assert err == ("zoo: error: --format onnx needs onnx, tf2onnx, zoo_no_such_runtime (missing: "
                   "zoo_no_such_runtime): pip install \".[export]\"\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_full_alexnet_onnx_export_on_the_command_line(capsys, tmp_path):
    pytest.importorskip("onnxruntime")
    code, out, err = run(capsys, "export", "alexnet", "--format", "onnx", "-o", str(tmp_path / "alexnet.onnx"))
    assert code == 0, err
    assert "3 grouped convolutions as split/concat" in out
