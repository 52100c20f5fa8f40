"""Helpers the oracle tests share."""
import numpy as np


def max_err(a, b):
    """max |a - b| in float64; the shapes must match."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a.astype(np.float64) - b)))


def run_ort(model, x):
    """onnxruntime (one thread) on an ONNX ModelProto whose one input is named x: its first output."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def model_frames(model, n, seed=1, batch=None):
    """n seeded normal frames for a model whose input is [T, *frame] (as declared): [n, (batch,) *frame]."""
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    lead = (n,) if batch is None else (n, batch)
    return np.random.default_rng(seed).standard_normal(lead + tuple(dims)).astype(np.float32)


def assert_close(got, want, tol, what=""):
    """Same shape, and max |got - want| <= tol."""
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = float(np.max(np.abs(got - want)))
    assert err <= tol, f"{what}: max abs error {err:.3g} > {tol}"
