"""edgernn.passes.narrow: a Conv read only through slices computes only the positions they keep.

Oracle: onnxruntime (one thread) on the same small models, built here with onnx.helper: x
[T, C, *spatial] with time as Conv's N axis, a Conv, then slices (chains of them, several
readers, steps, ranges reaching into the padding). Each model streams one frame per step and
in a batch of streams to 1e-5 of onnxruntime. That the pass acted is read from the model's
FLOP count: a Conv's 2 * M * (C / group) * prod(kernel) FLOPs per kept output position.
"""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import edgernn  # noqa: E402
from compare import assert_close, model_frames, run_ort  # noqa: E402

T = 6


def _ints(name, xs):
    return numpy_helper.from_array(np.array(xs, np.int64), name)


def sliced_conv(C, M, spatial, kernel, readers, expose_conv=False, **attrs):
    """x [T, C, *spatial] -> Conv -> each reader, a chain of slices [(starts, ends, axes, steps)],
    -> one output per reader (and the Conv's own output when ``expose_conv``)."""
    rng = np.random.default_rng(3)
    group = attrs.get("group", 1)
    inits = [numpy_helper.from_array(rng.uniform(-1, 1, (M, C // group, *kernel)).astype(np.float32), "W"),
             numpy_helper.from_array(rng.uniform(-1, 1, M).astype(np.float32), "B")]
    nodes = [helper.make_node("Conv", ["x", "W", "B"], ["y"], **attrs)]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)] if expose_conv else []
    for i, chain in enumerate(readers):
        src = "y"
        for j, (starts, ends, axes, steps) in enumerate(chain):
            names = [f"r{i}_{j}_{k}" for k in ("s", "e", "a", "st")]
            inits += [_ints(n, v) for n, v in zip(names, (starts, ends, axes, steps))]
            nodes.append(helper.make_node("Slice", [src] + names, [f"r{i}_{j}"]))
            src = f"r{i}_{j}"
        outputs.append(helper.make_tensor_value_info(src, TensorProto.FLOAT, None))
    graph = helper.make_graph(nodes, "sliced_conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                   ["T", C, *spatial])],
                              outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


BIG = 2 ** 62
# name: (C, M, spatial, kernel, attrs, readers, output positions the Conv computes)
CASES = {
    "stft_like_drop_first": (1, 10, [40], [8], dict(strides=[4], pads=[4, 4]),
                             [[([0], [5], [1], [1]), ([1], [BIG], [2], [1])],
                              [([5], [BIG], [1], [1]), ([1], [BIG], [2], [1])]], 10),
    "two_readers_union": (3, 6, [20], [3], dict(strides=[2], dilations=[2], pads=[2, 1]),
                          [[([1], [3], [2], [1])], [([5], [7], [2], [1])]], 6),
    "into_right_pad": (2, 4, [9], [4], dict(auto_pad="SAME_UPPER", strides=[2]),
                       [[([3], [5], [2], [1])]], 2),
    "left_pad_kept": (2, 5, [12], [3], dict(pads=[3, 0]),
                      [[([1], [4], [2], [1])]], 3),
    "stepped": (2, 4, [16], [3], dict(pads=[1, 1]),
                [[([2], [-1], [2], [3])]], 13),       # reads 2, 5, .., 14: computes 2..14
    "2d_both_axes": (3, 8, [9, 10], [3, 2], dict(strides=[2, 1], pads=[1, 0, 1, 1]),
                     [[([1, 2], [4, 8], [2, 3], [1, 2])]], 3 * 5),
    "2d_depthwise": (4, 4, [8, 8], [3, 3], dict(group=4, pads=[1, 1, 1, 1]),
                     [[([0, 1, 3], [2, -1, 5], [1, 2, 3], [1, 1, 1])]], 6 * 2),
    "negative_step_untouched": (2, 3, [10], [3], {}, [[([6], [0], [2], [-2])]], 8),
    "exposed_conv_untouched": (2, 3, [10], [3], {}, [[([2], [5], [2], [1])]], 8),
}


def conv_flops(C, M, kernel, positions, group=1):
    return 2 * M * (C // group) * int(np.prod(kernel)) * positions


@pytest.mark.parametrize("name", sorted(CASES))
def test_sliced_conv_matches_onnxruntime_and_computes_only_kept_positions(name):
    C, M, spatial, kernel, attrs, readers, kept = CASES[name]
    model = sliced_conv(C, M, spatial, kernel, readers, expose_conv=name.startswith("exposed"), **attrs)
    x = model_frames(model, T)
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    want = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    m = edgernn.load(model, time_axis=0)
    s = m.stream()
    got = [s.step(f) for f in x]
    got = [got] if len(want) == 1 else list(zip(*got))
    for i, w in enumerate(want):
        assert_close(np.stack(got[i]).reshape(w.shape), w, 1e-5, f"{name} output {i}")
    batch = model_frames(model, T, seed=2, batch=3)
    stepped = [m.stream(batch=3).step(batch[0])]
    first = run_ort(model, batch[0])
    assert_close(np.asarray(stepped[0] if len(want) == 1 else stepped[0][0]).reshape(first.shape), first, 1e-5,
                 f"{name} batch")
    assert m.describe()["flops_per_step"] == conv_flops(C, M, kernel, kept, attrs.get("group", 1))
