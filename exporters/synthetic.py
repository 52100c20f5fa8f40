"""Recurrent ONNX models of given shapes, with seeded random weights, made with onnx.helper.

For benchmarks and size/format tests that need a model of a known shape (LSTM 2x128 on 40
features with a Dense(12) head, GRU 1x37, LSTM 3x256, ...) without torch. The graph is what a
TorchScript export of ``nn.LSTM``/``nn.GRU`` (batch 1, time-major, zero initial state) plus
``nn.Linear`` looks like at the op level: one ONNX LSTM/GRU per layer with a Squeeze of the
direction axis, then MatMul + Add.

    python -m exporters.synthetic lstm 2 128 40 12 -o lstm2x128.onnx
"""
import argparse

import numpy as np

SHAPES = {
    # name: (cell, layers, hidden, inputs, dense outputs or 0)
    "gru1x37": ("gru", 1, 37, 13, 0),
    "lstm2x128": ("lstm", 2, 128, 40, 12),
    "gru2x128": ("gru", 2, 128, 40, 12),
    "lstm3x256": ("lstm", 3, 256, 64, 12),
}


def recurrent_model(cell, layers, hidden, inputs, dense=0, seed=0, state_io=False, batch=1):
    """An onnx.ModelProto: input x [T, batch, inputs] -> y [T, batch, dense or hidden].

    state_io: each layer's initial state is a graph input (h0_<l>, and c0_<l> for LSTM,
    [1, batch, hidden]) and its final state a graph output (hT_<l>, cT_<l>), as a runtime that
    keeps no state needs (ONNX Runtime is fed them back every call); edgernn pairs them and
    keeps them inside the stream. batch > 1 is for ONNX Runtime running that many streams in
    one call (benchmarks/perf.py); edgernn batches streams itself (``Model.stream(batch=)``)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    gates = {"lstm": 4, "gru": 3}[cell]
    op = {"lstm": "LSTM", "gru": "GRU"}[cell]
    k = 1.0 / np.sqrt(hidden)            # torch's default init range
    nodes, inits, x, size = [], [], "x", inputs

    def weight(name, *shape, scale=k):
        inits.append(numpy_helper.from_array(rng.uniform(-scale, scale, shape).astype(np.float32), name))
        return name

    inits.append(numpy_helper.from_array(np.array([1], np.int64), "axis1"))
    state_in, state_out = [], []
    for layer in range(layers):
        w = weight(f"W{layer}", 1, gates * hidden, size)
        r = weight(f"R{layer}", 1, gates * hidden, hidden)
        b = weight(f"B{layer}", 1, 2 * gates * hidden)
        attrs = {"hidden_size": hidden}
        if cell == "gru":
            attrs["linear_before_reset"] = 1
        ins, outs = [x, w, r, b], [f"Y{layer}"]
        if state_io:
            names = ["h"] + (["c"] if cell == "lstm" else [])
            ins += ["", f"h0_{layer}"] + ([f"c0_{layer}"] if cell == "lstm" else [])
            outs += [f"hT_{layer}"] + ([f"cT_{layer}"] if cell == "lstm" else [])
            state_in += [helper.make_tensor_value_info(f"{n}0_{layer}", TensorProto.FLOAT, [1, batch, hidden]) for n in names]
            state_out += [helper.make_tensor_value_info(f"{n}T_{layer}", TensorProto.FLOAT, [1, batch, hidden]) for n in names]
        nodes.append(helper.make_node(op, ins, outs, name=f"{op}_{layer}", **attrs))
        nodes.append(helper.make_node("Squeeze", [f"Y{layer}", "axis1"], [f"h{layer}"]))
        x, size = f"h{layer}", hidden
    if dense:
        nodes.append(helper.make_node("MatMul", [x, weight("Wd", hidden, dense)], ["logits_mm"]))
        nodes.append(helper.make_node("Add", ["logits_mm", weight("bd", dense)], ["y"]))
    else:
        nodes.append(helper.make_node("Identity", [x], ["y"]))
    graph = helper.make_graph(nodes, f"{cell}{layers}x{hidden}",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["T", batch, inputs])] + state_in,
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["T", batch, dense or hidden])] + state_out,
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10                # what onnxruntime 1.31 accepts
    onnx.checker.check_model(model)
    return model


def named_model(name, seed=0, state_io=False, batch=1):
    return recurrent_model(*SHAPES[name], seed=seed, state_io=state_io, batch=batch)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("cell", choices=("lstm", "gru"))
    p.add_argument("layers", type=int)
    p.add_argument("hidden", type=int)
    p.add_argument("inputs", type=int)
    p.add_argument("dense", type=int, nargs="?", default=0)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--state-io", action="store_true", help="initial/final states as graph inputs/outputs")
    a = p.parse_args(argv)
    import onnx
    onnx.save(recurrent_model(a.cell, a.layers, a.hidden, a.inputs, a.dense, a.seed, a.state_io), a.output)


if __name__ == "__main__":
    main()
