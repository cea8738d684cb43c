"""Distillation losses against numpy references written independently of the implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lean_kd._keras import tf
from lean_kd.distill import losses
from lean_kd.distill.losses import build_loss
from lean_kd.errors import ConfigError, DataError, ModelError

B, C, D_S, D_T = 6, 5, 4, 9


# ---- numpy references (float64, written from the formulas in the papers) ----
def np_log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def np_sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def np_ce(y: np.ndarray, z: np.ndarray) -> float:
    return float(np.mean(-(y * np_log_softmax(z)).sum(axis=1)))


def np_bce(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def np_hinton(y, z_s, z_t, temperature, lam) -> tuple[float, float]:
    p_t = np.exp(np_log_softmax(z_t / temperature))
    kl = np.sum(p_t * (np.log(p_t) - np_log_softmax(z_s / temperature)), axis=1)
    return np_ce(y, z_s), lam * temperature**2 * float(np.mean(kl))


def np_multilabel(y, z_s, z_t, temperature, lam) -> tuple[float, float]:
    q = np_sigmoid(z_t / temperature)
    p = np_sigmoid(z_s / temperature)
    kl = q * np.log(q / p) + (1 - q) * np.log((1 - q) / (1 - p))
    return (1 - lam) * np_bce(y, np_sigmoid(z_s)), lam * float(np.mean(kl))


def np_pkt(e_s: np.ndarray, e_t: np.ndarray, eps: float = 1e-7) -> float:
    def conditional(e: np.ndarray) -> np.ndarray:
        n = len(e)
        p = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                cos = e[i] @ e[j] / ((np.linalg.norm(e[i]) + eps) * (np.linalg.norm(e[j]) + eps))
                p[i, j] = (cos + 1) / 2
            p[i] /= p[i].sum()
        return p

    p_s, p_t = conditional(e_s), conditional(e_t)
    n = len(e_s)
    rows = [
        sum(p_t[i, j] * np.log((p_t[i, j] + eps) / (p_s[i, j] + eps)) for j in range(n))
        for i in range(n)
    ]
    return float(np.mean(rows))


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    soft = rng.dirichlet(np.ones(C), size=B)  # mixup-like soft labels
    return {
        "y_soft": soft,
        "y_multi": (rng.random((B, C)) < 0.4).astype(np.float64),
        "student": {"logits": rng.normal(size=(B, C)) * 2, "embeddings": rng.normal(size=(B, D_S))},
        "teacher": {"logits": rng.normal(size=(B, C)) * 3, "embeddings": rng.normal(size=(B, D_T))},
    }


def _tf(outputs: dict) -> dict:
    return {key: tf.constant(value, tf.float32) for key, value in outputs.items()}


def _terms(loss, y, student, teacher) -> dict[str, float]:
    teacher_tf = None if teacher is None else _tf(teacher)
    terms = loss.terms(tf.constant(y, tf.float32), _tf(student), teacher_tf)
    return {key: float(value) for key, value in terms.items()}


@pytest.mark.parametrize(
    "name, labels, reference, names",
    [
        ("hinton_kd", "y_soft", np_hinton, ("ce", "kd")),
        ("multilabel_kd", "y_multi", np_multilabel, ("bce", "kd")),
    ],
)
def test_kd_losses_match_numpy(batch, name, labels, reference, names) -> None:
    loss = build_loss({"name": name, "temperature": 3, "lambda": 0.3})
    y, student, teacher = batch[labels], batch["student"], batch["teacher"]
    terms = _terms(loss, y, student, teacher)
    expected = dict(zip(names, reference(y, student["logits"], teacher["logits"], 3.0, 0.3)))
    assert terms == pytest.approx(expected, rel=1e-5)
    total = loss(tf.constant(y), _tf(student), _tf(teacher))
    assert float(total) == pytest.approx(sum(expected.values()), rel=1e-5)
    assert expected["kd"] > 0.01


def test_kd_without_labels_is_the_kl_alone_and_ignores_them(batch) -> None:
    """label_weight 0 (function matching): the label term is 0 and the gradient is the same
    whatever the labels; 0.5 halves the label term and keeps the KL."""
    student, teacher = batch["student"], batch["teacher"]
    full = _terms(
        build_loss({"name": "hinton_kd", "temperature": 2}), batch["y_soft"], student, teacher
    )
    half = build_loss({"name": "hinton_kd", "temperature": 2, "label_weight": 0.5})
    assert _terms(half, batch["y_soft"], student, teacher) == pytest.approx(
        {"ce": full["ce"] / 2, "kd": full["kd"]}, rel=1e-6
    )
    no_labels = build_loss({"name": "hinton_kd", "temperature": 2, "label_weight": 0})
    gradients = []
    for y in (batch["y_soft"], np.roll(batch["y_soft"], 1, axis=1)):
        logits = tf.Variable(student["logits"], dtype=tf.float32)
        with tf.GradientTape() as tape:
            total = no_labels(tf.constant(y, tf.float32), {"logits": logits}, _tf(teacher))
        gradients.append(tape.gradient(total, logits).numpy())
        assert float(total) == pytest.approx(full["kd"], rel=1e-5)
    np.testing.assert_array_equal(gradients[0], gradients[1])
    assert np.abs(gradients[0]).max() > 1e-4


def test_plain_ce_and_bce_match_numpy(batch) -> None:
    s = batch["student"]
    ce = _terms(build_loss({"name": "ce"}), batch["y_soft"], s, None)
    assert ce == pytest.approx({"ce": np_ce(batch["y_soft"], s["logits"])}, rel=1e-5)
    bce = _terms(build_loss({"name": "bce"}), batch["y_multi"], s, None)
    expected = np_bce(batch["y_multi"], np_sigmoid(s["logits"]))
    assert bce == pytest.approx({"bce": expected}, rel=1e-5)
    assert not build_loss({"name": "ce"}).needs_teacher


def test_pkt_matches_numpy_with_different_embedding_sizes(batch) -> None:
    value = _terms(build_loss({"name": "pkt"}), batch["y_soft"], batch["student"], batch["teacher"])
    expected = np_pkt(batch["student"]["embeddings"], batch["teacher"]["embeddings"])
    assert value == pytest.approx({"pkt": expected}, rel=1e-4)
    assert expected > 1e-3


def test_pkt_zero_for_equal_similarities_and_scale_invariant(batch) -> None:
    pkt = build_loss({"name": "pkt"})
    e_s = batch["student"]["embeddings"]
    same = _terms(pkt, batch["y_soft"], {"embeddings": e_s}, {"embeddings": e_s})["pkt"]
    assert same == pytest.approx(0.0, abs=1e-7)
    # A wider teacher that is an isometry of the student keeps every cosine similarity.
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(D_T, D_S)))  # [D_T, D_S], q^T q = I
    rotated = _terms(pkt, batch["y_soft"], {"embeddings": e_s}, {"embeddings": e_s @ q.T})["pkt"]
    assert rotated == pytest.approx(0.0, abs=1e-6)
    teacher = batch["teacher"]
    base = _terms(pkt, batch["y_soft"], {"embeddings": e_s}, teacher)["pkt"]
    scaled = _terms(pkt, batch["y_soft"], {"embeddings": 250.0 * e_s}, teacher)["pkt"]
    assert base > 1e-3
    assert scaled == pytest.approx(base, rel=1e-5)


def test_kd_terms_vanish_when_student_equals_teacher(batch) -> None:
    student = batch["student"]
    for name, y in (("hinton_kd", batch["y_soft"]), ("multilabel_kd", batch["y_multi"])):
        terms = _terms(build_loss({"name": name, "temperature": 2.5}), y, student, student)
        assert terms["kd"] == pytest.approx(0.0, abs=1e-6), name


def test_weighted_sum_from_yaml_list(batch) -> None:
    import yaml

    spec = yaml.safe_load(
        """
        - {name: hinton_kd, weight: 1.0, temperature: 4, lambda: 0.5}
        - {name: pkt, weight: 2.0}
        - {name: ce, weight: 0.5}
        """
    )
    loss = build_loss(spec)
    assert loss.term_names == ("ce", "kd", "pkt", "ce_1")
    assert loss.needs_teacher
    terms = _terms(loss, batch["y_soft"], batch["student"], batch["teacher"])
    z_s, z_t = batch["student"]["logits"], batch["teacher"]["logits"]
    ce, kd = np_hinton(batch["y_soft"], z_s, z_t, 4.0, 0.5)
    pkt = np_pkt(batch["student"]["embeddings"], batch["teacher"]["embeddings"])
    assert terms == pytest.approx({"ce": ce, "kd": kd, "pkt": 2 * pkt, "ce_1": 0.5 * ce}, rel=1e-4)
    total = loss(tf.constant(batch["y_soft"]), _tf(batch["student"]), _tf(batch["teacher"]))
    assert float(total) == pytest.approx(1.5 * ce + kd + 2 * pkt, rel=1e-4)
    assert build_loss(loss.to_spec()) == loss
    assert build_loss({"name": "weighted_sum", "losses": spec}) == loss
    single = build_loss({"name": "pkt", "weight": 3.0})
    assert isinstance(single, losses.WeightedSum) and single.weights == (3.0,)
    assert build_loss({"name": "hinton_kd"}) == losses.HintonKD(temperature=4.0, lambda_=1.0)


def test_gradients_are_finite_for_extreme_inputs_and_zero_embeddings() -> None:
    rng = np.random.default_rng(2)
    logits = tf.Variable(rng.normal(size=(B, C)) * 40, dtype=tf.float32)
    embeddings_np = rng.normal(size=(B, D_S))
    embeddings_np[0] = 0.0  # e.g. a ReLU embedding of silence
    embeddings = tf.Variable(embeddings_np, dtype=tf.float32)
    teacher = _tf({"logits": rng.normal(size=(B, C)) * 40, "embeddings": rng.normal(size=(B, D_T))})
    y = tf.constant(np.eye(C)[rng.integers(0, C, size=B)], tf.float32)
    names = ["multilabel_kd", "pkt", "ce", "bce"]
    spec = [{"name": "hinton_kd", "temperature": 0.5}, *({"name": name} for name in names)]
    loss = build_loss(spec)
    with tf.GradientTape() as tape:
        value = loss(y, {"logits": logits, "embeddings": embeddings}, teacher)
    grads = tape.gradient(value, [logits, embeddings])
    assert math.isfinite(float(value))
    for grad in grads:
        assert grad is not None and np.all(np.isfinite(grad.numpy()))
    assert float(tf.reduce_max(tf.abs(grads[1]))) > 0


def test_losses_run_in_graph_mode_with_float16_outputs(batch) -> None:
    loss = build_loss([{"name": "hinton_kd"}, {"name": "pkt"}])
    eager = loss(tf.constant(batch["y_soft"]), _tf(batch["student"]), _tf(batch["teacher"]))

    @tf.function
    def compiled(y, student, teacher):
        return loss(y, student, teacher)

    half = {k: tf.cast(v, tf.float16) for k, v in _tf(batch["student"]).items()}
    graph = compiled(tf.constant(batch["y_soft"]), half, _tf(batch["teacher"]))
    assert graph.dtype == tf.float32
    assert float(graph) == pytest.approx(float(eager), rel=1e-2)


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"name": "hinton"},
            "Unknown loss 'hinton'; valid losses: bce, ce, hinton_kd, multilabel_kd, pkt, "
            "weighted_sum",
        ),
        ({"temperature": 2}, "Unknown loss None"),
        (
            {"name": "hinton_kd", "temp": 2},
            r"Unknown option\(s\) \['temp'\] for loss 'hinton_kd'; "
            r"valid options: \['label_weight', 'lambda', 'name', 'temperature', 'weight'\]",
        ),
        ({"name": "ce", "temperature": 2}, r"valid options: \['name', 'weight'\]"),
        ({"name": "hinton_kd", "temperature": 0}, r"temperature must be .* \(0.0, inf\], got 0"),
        ({"name": "hinton_kd", "lambda": -1}, "lambda must be a number in"),
        ({"name": "hinton_kd", "lambda": "0.5"}, "got '0.5'"),
        ({"name": "hinton_kd", "label_weight": -0.5}, "label_weight must be a number in"),
        ({"name": "multilabel_kd", "lambda": 1.5}, r"lambda must be a number in \[0.0, 1.0\]"),
        ({"name": "pkt", "eps": True}, "eps must be a number"),
        ({"name": "pkt", "weight": -2}, "weight must be a finite number >= 0, got -2"),
        ({"name": "pkt", "weight": "heavy"}, "weight must be"),
        (
            {"name": "weighted_sum", "losses": [{"name": "ce"}], "extra": 1},
            r"Unknown option\(s\) \['extra'\] for loss 'weighted_sum'",
        ),
        ([], "at least one loss"),
        (["pkt"], "Expected a loss entry as a mapping"),
        ("pkt", "Expected a loss as a mapping or a list"),
    ],
)
def test_bad_configs_raise_config_error(spec, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_loss(spec)


def test_registering_a_name_twice_is_an_error() -> None:
    with pytest.raises(ConfigError, match="'pkt' is already registered"):
        losses.register_loss("pkt")(losses.PKT)


def test_bad_outputs_raise_clear_errors(batch) -> None:
    y = tf.constant(batch["y_soft"], tf.float32)
    student, teacher = _tf(batch["student"]), _tf(batch["teacher"])
    kd = build_loss({"name": "hinton_kd"})
    with pytest.raises(ConfigError, match="'hinton_kd' needs teacher outputs"):
        kd(y, student, None)
    wider = {**teacher, "logits": tf.zeros((B, C + 1))}
    with pytest.raises(ModelError, match="must have the same classes"):
        kd(y, student, wider)
    with pytest.raises(DataError, match="Expected labels of shape"):
        kd(tf.zeros((B, C + 1)), student, teacher)
    with pytest.raises(ModelError, match=r"dict with 'embeddings', got \['logits'\]"):
        build_loss({"name": "pkt"})(y, student, {"logits": teacher["logits"]})
    with pytest.raises(ModelError, match=r"embeddings of shape \[B, N\]"):
        build_loss({"name": "pkt"})(y, {"embeddings": tf.zeros((B, 3, D_S))}, teacher)
    with pytest.raises(ModelError, match="different batch sizes"):
        build_loss({"name": "pkt"})(y, {"embeddings": tf.zeros((B + 1, D_S))}, teacher)
