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


def test_tf2onnx_node_protos_are_rebuilt_so_cleared_tensors_are_freed():
    """The cause of VGG's ONNX export running out of memory: tf2onnx refills every node's protobuf after each
    optimizer pass, and under upb a cleared attribute stays in the node's arena. Ten refills of a 64 MB constant
    keep ten copies without the rebuild and at most one or two with it."""
    pytest.importorskip("tf2onnx")
    from google.protobuf.internal import api_implementation
    from tf2onnx.graph import Graph

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))

    def growth_over_refills(graph, name):
        value = np.arange(16 * 2**20, dtype="float32")  # 64 MB
        const = graph.make_const(name, value)
        const.update_proto()
        before = rss_mb()
        for _ in range(10):
            const.update_proto()
        np.testing.assert_array_equal(const.get_tensor_value(as_list=False), value)  # the refilled node is whole
        assert const.op.attribute[0].t.raw_data == value.tobytes()
        return rss_mb() - before

    graph = Graph([], opset=15)
    with exporting._tf2onnx_node_protos_rebuilt():
        assert growth_over_refills(graph, "rebuilt") < 2 * 64
    if api_implementation.Type() == "upb":  # the leak being guarded against (the other runtimes free at once)
        assert growth_over_refills(graph, "refilled") > 6 * 64


def test_small_vgg_with_batchnorm_exports_to_one_self_contained_onnx_file(tmp_path):
    """The VGG path end to end at a small size: large-model freezing, BatchNorm without Grappler, and the weights
    inlined (no external data, nothing beside the file)."""
    pytest.importorskip("onnxruntime")
    import onnx

    from zoo.models import family_of

    spec = zoo.get_spec("vgg11_bn")
    arch = spec.arch.model_copy(update={"widths": [8, 8, 16, 16, 16], "dense": [32, 32]})
    model = family_of(spec).build(arch, spec.input, classes=10, input_shape=(32, 32, 3), name="vgg11_bn")
    rng = np.random.default_rng(0)
    for layer in model.layers:  # BatchNorm statistics far from (0, 1): the folding must be right, not neutral
        if layer.__class__.__name__ == "BatchNormalization":
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.2, n),
                               rng.uniform(0.5, 1.5, n)])
    x = rng.normal(size=(2, 32, 32, 3)).astype("float32")
    result = exporting.export_model(model, tmp_path / "vgg.onnx", "onnx", x)
    assert result.max_abs_diff <= 1e-4 and [p.name for p in tmp_path.iterdir()] == ["vgg.onnx"]
    proto = onnx.load(str(result.path), load_external_data=False)
    onnx.checker.check_model(proto)
    assert proto.graph.initializer and all(t.data_location == onnx.TensorProto.DEFAULT and not t.external_data
                                           for t in proto.graph.initializer)
    assert [i.name for i in proto.graph.input] == [model.inputs[0].name]


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


@pytest.mark.slow
@pytest.mark.parametrize("name", zoo.list_models("vgg*"))
def test_every_vgg_exports_to_onnx_on_the_command_line(capsys, tmp_path, name):
    """VGG's 133-144M parameters used to take tf2onnx past 13 GiB (VGG11) and 20 GiB (VGG16); see zoo/export.py."""
    pytest.importorskip("onnxruntime")
    output = tmp_path / f"{name}.onnx"
    code, out, err = run(capsys, "export", name, "--format", "onnx", "-o", str(output))
    assert code == 0, err
    assert float(out.rsplit("= ", 1)[1].split()[0]) <= 1e-4
    assert [p.name for p in tmp_path.iterdir()] == [output.name]
    assert output.stat().st_size > 4 * 130e6  # the float32 weights are in the one file
