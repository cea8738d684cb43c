"""LSTMs exported as one batched input projection and an unrolled recurrence that XNNPACK runs.

The fused UNIDIRECTIONAL_SEQUENCE_LSTM op is not delegated to XNNPACK: the builtin kernel
computes every time step's input-to-gate product ``x_t W`` as a matrix-vector product, one
step after another, on one thread (LEAN's two BiLSTM(128): 0.5 ms per direction at one
thread, more than half of the model: benchmarks/results/latency_profile.md). Only the
recurrent product ``h_{t-1} R`` needs the previous step, so at export time each
``Bidirectional(LSTM)`` / ``LSTM`` layer is replaced by :class:`UnrolledLSTM`, which holds the
same weights and computes the same function as:

- ``G = x W + b`` for all ``T`` steps at once: one FULLY_CONNECTED ``[T, F] x [F, 4U]``;
- per step ``z = G_t + h_{t-1} R`` (FULLY_CONNECTED ``[1, U] x [U, 4U]``, skipped at t = 0),
  gates ``i, f, g, o`` (Keras order), ``c = s(f) c + s(i) tanh(g)``, ``h = s(o) tanh(c)``.

The two directions of a bidirectional layer step together: their states side by side, their
recurrent kernels as one block-diagonal ``[2U, 8U]`` matrix (twice the recurrent
multiplications, half the ops: with ~12 small ops a step, op count is what the time goes on),
the backward direction's projected inputs reversed in time once before the loop and its
outputs once after it.

The steps are ops XNNPACK runs (FULLY_CONNECTED, ADD, SPLIT, LOGISTIC, TANH, MUL; the
steps are cut apart by one UNPACK and put together by one PACK);
the graph stays one subgraph without WHILE (MediaPipe), and the state starts from zero at
every invocation (no variable tensors: every runtime scores a window alike, with or without
``reset_all_variables``). The Keras model and its weights are unchanged; only the exported
graph differs. Under int8 these layers stay float and their weights are stored in int8
afterwards (:func:`lean_kd.export.hybrid.hybridize_weights`): XNNPACK then runs
each product as a dynamically quantized int8 GEMM, as it runs the official YAMNet.
"""

from __future__ import annotations

from typing import Any

import flatbuffers
from ai_edge_litert import schema_py_generated as schema

from lean_kd._keras import keras, tf
from lean_kd.errors import ExportError


class UnrolledLSTM(keras.layers.Layer):
    """An LSTM (or a concat-merged bidirectional pair) computed step by step; export only."""

    def __init__(
        self,
        units: int,
        *,
        features: int,
        bidirectional: bool,
        return_sequences: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units, self.features, self.bidirectional = units, features, bidirectional
        self.return_sequences = return_sequences

    def build(self, input_shape: tf.TensorShape) -> None:
        # the input size comes from the replaced layer: build may be handed a symbolic shape
        features, gates = self.features, 4 * self.units
        self.cells = []
        for direction in ("forward", "backward")[: 1 + self.bidirectional]:
            self.cells.append(
                (
                    self.add_weight(name=f"{direction}/kernel", shape=(features, gates)),
                    self.add_weight(
                        name=f"{direction}/recurrent_kernel", shape=(self.units, gates)
                    ),
                    self.add_weight(name=f"{direction}/bias", shape=(gates,)),
                )
            )
        super().build(input_shape)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        """``[B, T, F]`` -> ``[B, T, U]`` (``[B, T, 2U]``: forward then backward, time-aligned);
        without ``return_sequences`` the last state ``[B, U]`` (``[B, 2U]``, as Keras).

        Both directions step together (one recurrent product per step): the backward
        direction's step ``t`` reads input ``T - 1 - t``, and its outputs are put back in time
        order at the end.
        """
        kernel, recurrent, bias = self._joint_weights()
        projected = tf.tensordot(x, kernel, axes=1) + bias  # [B, T, 4dU]: all steps at once
        if self.bidirectional:
            projected = self._backward_reversed(projected, _gate_mask(self.units, gates=4))
        inputs = tf.unstack(projected, axis=1)  # T x [B, 4dU]: one UNPACK op
        h = c = None
        states = []
        for z in inputs:
            z = z if h is None else z + tf.matmul(h, recurrent)
            i, f, g, o = tf.split(z, 4, axis=-1)  # [B, dU] each: forward then backward units
            candidate = tf.sigmoid(i) * tf.tanh(g)
            c = candidate if c is None else tf.sigmoid(f) * c + candidate
            h = tf.sigmoid(o) * tf.tanh(c)
            states.append(h)
        if not self.return_sequences:
            return h  # both directions' final states: Keras' output without sequences
        outputs = tf.stack(states, axis=1)  # [B, T, dU]: one PACK op
        if self.bidirectional:
            outputs = self._backward_reversed(outputs, _gate_mask(self.units, gates=1))
        return outputs

    def _joint_weights(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Kernel ``[F, 4dU]``, recurrent kernel ``[dU, 4dU]`` and bias ``[4dU]`` of all ``d``
        directions, columns grouped by gate (i, f, g, o) then direction; the recurrent kernel
        is block-diagonal (a direction's state feeds only its own gates)."""
        u, directions = self.units, len(self.cells)
        blocks = [(k, j) for k in range(4) for j in range(directions)]
        kernel = tf.concat([self.cells[j][0][:, k * u : (k + 1) * u] for k, j in blocks], 1)
        bias = tf.concat([self.cells[j][2][k * u : (k + 1) * u] for k, j in blocks], 0)
        rows = [[[j * u, (directions - 1 - j) * u], [0, 0]] for j in range(directions)]
        recurrent = tf.concat(  # direction j's block sits in the rows of its own state
            [tf.pad(self.cells[j][1][:, k * u : (k + 1) * u], rows[j]) for k, j in blocks], 1
        )
        return kernel, recurrent, bias

    @staticmethod
    def _backward_reversed(x: tf.Tensor, forward: tf.Tensor) -> tf.Tensor:
        """``x`` ``[B, T, W]`` with the columns where ``forward`` is 0 reversed in time."""
        return x * forward + tf.reverse(x, axis=[1]) * (1.0 - forward)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "features": self.features,
            "bidirectional": self.bidirectional,
            "return_sequences": self.return_sequences,
        }


# XNNPACK packs a constant weight once per op that reads it (no cache shared between ops), so
# the unrolled recurrence holds T - 1 packed copies of each layer's recurrent kernel. Measured
# at one x86 thread: lean_tiny (1 x BiLSTM(64), 2.5 MB of copies) 0.56 ms for the whole model
# vs 1.27 with the fused op; LEAN (2 x BiLSTM(128), 20 MB) no faster than the fused op and
# 40 MB of memory. "auto" unrolls up to this many bytes of copies.
AUTO_UNROLL_MAX_BYTES = 4 * 1024 * 1024


def packed_copies_bytes(model: keras.Model) -> int:
    """Bytes of int8 recurrent kernels XNNPACK would pack for the unrolled form of ``model``."""
    total = 0
    wrapped = {
        id(m.layer) for m in model.submodules if isinstance(m, keras.layers.Bidirectional)
    } | {
        id(w)
        for m in model.submodules
        if isinstance(m, keras.layers.Bidirectional)
        for w in (m.forward_layer, m.backward_layer)
    }
    for layer in model.submodules:
        lstm, bidirectional = _lstm_of(layer)
        if lstm is not None and id(layer) not in wrapped:
            steps, width = layer.input_shape[1] or 1, (1 + bidirectional) * lstm.units
            total += max(steps - 1, 0) * width * 4 * width
    return total


def resolve_lstm_mode(model: keras.Model, lstm: str) -> str:
    """``lstm`` with "auto" resolved: "unrolled" when the packed copies of the recurrent
    kernels stay within :data:`AUTO_UNROLL_MAX_BYTES`, else "hybrid"."""
    if lstm != "auto":
        return lstm
    return "unrolled" if packed_copies_bytes(model) <= AUTO_UNROLL_MAX_BYTES else "hybrid"


def _gate_mask(units: int, *, gates: int) -> tf.Tensor:
    """``[gates * 2 * units]`` float: 1 on the forward direction's columns, 0 on the backward's."""
    return tf.constant(([1.0] * units + [0.0] * units) * gates)


def unrolled_layer(layer: keras.layers.Layer) -> UnrolledLSTM | None:
    """The :class:`UnrolledLSTM` that replaces ``layer`` (same weights in the same order), or
    None when ``layer`` is no LSTM. Raises ExportError for an LSTM the unrolled form does not
    reproduce (not the fused defaults, a merge mode other than concat, state outputs)."""
    lstm, bidirectional = _lstm_of(layer)
    if lstm is None:
        return None
    _check_unrollable(layer, lstm)
    return UnrolledLSTM(
        lstm.units,
        features=int(layer.input_shape[-1]),
        bidirectional=bidirectional,
        return_sequences=lstm.return_sequences,
        name=layer.name,
    )


def _lstm_of(layer: keras.layers.Layer) -> tuple[Any, bool]:
    if isinstance(layer, keras.layers.Bidirectional) and isinstance(layer.layer, keras.layers.LSTM):
        return layer.forward_layer, True
    if isinstance(layer, keras.layers.LSTM):
        return layer, False
    return None, False


def _check_unrollable(layer: keras.layers.Layer, lstm: keras.layers.LSTM) -> None:
    problems = []
    if lstm.return_state or lstm.go_backwards or lstm.stateful:
        problems.append("no state outputs, go_backwards or stateful")
    if lstm.activation is not keras.activations.tanh:
        problems.append("activation tanh")
    if lstm.recurrent_activation is not keras.activations.sigmoid:
        problems.append("recurrent_activation sigmoid")
    if not lstm.use_bias:
        problems.append("use_bias=True")
    if isinstance(layer, keras.layers.Bidirectional) and layer.merge_mode != "concat":
        problems.append("merge_mode 'concat'")
    if problems:
        raise ExportError(
            f"LSTM layer {layer.name!r} cannot be exported unrolled; it needs "
            f"{', '.join(problems)} (export it with lstm='hybrid')"
        )


def shorten_names(model: bytes, names: set[str]) -> bytes:
    """``model`` with the tensors named in ``names`` renamed ``u0, u1, ...``.

    An unrolled LSTM has ~700 tensors per direction, and the converter names each after every
    TF op fused into it (~130 bytes a name: 0.39 MB for LEAN's Wave Encoder); the names serve
    no runtime. The model's input and output tensors keep theirs.
    """
    unpacked = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    graph = unpacked.subgraphs[0]
    kept = set(graph.inputs) | set(graph.outputs)
    count = 0
    for index, tensor in enumerate(graph.tensors):
        name = tensor.name.decode() if isinstance(tensor.name, bytes) else tensor.name
        if index not in kept and name in names:
            tensor.name, count = f"u{count}", count + 1
    builder = flatbuffers.Builder(len(model))
    builder.Finish(unpacked.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
