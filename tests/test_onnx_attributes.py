"""Recurrent-op attributes and per-frame plumbing on small hand-built ONNX graphs.

Oracle: onnxruntime (CPU, one thread) running each model on the whole 30-frame sequence.
edgernn streams the same model one ``step`` per frame; every output must agree to 1e-5 max
abs (per-frame outputs frame by frame; Y_h / Y_c against the last step's output).

Models: one LSTM / GRU / RNN node (input size 5, hidden 7, batch 1, T=30, opset 17) with
W/R/B(/P, initial_h, initial_c) initializers drawn from a fixed seed, covering peepholes,
clip, input_forget, layout=1, constant initial state, explicit activations with
activation_alpha/beta, linear_before_reset; and an LSTM followed by MatMul+Add, Gemm
(transB=1), Softmax, LogSoftmax, LayerNormalization, Sigmoid and Sub/Mul/Div with constants.
Combinations ORT itself rejects are skipped quoting ORT's error.
"""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import edgernn

OPSET = 17
I, H, T = 5, 7, 30
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
STATE_OUTPUTS = ("Y_h", "Y_c")
TOL = 1e-5


def _init(name, arr):
    return numpy_helper.from_array(np.asarray(arr, np.float32), name)


def recurrent_model(op, attrs=None, *, peepholes=False, initial_state=False, bias=True,
                    seq_len=None, seed=0, scale=0.5, opset=OPSET):
    """One forward LSTM/GRU/RNN node with constant weights; outputs Y, Y_h (, Y_c).

    seq_len: a constant sequence_lens (frames after it: Y = 0, the state holds)."""
    attrs = dict(attrs or {})
    layout = attrs.get("layout", 0)
    rng = np.random.default_rng(seed)
    G = GATES[op]
    inits = [_init("W", scale * rng.standard_normal((1, G * H, I))),
             _init("R", scale * rng.standard_normal((1, G * H, H))),
             _init("B", 0.5 * scale * rng.standard_normal((1, 2 * G * H)))]
    inputs = ["X", "W", "R", "B", "", "", "", ""]
    if not bias:
        inits.pop()
        inputs[3] = ""
    if seq_len is not None:
        inits.append(numpy_helper.from_array(np.array([seq_len], np.int32), "sequence_lens"))
        inputs[4] = "sequence_lens"
    if initial_state:
        inits.append(_init("initial_h", 0.8 * rng.uniform(-1, 1, (1, 1, H))))
        inputs[5] = "initial_h"
        if op == "LSTM":
            inits.append(_init("initial_c", 1.5 * rng.uniform(-1, 1, (1, 1, H))))
            inputs[6] = "initial_c"
    if peepholes:
        inits.append(_init("P", rng.uniform(-1, 1, (1, 3 * H))))
        inputs[7] = "P"
    while inputs and not inputs[-1]:
        inputs.pop()
    outs = ["Y", "Y_h", "Y_c"] if op == "LSTM" else ["Y", "Y_h"]
    node = helper.make_node(op, inputs, outs, hidden_size=H, **attrs)
    x_shape = [T, 1, I] if layout == 0 else [1, T, I]
    y_shape = [T, 1, 1, H] if layout == 0 else [1, T, 1, H]
    graph = helper.make_graph(
        [node], f"{op.lower()}_attrs", [helper.make_tensor_value_info("X", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, y_shape)]
        + [helper.make_tensor_value_info(o, TensorProto.FLOAT, [1, 1, H]) for o in outs[1:]],
        initializer=inits)
    # IR version 10 (opset 21 era): this onnxruntime reads at most the IR version it was built
    # for, older than what this onnx writes by default
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=10)
    onnx.checker.check_model(model)
    return model


def frames_for(model, seed=1):
    """(X as ORT takes it, X as (T, I) frames)."""
    frames = np.random.default_rng(seed).standard_normal((T, I)).astype(np.float32)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = frames[:, None] if dims[0] == T else frames[None]
    return np.ascontiguousarray(x), frames


def run_ort(model, x, allow_skip=False):
    """{output name: array} from onnxruntime; with allow_skip, skip quoting ORT's refusal."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
        outs = sess.run(None, {sess.get_inputs()[0].name: x})
    except Exception as e:  # noqa: BLE001 - ORT raises its own pybind exception types
        if not allow_skip:
            raise
        msg = str(e).strip().splitlines()[-1][:300]
        pytest.skip(f"onnxruntime rejects this model: {type(e).__name__}: {msg}")
    return dict(zip([o.name for o in sess.get_outputs()], outs))


def run_edgernn(model, frames):
    """{output name: (T, *frame_shape)}, stepping one frame at a time."""
    m = edgernn.load(model)
    s = m.stream()
    names = [o.name for o in m.outputs]
    got = {n: [] for n in names}
    for f in frames:
        y = s.step(f)
        for n, a in zip(names, y if isinstance(y, tuple) else (y,)):
            got[n].append(a)
    return {n: np.stack(v) for n, v in got.items()}


def compare(model, seed=1, allow_skip=False, oracle=None):
    """Check edgernn on `model` against ORT on every graph output; returns ORT's outputs.

    oracle: an equivalent model for ORT to run instead (same outputs, e.g. a layout-0 twin)."""
    x, frames = frames_for(oracle or model, seed)
    want = run_ort(oracle or model, x, allow_skip)
    got = run_edgernn(model, frames)
    assert set(got) == set(want), (sorted(got), sorted(want))
    for name, w in want.items():
        g = got[name]
        if name in STATE_OUTPUTS:      # final state: the last step's output
            g, w = g[-1].reshape(-1), w.reshape(-1)
        else:                           # per frame; batch 1 so T is the only non-unit lead
            g, w = g.reshape(T, -1), w.reshape(T, -1)
        err = float(np.max(np.abs(g - w)))
        assert err <= TOL, f"{name}: max abs error {err:.3g} > {TOL}"
    return want


# ---------------------------------------------------------------- recurrent attributes
CASES = {
    # LSTM
    "lstm_default": ("LSTM", {}, {}),
    "lstm_peepholes": ("LSTM", {}, {"peepholes": True}),
    "lstm_clip": ("LSTM", {"clip": 0.5}, {}),
    "lstm_clip_peepholes": ("LSTM", {"clip": 0.5}, {"peepholes": True}),
    "lstm_input_forget": ("LSTM", {"input_forget": 1}, {}),
    "lstm_layout1": ("LSTM", {"layout": 1}, {}),
    "lstm_layout1_initial_state": ("LSTM", {"layout": 1}, {"initial_state": True}),
    "lstm_initial_state": ("LSTM", {}, {"initial_state": True}),
    "lstm_no_bias": ("LSTM", {}, {"bias": False}),
    "lstm_seq_lens": ("LSTM", {}, {"seq_len": 19, "peepholes": True}),
    "lstm_opset21": ("LSTM", {"input_forget": 1}, {"peepholes": True, "opset": 21}),
    "lstm_acts_hardsigmoid": ("LSTM", {"activations": ["HardSigmoid", "Tanh", "Tanh"],
                                       "activation_alpha": [0.3], "activation_beta": [0.6]}, {}),
    "lstm_acts_softsign": ("LSTM", {"activations": ["Sigmoid", "Softsign", "Tanh"]}, {}),
    "lstm_acts_alpha_order": ("LSTM", {"activations": ["HardSigmoid", "ScaledTanh", "Affine"],
                                       "activation_alpha": [0.25, 1.3, 0.7],
                                       "activation_beta": [0.55, 0.8, 0.1]}, {}),
    "lstm_acts_relu_family": ("LSTM", {"activations": ["Sigmoid", "LeakyRelu", "Elu"],
                                       "activation_alpha": [0.05, 0.9]}, {}),
    "lstm_acts_softplus_thresholded": ("LSTM", {"activations": ["Sigmoid", "Softplus", "ThresholdedRelu"],
                                                "activation_alpha": [0.2]}, {}),
    # GRU
    "gru_lbr0": ("GRU", {"linear_before_reset": 0}, {}),
    "gru_lbr1": ("GRU", {"linear_before_reset": 1}, {}),
    "gru_acts_hardsigmoid_softsign": ("GRU", {"activations": ["HardSigmoid", "Softsign"],
                                              "activation_alpha": [0.3], "activation_beta": [0.45]}, {}),
    "gru_acts_scaledtanh_lbr1": ("GRU", {"activations": ["Sigmoid", "ScaledTanh"], "linear_before_reset": 1,
                                         "activation_alpha": [1.2], "activation_beta": [0.7]}, {}),
    "gru_clip_lbr0": ("GRU", {"clip": 0.5}, {}),
    "gru_clip_lbr1": ("GRU", {"clip": 0.5, "linear_before_reset": 1}, {}),
    "gru_layout1_initial_state": ("GRU", {"layout": 1, "linear_before_reset": 1}, {"initial_state": True}),
    "gru_initial_state_lbr0": ("GRU", {}, {"initial_state": True}),
    "gru_seq_lens": ("GRU", {"linear_before_reset": 1}, {"seq_len": 23, "initial_state": True}),
    "gru_no_bias": ("GRU", {}, {"bias": False}),
    # RNN
    "rnn_tanh": ("RNN", {"activations": ["Tanh"]}, {}),
    "rnn_relu": ("RNN", {"activations": ["Relu"]}, {"scale": 0.3}),
    "rnn_clip": ("RNN", {"clip": 0.5}, {}),
    "rnn_leakyrelu": ("RNN", {"activations": ["LeakyRelu"], "activation_alpha": [0.1]}, {"scale": 0.3}),
    "rnn_initial_state_layout1": ("RNN", {"layout": 1}, {"initial_state": True}),
    "rnn_seq_lens": ("RNN", {"activations": ["Relu"]}, {"seq_len": 11, "scale": 0.3}),
    "rnn_affine": ("RNN", {"activations": ["Affine"], "activation_alpha": [0.5],
                           "activation_beta": [0.2]}, {"scale": 0.3}),
}

BASELINE = {"lstm_default", "gru_lbr0", "gru_lbr1", "rnn_tanh"}

@pytest.mark.parametrize("name", list(CASES))
def test_recurrent_attributes_match_onnxruntime(name):
    op, attrs, kw = CASES[name]
    # ORT may refuse an exotic attribute combination (skip); the plain ops must always run
    compare(recurrent_model(op, attrs, **kw), allow_skip=name not in BASELINE)


LAYOUT1 = [n for n, (_, attrs, _) in CASES.items() if attrs.get("layout") == 1]


@pytest.mark.parametrize("name", LAYOUT1)
def test_layout1_matches_onnxruntime_on_layout0_twin(name):
    """ORT's CPU kernels refuse layout=1 (so the case above skips); layout only moves the
    batch axis of X/Y/Y_h, so ORT runs the same weights with layout=0 as the oracle."""
    op, attrs, kw = CASES[name]
    twin = recurrent_model(op, {**attrs, "layout": 0}, **kw)
    compare(recurrent_model(op, attrs, **kw), oracle=twin)


# Activation parameters left out of activation_alpha/beta. The spec: "Default values are the
# same as of corresponding ONNX operators"; edgernn follows it (ScaledTanh has no ONNX default:
# edgernn takes 1, 1). onnxruntime 1.31 instead uses alpha = beta = 0 for Affine, ScaledTanh and
# ThresholdedRelu, so ORT is fed the defaults explicitly and stays the oracle.
#   activation -> (op, activations, weight scale, alpha, beta)
DEFAULTS = {
    "Affine": ("LSTM", ["Sigmoid", "Affine", "Tanh"], 0.5, [1.0], [0.0]),
    "ScaledTanh": ("LSTM", ["Sigmoid", "ScaledTanh", "Tanh"], 0.5, [1.0], [1.0]),
    "HardSigmoid": ("LSTM", ["HardSigmoid", "Tanh", "Tanh"], 0.5, [0.2], [0.5]),
    "ThresholdedRelu": ("RNN", ["ThresholdedRelu"], 0.3, [1.0], []),
    "LeakyRelu": ("RNN", ["LeakyRelu"], 0.3, [0.01], []),
    "Elu": ("RNN", ["Elu"], 0.3, [1.0], []),
}


@pytest.mark.parametrize("act", sorted(DEFAULTS))
def test_activation_defaults_are_the_onnx_operator_defaults(act):
    op, acts, scale, alpha, beta = DEFAULTS[act]
    explicit = {"activations": acts, "activation_alpha": alpha}
    if beta:
        explicit["activation_beta"] = beta
    compare(recurrent_model(op, {"activations": acts}, scale=scale),
            oracle=recurrent_model(op, explicit, scale=scale))


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_clip_binds(op):
    """The clip cases above are meaningful: clip=0.5 changes ORT's outputs."""
    x, _ = frames_for(recurrent_model(op))
    plain = run_ort(recurrent_model(op), x)["Y"]
    clipped = run_ort(recurrent_model(op, {"clip": 0.5}), x)["Y"]
    assert np.max(np.abs(plain - clipped)) > 1e-2


# ---------------------------------------------------------------- per-frame plumbing
def plumbing_model(seed=3):
    """LSTM -> Squeeze -> (MatMul+Add -> Softmax), (Reshape -> Gemm(transB) -> LogSoftmax),
    (LayerNormalization -> Sigmoid -> Sub/Mul/Div/Add with constants on either side)."""
    base = recurrent_model("LSTM", seed=seed)
    g = base.graph
    rng = np.random.default_rng(seed + 100)
    O = 6
    g.initializer.extend([
        _init("W1", rng.standard_normal((H, O))), _init("b1", rng.standard_normal(O)),
        _init("W2", rng.standard_normal((O, H))), _init("b2", rng.standard_normal(O)),
        _init("ln_scale", rng.uniform(0.5, 1.5, H)), _init("ln_bias", 0.1 * rng.standard_normal(H)),
        _init("k_sub", rng.standard_normal(H)), _init("k_div", rng.uniform(1.0, 2.0, (1, H))),
        numpy_helper.from_array(np.array([1], np.int64), "sq_axes"),
        numpy_helper.from_array(np.array([-1, H], np.int64), "flat_shape"),
    ])
    g.node.extend([
        helper.make_node("Squeeze", ["Y", "sq_axes"], ["S"]),                     # (T, 1, H)
        helper.make_node("MatMul", ["S", "W1"], ["mm"]),
        helper.make_node("Add", ["mm", "b1"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        helper.make_node("Reshape", ["S", "flat_shape"], ["flat"]),              # (T, H)
        helper.make_node("Gemm", ["flat", "W2", "b2"], ["gemm"], transB=1, alpha=0.9, beta=1.1),
        helper.make_node("LogSoftmax", ["gemm"], ["logprobs"], axis=-1),
        helper.make_node("LayerNormalization", ["S", "ln_scale", "ln_bias"], ["ln"], axis=-1, epsilon=1e-5),
        helper.make_node("Sigmoid", ["ln"], ["sig"]),
        helper.make_node("Constant", [], ["k_mul"], value_float=2.5),
        helper.make_node("Sub", ["k_sub", "sig"], ["sub"]),                       # const - x
        helper.make_node("Mul", ["sub", "k_mul"], ["mul"]),
        helper.make_node("Div", ["mul", "k_div"], ["scaled"]),
        helper.make_node("Add", ["sig", "k_mul"], ["shifted"]),
        helper.make_node("Div", ["k_div", "shifted"], ["recip"]),               # const / x
    ])
    del g.output[:]
    g.output.extend([
        helper.make_tensor_value_info("probs", TensorProto.FLOAT, [T, 1, O]),
        helper.make_tensor_value_info("logprobs", TensorProto.FLOAT, [T, O]),
        helper.make_tensor_value_info("scaled", TensorProto.FLOAT, [T, 1, H]),
        helper.make_tensor_value_info("recip", TensorProto.FLOAT, [T, 1, H]),
        helper.make_tensor_value_info("Y_c", TensorProto.FLOAT, [1, 1, H]),
    ])
    onnx.checker.check_model(base)
    return base


def test_plumbing_after_lstm_matches_onnxruntime():
    model = plumbing_model()
    m = edgernn.load(model)
    assert [o.name for o in m.outputs] == ["probs", "logprobs", "scaled", "recip", "Y_c"]
    assert [o.frame_shape for o in m.outputs] == [(6,), (6,), (H,), (H,), (1, H)]
    want = compare(model)
    assert np.allclose(want["probs"].sum(-1), 1.0, atol=1e-5)
