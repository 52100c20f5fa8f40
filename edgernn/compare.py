"""The same model and frames in ONNX Runtime and LiteRT, timed call by call.

Each runner returns a dict: runtime, mode (what exactly was run), per-call latencies in ns,
and outputs to check against edgernn's. Both runtimes are imported lazily; when one is not
installed or the model's format does not allow it, the runner returns ``skipped`` with the
reason instead of raising.

State: edgernn keeps the state inside the stream. ONNX Runtime and LiteRT are stateless per
call except through the graph: when the ONNX graph has state inputs and outputs (``h0 -> hT``)
the runner feeds each call's state outputs back as the next call's inputs, which is the same
computation. When the state is implicit (an LSTM without initial_h input), a one-frame call
starts from zero state every time: the runner says so in ``mode`` and skips the output check.
"""
import time

import numpy as np


def _skip(runtime, reason, variant=None):
    reason = " ".join(str(reason).split())          # runtimes' messages span several lines
    return {"runtime": runtime, "variant": variant, "skipped": reason}


def _feed_shape(value, batch):
    """Concrete call shape of a value: the time axis 1, the batch axis `batch`."""
    from .ir.dims import has_batch, has_time
    shape = []
    for d in value.shape:
        if has_time(d) and has_batch(d):
            shape.append(batch)
        elif has_time(d):
            shape.append(1)
        elif has_batch(d):
            shape.append(batch)
        else:
            shape.append(int(d))
    return tuple(shape)


def _to_call(value, frames, batch):
    """frames: ([B,] *frame_shape) -> the ONNX call layout of `value` (T = 1, B = batch)."""
    from .ir.dims import has_batch
    shape = _feed_shape(value, batch)
    if batch == 1:
        return np.ascontiguousarray(frames, np.float32).reshape(shape)
    b_axis = next(i for i, d in enumerate(value.shape) if has_batch(d))
    moved = np.moveaxis(np.asarray(frames, np.float32), 0, -1).reshape(
        tuple(s for i, s in enumerate(shape) if i != b_axis) + (batch,))
    return np.ascontiguousarray(np.moveaxis(moved, -1, b_axis))


def _from_call(value, arr, batch):
    """Inverse of :func:`_to_call` for an output: -> ([B,] *frame_shape)."""
    from .ir.dims import has_batch
    frame = value.frame_shape
    if batch == 1:
        return arr.reshape(frame)
    b_axis = next(i for i, d in enumerate(value.shape) if has_batch(d))
    return np.moveaxis(arr, b_axis, 0).reshape((batch,) + frame)


def _ort_session(model, variant):
    """(session, onnxruntime module) with one thread, or (a skip dict, None)."""
    try:
        import onnxruntime as ort
    except ImportError:
        return _skip("onnxruntime", "onnxruntime is not installed (pip install onnxruntime)", variant), None
    src = model.source
    if not (isinstance(src, str) and src.endswith(".onnx")):
        return _skip("onnxruntime", "the model was not loaded from an .onnx file", variant), None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"]), ort
    except Exception as e:  # ORT raises its own exception types
        return _skip("onnxruntime", f"cannot create a session: {e}", variant), None


def _state_io(model, sess, B):
    """State pairs the ONNX graph exposes as inputs, and their initial call values."""
    onnx_inputs = {i.name for i in sess.get_inputs()}
    fed = [s for s in model.graph.states if s.value.name in onnx_inputs]
    init = {s.value.name: np.broadcast_to(s.init, _feed_shape(s.value, B)).astype(np.float32).copy() for s in fed}
    return fed, init


_ORT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32,
              "tensor(double)": np.float64, "tensor(bool)": np.bool_}


def _bound_constants(model, sess):
    """The inputs bound at load (``constants=``, e.g. a sample rate), as ONNX Runtime takes them."""
    types = {i.name: _ORT_TYPES.get(i.type, np.float32) for i in sess.get_inputs()}
    return {k: np.asarray(v, types.get(k, np.float32)) for k, v in (model.graph.meta.get("bound_constants") or {}).items()
            if k in types}


def _mode(fed, states, calls, chunked=False):
    if fed:
        return f"{calls}, state outputs fed back as inputs"
    if not any(not s.name.endswith("/frames") for s in states):
        return f"{calls} (the model keeps no state)"
    if chunked:
        return (f"{calls}; the ONNX graph has no state inputs, so each call starts from zero state "
                "(carried within the call)")
    return (f"{calls}, FRESH zero state each call (the ONNX graph has no state inputs, so ORT "
            "cannot carry state between calls)")


def run_onnxruntime(model, pool, T, warmup, batch):
    """One frame per call. pool: list over inputs of [P, (B,) *frame_shape]; step t uses frame
    t % P. With batch B, one call carries all B streams; when the file fixes batch 1, each step
    makes B calls of one stream each instead (what a user of ORT would have to do)."""
    variant = "1 frame per call"
    sess, ort = _ort_session(model, variant)
    if ort is None:
        return sess
    B = 1 if batch is None else batch
    try:
        r = _ort_steps(model, sess, pool, T, warmup, B, streams_per_call=B)
        how = "one frame per call" + (f" (all {B} streams in one call)" if B > 1 else "")
    except Exception as first:
        if B == 1:
            return _skip("onnxruntime", f"running the model one frame per call failed: {first}", variant)
        try:
            r = _ort_steps(model, sess, pool, T, warmup, B, streams_per_call=1)
        except Exception as e:
            return _skip("onnxruntime", f"running the model one frame per call failed: {e}", variant)
        how = f"one frame per call, {B} calls per step (one per stream: the file fixes batch 1)"
    lat, ys, fed = r
    return {"runtime": "onnxruntime", "variant": variant, "version": ort.__version__, "latency_ns": lat,
            "outputs": ys, "mode": _mode(fed, model.graph.states, how),
            "state_carried": bool(fed) or not model.graph.states, "threads": 1}


def _ort_steps(model, sess, pool, T, warmup, B, streams_per_call):
    """Time T steps of B streams, `streams_per_call` streams per ``sess.run``; returns
    (ns per step, outputs of the first 64 steps as ([B,] *frame) arrays, fed state pairs)."""
    ins, outs = model.graph.inputs, model.graph.outputs
    S = streams_per_call
    groups = [slice(g, g + S) for g in range(0, B, S)]
    fed, init = _state_io(model, sess, S)
    out_names = [o.name for o in outs] + [s.next.name for s in fed]

    def frame(f, t, g):
        x = f[t]
        return x if B == 1 else (x[g] if S > 1 else x[g.start])

    bound = _bound_constants(model, sess)
    calls = [[{**{v.name: _to_call(v, frame(f, t, g), S) for v, f in zip(ins, pool)}, **bound} for g in groups]
             for t in range(min(T, pool[0].shape[0]))]
    states = [dict(init) for _ in groups]
    lat = np.empty(T, np.int64)
    ys = []
    for t in range(-warmup, T):
        step = calls[max(t, 0) % len(calls)]
        t0 = time.perf_counter_ns()
        results = [sess.run(out_names, {**feed, **st}) for feed, st in zip(step, states)]
        t1 = time.perf_counter_ns()
        states = [dict(init) if t == -1 else {s.value.name: r for s, r in zip(fed, res[len(outs):])}
                  for res in results]
        if t >= 0:
            lat[t] = t1 - t0
            if t < 64:
                per_group = [[_from_call(o, r, S) for o, r in zip(outs, res[:len(outs)])] for res in results]
                ys.append([per_group[0][k] if len(groups) == 1 else np.stack([pg[k] for pg in per_group])
                           for k in range(len(outs))])
    return lat, ys, fed


def _time_axis(value):
    from .ir.dims import has_batch, has_time
    axes = [i for i, d in enumerate(value.shape) if has_time(d) and not has_batch(d)]
    return axes[0] if axes else None


def run_onnxruntime_chunk(model, pool, T, warmup, batch, chunk=100):
    """`chunk` frames per call (the state is carried inside the call): throughput, not
    latency, since a real-time stream cannot wait for 100 future frames. Reported per frame."""
    variant = f"{chunk} frames per call"
    sess, ort = _ort_session(model, variant)
    if ort is None:
        return sess
    ins, outs = model.graph.inputs, model.graph.outputs
    if model.graph.meta.get("mode") == "step":
        return _skip("onnxruntime", "a step graph has no time axis to put several frames in one call", variant)
    if any(_time_axis(v) is None for v in list(ins) + list(outs)):
        return _skip("onnxruntime", "the time axis shares a dimension with the batch axis", variant)
    B = 1 if batch is None else batch
    fed, init = _state_io(model, sess, B)
    out_names = [o.name for o in outs] + [s.next.name for s in fed]
    P = pool[0].shape[0]
    n_calls = max(1, T // chunk)
    calls = []
    for c in range(min(n_calls, max(1, P // chunk))):
        idx = [(c * chunk + k) % P for k in range(chunk)]
        calls.append({v.name: np.concatenate([_to_call(v, f[i], B) for i in idx], axis=_time_axis(v))
                      for v, f in zip(ins, pool)})
    state = dict(init)
    lat = np.empty(n_calls, np.int64)
    ys = []
    try:
        for c in range(-max(1, warmup // chunk), n_calls):
            feed = {**calls[max(c, 0) % len(calls)], **state}
            t0 = time.perf_counter_ns()
            res = sess.run(out_names, feed)
            t1 = time.perf_counter_ns()
            state = init if c == -1 else {s.value.name: r for s, r in zip(fed, res[len(outs):])}
            if c >= 0:
                lat[c] = (t1 - t0) // chunk
            if c == 0:
                per_out = [np.split(r, r.shape[_time_axis(o)], axis=_time_axis(o)) for o, r in zip(outs, res[:len(outs)])]
                ys = [[_from_call(o, frames[k], B) for o, frames in zip(outs, per_out)] for k in range(min(chunk, 64))]
    except Exception as e:
        return _skip("onnxruntime", f"running the model on {chunk}-frame chunks failed: {e}", variant)
    return {"runtime": "onnxruntime", "variant": variant, "version": ort.__version__, "latency_ns": lat,
            "outputs": ys, "mode": _mode(fed, model.graph.states, f"{chunk} frames per call, time per frame = "
                                         f"call / {chunk} (throughput, not a per-frame latency)", chunked=True),
            "state_carried": True, "threads": 1, "amortized": True}


def run_litert(model, pool, T, warmup, batch):
    """LiteRT on the model's .tflite source, one invoke() per frame.

    Inputs are matched to edgernn's frame inputs by order; any further interpreter inputs
    whose names match edgernn state names are fed back from the outputs of the same name
    (models that keep state in variable tensors need nothing)."""
    src = model.source
    if not (isinstance(src, str) and src.endswith(".tflite")):
        return _skip("litert", "the model was not loaded from a .tflite file")
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return _skip("litert", "ai-edge-litert is not installed (pip install ai-edge-litert)")
    if batch not in (None, 1):
        return _skip("litert", "batched streams are compared in ONNX Runtime only")
    try:
        it = Interpreter(model_path=src, num_threads=1)
        it.allocate_tensors()
    except Exception as e:
        return _skip("litert", f"cannot create an interpreter: {e}")
    details = it.get_input_details()
    out_details = it.get_output_details()
    frame_in = details[:len(pool)]
    state_names = {s.value.name: s for s in model.graph.states}
    state_in = [d for d in details[len(pool):] if d["name"] in state_names]
    out_by_name = {d["name"]: d for d in out_details}
    lat = np.empty(T, np.int64)
    ys = []
    try:
        for t in range(-warmup, T):
            k = max(t, 0) % pool[0].shape[0]
            for d, f in zip(frame_in, pool):
                it.set_tensor(d["index"], f[k].reshape(d["shape"]).astype(d["dtype"]))
            t0 = time.perf_counter_ns()
            it.invoke()
            t1 = time.perf_counter_ns()
            for d in state_in:
                nxt = state_names[d["name"]].next.name
                if t == -1:            # warm-up over: back to the initial state
                    it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
                elif nxt in out_by_name:
                    it.set_tensor(d["index"], it.get_tensor(out_by_name[nxt]["index"]))
            if t == -1:
                it.reset_all_variables()
            if t >= 0:
                lat[t] = t1 - t0
                if t < 64:
                    ys.append([it.get_tensor(d["index"]).copy() for d in out_details[:len(model.outputs)]])
    except Exception as e:
        return _skip("litert", f"running the model failed: {e}")
    return {"runtime": "litert", "variant": "1 frame per call", "mode": "one invoke() per frame (state in variable tensors or fed back by name)",
            "latency_ns": lat, "outputs": ys, "state_carried": True, "threads": 1}
