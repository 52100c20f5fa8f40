"""Seed checks: each unmutated seed, stepped in the checked worker, against the format's own
runtime (onnxruntime, LiteRT) and the outputs its exporter recorded: the harness steps
correctly, so what the mutants do is the importers' doing."""
import numpy as np

from .seeds import SEEDS
from .session import STARTUP_TIMEOUT, session
from .tflite_mutations import tflite_schema


def seed_outputs(sess, seed):
    """The checked worker's first output for each of the seed's frames, one step per frame."""
    sess.worker.ensure([seed.path])
    out = sess.dir / f"check-{seed.path.stem}.npy"
    f, key = seed.frames
    reply = sess.worker.call({"op": "check", "id": f"check-{seed.name}", "path": str(seed.path), "frames": str(f),
                              "key": key, "out": str(out)}, timeout=STARTUP_TIMEOUT)
    if reply.get("kind") != "ran":
        raise AssertionError(f"{seed.name}: the unmutated seed did not step in the worker: {reply}")
    return np.load(out)


def onnxruntime_outputs(seed, frames):
    """onnxruntime on the seed: the whole sequence at once when its time axis is free, else
    chunks of the length the exporter baked in, carrying state inputs (h0, c0) from the
    matching outputs (hT, cT); a stateless fixed-length file only for its first chunk."""
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    so.log_severity_level = 3
    s = ort.InferenceSession(str(seed.path), so, providers=["CPUExecutionProvider"])
    ins, outs = s.get_inputs(), s.get_outputs()
    if seed.step:         # one call per frame; outputs 1.. are the state inputs 1.. of the next call
        state = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32) for i in ins[1:]}
        ys = []
        for f in frames:
            r = s.run(None, {ins[0].name: np.ascontiguousarray(f[None], np.float32), **state})
            ys.append(r[0][0])
            state = {i.name: v for i, v in zip(ins[1:], r[1:])}
        return np.stack(ys)
    t_axis = 1 if seed.batch_first else 0
    chunk = next((v.shape[t_axis] for v in (ins[0], outs[0]) if isinstance(v.shape[t_axis], int)), None)
    state = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32) for i in ins[1:]}
    if chunk is not None and not state:
        frames = frames[:chunk]
    chunk = chunk or len(frames)
    ys = []
    for k in range(0, len(frames) - len(frames) % chunk, chunk):
        x = frames[k:k + chunk]
        x = x[None] if seed.batch_first else x[:, None]
        r = s.run(None, {ins[0].name: np.ascontiguousarray(x, np.float32), **state})
        ys.append(r[0][0] if seed.batch_first else r[0][:, 0])
        state = {i.name: v for i, v in zip(ins[1:], r[1:])}
    return np.concatenate(ys)


def litert_outputs(seed, frames):
    """LiteRT on the whole sequence [1, T, F] in one invoke, from a zero state."""
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(seed.path), num_threads=1)
    x = next(d for d in it.get_input_details() if len(d["shape"]) == 3)
    it.resize_tensor_input(x["index"], [1, len(frames), frames.shape[1]])
    it.allocate_tensors()
    for d in it.get_input_details():
        if d["index"] != x["index"]:
            it.set_tensor(d["index"], np.zeros(d["shape"], np.float32))
    it.set_tensor(x["index"], np.ascontiguousarray(frames[None], np.float32))
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])[0]


def runtime_tolerance(seed, frames):
    """1e-5 for float files (tests/test_ort_parity.py, tests/test_tflite.py). The dynamic-range
    file: LiteRT quantises x and h on the fly (steps max|x|/127 and 1/127) and edgernn does not,
    so |dy| <= sum_k |W_head[:, k]| * (1/127 + max|x|/127) (tests/test_tflite.py's per-frame
    bound, summed over the hidden units) plus 1e-5."""
    if "dynrange" not in seed.name:
        return 1e-5
    s = tflite_schema()
    m = s.ModelT.InitFromPackedBuf(seed.path.read_bytes(), 0)
    g = m.subgraphs[0]
    fc = next(op for op in g.operators
              if m.operatorCodes[op.opcodeIndex].builtinCode == s.BuiltinOperator.FULLY_CONNECTED)
    t = g.tensors[fc.inputs[1]]
    raw = np.asarray(m.buffers[t.buffer].data, np.uint8).tobytes()
    w = np.frombuffer(raw, np.int8).reshape(t.shape) * np.asarray(t.quantization.scale)[:, None] \
        if t.type == s.TensorType.INT8 else np.frombuffer(raw, np.float32).reshape(t.shape)
    return float(np.abs(w).sum(axis=1).max() * (1 / 127 + np.abs(frames).max() / 127) + 1e-5)


def check_seeds(fmt, sess=None):
    """Each unmutated seed stepped in the checked worker against the format's own runtime and
    against the outputs its exporter recorded: [{seed, frames, runtime, err_runtime, tol, ...}]."""
    sess = sess or session()
    rows = []
    for seed in SEEDS[fmt]:
        frames = seed.load_frames().astype(np.float32)
        y = seed_outputs(sess, seed)
        ref = onnxruntime_outputs(seed, frames) if fmt == "onnx" else litert_outputs(seed, frames)
        rec = seed.load_recorded()
        tol = runtime_tolerance(seed, frames)
        err = float(np.abs(y[:len(ref)] - ref).max())
        rows.append({"seed": seed.name, "frames": len(frames), "runtime": "onnxruntime" if fmt == "onnx" else "LiteRT",
                     "runtime_frames": len(ref), "err_runtime": err, "tol": tol, "ok": err <= tol,
                     "err_recorded": float(np.abs(y - rec.reshape(y.shape)).max())})
    return rows
