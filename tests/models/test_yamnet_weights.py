"""Pretrained YAMNet weights: TFLite import, .h5 and SavedModel paths, bad files, resolution order."""

import dataclasses
import hashlib

import h5py
import numpy as np
import pytest

from lean_kd._keras import keras, tf
from lean_kd.errors import ModelError
from lean_kd.models.yamnet.network import YAMNetConfig, build_yamnet, weighted_layers
from lean_kd.models.yamnet.pretrained import (
    ENV_CACHE,
    ENV_WEIGHTS,
    REGISTRY_PATH,
    load_registry,
    resolve_yamnet_weights,
)
from lean_kd.models.yamnet.weights import load_yamnet_weights, pretrained_yamnet

SHARED_SHA256 = "469be6a3421cbc52cf97e9f2f966cba984198e8e7af9854d68b3e3ebb1e04194"


@pytest.fixture(scope="module")
def pretrained(yamnet_tflite):
    return pretrained_yamnet(weights=yamnet_tflite)


def snapshot(model):
    return {w.name: w.numpy().copy() for w in model.weights}


def assert_same_weights(a, b):
    wa, wb = snapshot(a), snapshot(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def fresh_model():
    model = build_yamnet()
    assert not np.any(model.get_layer("layer1/conv/bn").weights[0].numpy())  # beta starts at 0
    return model


@pytest.fixture(scope="module")
def blank():
    """One model for the failing loads: a failed load must leave it as built."""
    return fresh_model()


def test_tflite_import_dequantizes_like_the_interpreter(pretrained, yamnet_tflite):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(yamnet_tflite))
    interpreter.allocate_tensors()
    tensors = {d["name"]: d for d in interpreter.get_tensor_details()}

    def dequantized(name):
        detail = tensors[f"yamnet_frames/{name}"]
        q, params = interpreter.get_tensor(detail["index"]), detail["quantization_parameters"]
        shape = [-1] + [1] * (q.ndim - 1) if params["scales"].size > 1 else [1] * q.ndim
        return (q.astype(np.float32) - params["zero_points"].reshape(shape)) * params[
            "scales"
        ].reshape(shape)

    kernel = pretrained.get_layer(
        "layer2/pointwise_conv"
    ).kernel.numpy()  # int8, per output channel
    np.testing.assert_allclose(
        kernel, dequantized("layer2/pointwise_conv/Conv2D").transpose(1, 2, 3, 0), rtol=1e-6
    )
    depthwise = pretrained.get_layer(
        "layer5/depthwise_conv"
    ).depthwise_kernel.numpy()  # int8, per tensor
    name = "layer5/depthwise_conv/bn/FusedBatchNormV3;yamnet_frames/layer5/depthwise_conv/depthwise"
    np.testing.assert_allclose(depthwise, dequantized(name)[0][..., None], rtol=1e-6)
    head = pretrained.get_layer("logits").kernel.numpy()
    np.testing.assert_allclose(head, dequantized("dense/MatMul").T, rtol=1e-6)
    first = pretrained.get_layer("layer1/conv").kernel.numpy()  # float32 in the file
    np.testing.assert_array_equal(
        first,
        interpreter.get_tensor(tensors["yamnet_frames/layer1/conv/Conv2D"]["index"]).transpose(
            1, 2, 3, 0
        ),
    )
    beta, mean, variance = (
        w.numpy() for w in pretrained.get_layer("layer2/pointwise_conv/bn").weights
    )
    np.testing.assert_array_equal(
        beta,
        interpreter.get_tensor(
            tensors["yamnet_frames/layer2/pointwise_conv/bn/FusedBatchNormV3"]["index"]
        ),
    )
    assert not mean.any() and np.all(variance == np.float32(1 - 1e-4))


def test_h5_in_the_official_layout_loads_bit_exactly(pretrained, tmp_path):
    path = tmp_path / "yamnet.h5"
    pretrained.save_weights(path)  # groups 'layer1/conv', 'layer1/conv/bn', ..., 'logits'
    with h5py.File(path, "a") as h5:  # the official file's head is the unnamed Dense 'dense'
        h5.move("logits", "dense")
        h5.move("dense/logits", "dense/dense")
    model = fresh_model()
    assert load_yamnet_weights(model, path) == str(path)
    assert_same_weights(model, pretrained)


def test_h5_with_a_missing_layer_fails_without_partial_load(blank, pretrained, tmp_path):
    path = tmp_path / "incomplete.h5"
    pretrained.save_weights(path)
    with h5py.File(path, "a") as h5:
        del h5["layer7/pointwise_conv/bn"]
    before = snapshot(blank)
    with pytest.raises(
        ModelError, match=r"no weights for 1 of 55 layers: layer7/pointwise_conv/bn"
    ):
        load_yamnet_weights(blank, path)
    for name, value in snapshot(blank).items():
        np.testing.assert_array_equal(value, before[name])


def test_h5_with_wrong_shapes_names_the_layer(blank, tmp_path):
    path = tmp_path / "ten_classes.h5"
    build_yamnet(YAMNetConfig(num_classes=10)).save_weights(path)
    with pytest.raises(
        ModelError,
        match=r"layer logits expects weight shapes \[\(1024, 521\), \(521,\)\].*\(1024, 10\)",
    ):
        load_yamnet_weights(blank, path)


@pytest.fixture(scope="module")
def saved_model(pretrained, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "saved_model"
    pretrained.save(path, save_traces=False)  # layers rebuild from their configs: faster
    return path


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
def test_whole_model_survives_h5_and_savedmodel_round_trips(pretrained, saved_model, tmp_path):
    waveform = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 15600)).astype(np.float32)
    expected = pretrained.predict(waveform, verbose=0)
    h5_path = tmp_path / "model.h5"
    pretrained.save(h5_path)
    for path in (h5_path, saved_model):
        restored = keras.models.load_model(path)
        assert_same_weights(restored, pretrained)
        actual = restored.predict(waveform, verbose=0)
        for key in ("scores", "embeddings", "log_mel"):
            np.testing.assert_array_equal(actual[key], expected[key], err_msg=f"{path.name}: {key}")


def test_savedmodel_directory_loads_through_tensorflow_hub(pretrained, saved_model, tmp_path):
    model = fresh_model()
    assert load_yamnet_weights(model, saved_model) == str(saved_model)
    assert_same_weights(model, pretrained)
    with pytest.raises(ModelError, match="not a loadable SavedModel"):
        load_yamnet_weights(fresh_model(), tmp_path)  # a directory without saved_model.pb


def test_truncated_tflite_is_rejected(blank, yamnet_tflite, tmp_path):
    path = tmp_path / "truncated.tflite"
    path.write_bytes(yamnet_tflite.read_bytes()[:2_000_000])
    with pytest.raises(ModelError, match="corrupt or truncated TFLite"):
        load_yamnet_weights(blank, path)


def test_another_models_tflite_is_rejected(blank, tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 1])])
    def tiny_cnn(image):  # one 3x3 conv + ReLU, then a dense layer: not YAMNet
        features = tf.nn.relu(tf.nn.conv2d(image, tf.ones([3, 3, 1, 4]), strides=2, padding="SAME"))
        return tf.matmul(tf.reshape(features, [1, -1]), tf.ones([256, 3]))

    path = tmp_path / "tiny.tflite"
    path.write_bytes(
        tf.lite.TFLiteConverter.from_concrete_functions(
            [tiny_cnn.get_concrete_function()]
        ).convert()
    )
    with pytest.raises(
        ModelError,
        match=r"not a YAMNet TFLite file: expected 27 convolutions.*found 1: \['CONV_2D'\]",
    ):
        load_yamnet_weights(blank, path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "not a TFLite file, an HDF5 weights file or a SavedModel"),
        (b"hello, this is text", "not a TFLite file, an HDF5 weights file or a SavedModel"),
        (b"\x89HDF\r\n\x1a\n" + b"\0" * 100, "not a readable HDF5 weights file"),
    ],
)
def test_unreadable_files_are_rejected(blank, tmp_path, content, match):
    path = tmp_path / "weights.bin"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=match):
        load_yamnet_weights(blank, path)


def test_missing_file_and_model_without_yamnet_layers(blank, tmp_path, yamnet_tflite):
    with pytest.raises(ModelError, match="do not exist"):
        load_yamnet_weights(blank, tmp_path / "nope.tflite")
    other = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="has no YAMNet layers"):
        load_yamnet_weights(other, yamnet_tflite)


# --- where the weights come from -------------------------------------------------------------


@pytest.fixture
def registry(tmp_path, monkeypatch):
    """A registry whose YAMNet entry downloads a local file through a file:// URL."""
    source = tmp_path / "served" / "yamnet.tflite"
    source.parent.mkdir()
    source.write_bytes(b"not really a model, but bytes with a known checksum")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    path = tmp_path / "pretrained.yaml"
    path.write_text(
        f"yamnet_tflite:\n  url: {source.as_uri()}\n  sha256: {digest}\n  filename: yamnet/yamnet.tflite\n"
    )
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "cache"))
    return path


def test_explicit_source_then_environment_variable(registry, tmp_path, monkeypatch):
    assert resolve_yamnet_weights("given.h5", registry=registry) == "given.h5"
    local = tmp_path / "mine.tflite"
    local.write_bytes(b"x")
    monkeypatch.setenv(ENV_WEIGHTS, str(local))
    assert resolve_yamnet_weights(registry=registry) == str(local)
    monkeypatch.setenv(ENV_WEIGHTS, str(tmp_path / "missing.tflite"))
    with pytest.raises(ModelError, match=r"\$LEAN_KD_YAMNET names .*missing.tflite"):
        resolve_yamnet_weights(registry=registry)


def test_download_into_the_cache_then_reuse(registry, tmp_path):
    cached = tmp_path / "cache" / "yamnet" / "yamnet.tflite"
    assert resolve_yamnet_weights(registry=registry) == str(cached)
    assert cached.read_bytes() == (tmp_path / "served" / "yamnet.tflite").read_bytes()
    (tmp_path / "served" / "yamnet.tflite").unlink()  # the second call must not download
    assert resolve_yamnet_weights(registry=registry) == str(cached)


def test_checksum_mismatch_leaves_nothing_in_the_cache(registry, tmp_path):
    registry.write_text(registry.read_text().replace("sha256: ", "sha256: 0"))
    with pytest.raises(ModelError, match=r"sha256 [0-9a-f]{64} does not match the expected 0"):
        resolve_yamnet_weights(registry=registry)
    assert list((tmp_path / "cache" / "yamnet").iterdir()) == []


def test_failed_download_names_variable_url_and_cache(registry, tmp_path):
    (tmp_path / "served" / "yamnet.tflite").unlink()
    url = (tmp_path / "served" / "yamnet.tflite").as_uri()
    cached = tmp_path / "cache" / "yamnet" / "yamnet.tflite"
    with pytest.raises(ModelError) as error:
        resolve_yamnet_weights(registry=registry)
    assert (
        "$LEAN_KD_YAMNET" in str(error.value)
        and url in str(error.value)
        and str(cached) in str(error.value)
    )


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("yamnet_tflite:\n  url: x\n  sha256: y\n  filename: z\n  mirror: w\n", "unknown key"),
        ("other:\n  url: x\n  sha256: y\n  filename: z\n", "no 'yamnet_tflite' entry"),
        ("[1, 2", "not valid YAML"),
    ],
)
def test_bad_registry_is_rejected(registry, text, match):
    registry.write_text(text)
    with pytest.raises(ModelError, match=match):
        resolve_yamnet_weights(registry=registry)


def test_shipped_registry_lists_the_official_tflite(yamnet_tflite):
    entry = load_registry(REGISTRY_PATH)["yamnet_tflite"]
    assert entry.sha256 == SHARED_SHA256 == hashlib.sha256(yamnet_tflite.read_bytes()).hexdigest()
    assert entry.url.startswith("https://") and entry.filename.endswith("yamnet.tflite")


def test_every_yamnet_layer_gets_weights_from_the_tflite(pretrained):
    layers = weighted_layers(pretrained)
    assert len(layers) == 55
    assert all(np.any(w.numpy()) for layer in layers.values() for w in layer.weights[:1])


def test_narrowing_keeps_the_strongest_channels_and_their_inputs():
    from lean_kd.models.yamnet.narrow import narrow_weights
    from lean_kd.models.yamnet.network import conv_layer_names

    rng = np.random.default_rng(0)
    full = YAMNetConfig(include_head=False)
    model = build_yamnet(full)
    weights = {
        name: [rng.normal(size=w.shape).astype(np.float32) for w in layer.weights]
        for name, layer in weighted_layers(model).items()
    }
    for name in weights:  # batch norms: beta, mean, variance > 0
        if name.endswith("/bn"):
            weights[name][2] = np.abs(weights[name][2]) + 0.5
    first = weights["layer1/conv"][0]
    first[..., 5] *= 100  # the strongest filter of the first layer
    narrow = build_yamnet(dataclasses.replace(full, width_multiplier=0.5))
    widths = {n: layer.weights[0].shape[-1] for n, layer in weighted_layers(narrow).items()}
    cut = narrow_weights(weights, widths)
    for name, kind, _ in conv_layer_names():
        assert cut[name][0].shape == tuple(weighted_layers(narrow)[name].weights[0].shape)
    order = [  # the depthwise layer after it reads exactly the kept channels, in order
        next(c for c in range(32) if np.array_equal(cut["layer1/conv"][0][..., i], first[..., c]))
        for i in range(16)
    ]
    assert order == sorted(order) and 5 in order
    np.testing.assert_array_equal(
        cut["layer2/depthwise_conv"][0], weights["layer2/depthwise_conv"][0][:, :, order, :]
    )
    np.testing.assert_array_equal(cut["layer1/conv/bn"][2], weights["layer1/conv/bn"][2][order])
    with pytest.raises(ModelError, match="layer1/conv: the narrow model wants 64 channels"):
        narrow_weights(weights, {**widths, "layer1/conv": 64})


def test_official_weights_load_into_a_narrow_backbone(yamnet_tflite):
    narrow = build_yamnet(YAMNetConfig(include_head=False, width_multiplier=0.5))
    load_yamnet_weights(narrow, yamnet_tflite)
    kernel = narrow.get_layer("layer14/pointwise_conv").weights[0].numpy()
    assert kernel.shape == (1, 1, 512, 512) and np.abs(kernel).sum() > 0
    outputs = narrow(np.zeros([1, 15600], np.float32))
    assert all(np.all(np.isfinite(v.numpy())) for v in outputs.values())
