"""Delegation coverage: which share of a model's ops runs in the framework's accelerated kernels (the XNNPACK
delegate, an ONNX Runtime execution provider) and which ops run outside it, on slower generic kernels.

A latency is only comparable across frameworks when each runs its model the way an expert would; a model whose
ops fall out of the delegate is slow for a reason the number alone does not show. Every function here returns the
same dict (see :func:`summary`) and is called after timing (never on the timed path, never inside ``prepare_ms``):

    {"accelerator": "XNNPACK", "total_ops": 232, "delegated_ops": 223, "outside": {"aten.avg_pool2d": 9},
     "subgraphs": 10, "complete": False, "measured_by": "..."}

``outside`` counts the ops that run outside the accelerator, by name. ``complete`` is True when none does.
Only the standard library at import time: this module also runs on devices inside the runner bundle.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import tempfile
from collections import Counter
from pathlib import Path


def summary(accelerator: str | None, total: int | None, delegated: int | None, outside: Counter | dict,
            subgraphs: int | None, measured_by: str, **extra) -> dict:
    outside = dict(sorted(Counter(outside).items(), key=lambda kv: (-kv[1], kv[0])))
    out = {"accelerator": accelerator, "total_ops": total, "delegated_ops": delegated, "outside": outside,
           "outside_ops": sum(outside.values()), "subgraphs": subgraphs,
           "complete": accelerator is not None and not outside, "measured_by": measured_by}
    out.update(extra)
    return out


def describe_gap(coverage: dict | None) -> str | None:
    """One line for a case whose coverage is incomplete ("9 ops outside XNNPACK: aten.avg_pool2d x9"), else None."""
    if not coverage or coverage.get("complete"):
        return None
    if coverage.get("error"):
        return f"coverage unknown ({coverage['error']})"
    outside = coverage.get("outside") or {}
    if coverage.get("accelerator") is None:
        where = coverage.get("note") or "no accelerated delegate"
        return f"{where}" + (f": {coverage['total_ops']} ops" if coverage.get("total_ops") else "")
    ops = ", ".join(f"{name} x{count}" for name, count in list(outside.items())[:4])
    more = ", ..." if len(outside) > 4 else ""
    return f"{sum(outside.values())} ops outside {coverage['accelerator']} ({ops}{more})"


# -- a minimal flatbuffer reader (TFLite and ExecuTorch files are flatbuffers; no schema package needed) -----------

class _Table:
    __slots__ = ("buf", "pos", "vtable", "vsize")

    def __init__(self, buf, pos: int):
        self.buf, self.pos = buf, pos
        self.vtable = pos - struct.unpack_from("<i", buf, pos)[0]
        self.vsize = struct.unpack_from("<H", buf, self.vtable)[0]

    def _field(self, i: int) -> int:
        slot = 4 + 2 * i
        return struct.unpack_from("<H", self.buf, self.vtable + slot)[0] if slot < self.vsize else 0

    def scalar(self, i: int, fmt: str, default=0):
        off = self._field(i)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + off)[0] if off else default

    def _deref(self, i: int) -> int | None:
        off = self._field(i)
        if not off:
            return None
        p = self.pos + off
        return p + struct.unpack_from("<I", self.buf, p)[0]

    def table(self, i: int) -> "_Table | None":
        p = self._deref(i)
        return None if p is None else _Table(self.buf, p)

    def string(self, i: int) -> str | None:
        p = self._deref(i)
        if p is None:
            return None
        n = struct.unpack_from("<I", self.buf, p)[0]
        return bytes(self.buf[p + 4:p + 4 + n]).decode("utf-8", "replace")

    def tables(self, i: int) -> list["_Table"]:
        p = self._deref(i)
        if p is None:
            return []
        n = struct.unpack_from("<I", self.buf, p)[0]
        out = []
        for k in range(n):
            e = p + 4 + 4 * k
            out.append(_Table(self.buf, e + struct.unpack_from("<I", self.buf, e)[0]))
        return out

    def bytes_span(self, i: int) -> tuple[int, int] | None:
        """(start, length) of a [ubyte] vector inside the buffer."""
        p = self._deref(i)
        if p is None:
            return None
        return p + 4, struct.unpack_from("<I", self.buf, p)[0]


def _root(buf, base: int = 0) -> _Table:
    return _Table(buf, base + struct.unpack_from("<I", buf, base)[0])


# -- ExecuTorch ------------------------------------------------------------------------------------------------------

_KERNEL_CALL, _DELEGATE_CALL = 1, 2  # InstructionArguments union members (executorch program.fbs)
_XNNPACK_ID = "XnnpackBackend"


def _xnnpack_node_names() -> list[str] | None:
    """XNodeUnion member names in declaration order, read from the schema file executorch ships (importing its
    Python schema module would import torch and the exporter, seconds for a name table)."""
    import importlib.util
    import re

    try:
        spec = importlib.util.find_spec("executorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    schema = Path(list(spec.submodule_search_locations)[0]) / "backends" / "xnnpack" / "serialization" / "schema.fbs"
    try:
        text = schema.read_text()
    except OSError:
        return None
    m = re.search(r"union XNodeUnion \{(.*?)\}", text, re.S)
    if not m:
        return None
    body = re.sub(r"//[^\n]*", "", m.group(1))
    return [item.split(":")[0].strip() for item in body.split(",") if item.strip()]


def _xnnpack_nodes(buf, start: int, length: int) -> Counter:
    """XNNPACK node kinds of one delegate payload (XNNHeader 'XH00' + the XNNGraph flatbuffer)."""
    if bytes(buf[start + 4:start + 8]) == b"XH00":
        fb_offset = struct.unpack_from("<I", buf, start + 10)[0]
        graph = _root(buf, start + fb_offset)
    else:  # payloads from before the header existed are the bare flatbuffer
        graph = _root(buf, start)
    names = _xnnpack_node_names() or []
    kinds = Counter()
    for node in graph.tables(1):  # XNNGraph.xnodes
        kind = node.scalar(0, "B")  # xnode_union_type (1-based; 0 = NONE)
        kinds[names[kind - 1] if 0 < kind <= len(names) else f"xnode#{kind}"] += 1
    return kinds


def executorch_coverage(model_file: str | os.PathLike, method: str = "forward") -> dict:
    """Ops of a ``.pte`` program's ``method``: XNNPACK nodes inside its delegate calls vs kernel calls that run on
    ExecuTorch's portable (reference) kernels. Read from the file (mmap), without importing executorch."""
    with open(model_file, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        segment_base = 0
        if bytes(buf[8:12]) == b"eh00":  # extended header: segments (delegate payloads, constants) follow the program
            segment_base = struct.unpack_from("<Q", buf, 8 + 16)[0]
        program = _root(buf)
        plans = {p.string(0): p for p in program.tables(1)}
        plan = plans.get(method)
        if plan is None:
            raise ValueError(f"no method {method!r} in the program (methods: {', '.join(map(str, plans))})")
        operators = [f"{op.string(0)}" + (f".{op.string(1)}" if op.string(1) else "") for op in plan.tables(6)]
        delegates = plan.tables(7)
        outside, inside, backends, calls = Counter(), Counter(), Counter(), 0
        unknown_backend = False
        for chain in plan.tables(5):
            for instr in chain.tables(2):
                kind, args = instr.scalar(0, "B"), instr.table(1)
                if kind == _KERNEL_CALL and args is not None:
                    outside[operators[args.scalar(0, "i")]] += 1
                elif kind == _DELEGATE_CALL and args is not None:
                    calls += 1
                    delegate = delegates[args.scalar(0, "i")]
                    backend = delegate.string(0) or "?"
                    backends[backend] += 1
                    if backend != _XNNPACK_ID:
                        unknown_backend = True
                        continue
                    ref = delegate.table(1)
                    location, index = ref.scalar(0, "b"), ref.scalar(1, "I")
                    if location == 0:  # INLINE: program.backend_delegate_data[index].data
                        start, length = program.tables(3)[index].bytes_span(0)
                    else:  # SEGMENT
                        seg = program.tables(4)[index]
                        start, length = segment_base + seg.scalar(0, "Q"), seg.scalar(1, "Q")
                    inside.update(_xnnpack_nodes(buf, start, length))
    delegated = None if unknown_backend else sum(inside.values())
    accelerator = "XNNPACK" if backends.get(_XNNPACK_ID) else (next(iter(backends)) if backends else None)
    total = None if delegated is None else delegated + sum(outside.values())
    return summary(accelerator, total, delegated, outside, calls,
                   "program: XNNPACK nodes in delegate payloads vs kernel calls on portable kernels",
                   delegated_kinds=dict(inside), backends=dict(backends),
                   # nothing outside: all FLOPs are delegated; with ops outside, their FLOPs are not counted here
                   delegated_flops_share=1.0 if backends and not outside and not unknown_backend else None,
                   note=None if backends else "not delegated: every op on ExecuTorch's portable kernels")


# -- TFLite ----------------------------------------------------------------------------------------------------------

def tflite_coverage(interpreter, delegate: str = "xnnpack") -> dict:
    """Ops of an allocated interpreter's primary subgraph inside its DELEGATE nodes vs outside.

    ``_get_ops_details()`` lists the model's original nodes followed by the DELEGATE nodes that replaced some of
    them; which original nodes a DELEGATE node took is reconstructed from its boundary: walking back from its
    output tensors through producers, stopping at its input tensors (a delegated partition is convex)."""
    ops = interpreter._get_ops_details()
    delegate_nodes = [op for op in ops if op["op_name"] == "DELEGATE"]
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    producer = {}
    for op in original:
        for t in op["outputs"]:
            producer[int(t)] = op["index"]
    by_index = {op["index"]: op for op in original}
    taken: set[int] = set()
    for d in delegate_nodes:
        boundary = {int(t) for t in d["inputs"]}
        stack = [int(t) for t in d["outputs"]]
        seen: set[int] = set()
        while stack:
            t = stack.pop()
            if t in seen or t in boundary or t not in producer:
                continue
            seen.add(t)
            node = producer[t]
            if node in taken:
                continue
            taken.add(node)
            stack.extend(int(i) for i in by_index[node]["inputs"] if int(i) >= 0)
    outside = Counter(op["op_name"] for op in original if op["index"] not in taken)
    shapes = {t["index"]: tuple(int(d) for d in t["shape"]) for t in interpreter.get_tensor_details()}
    flops = {op["index"]: _tflite_op_flops(shapes, op) for op in original}
    total_flops = sum(flops.values())
    share = (sum(f for i, f in flops.items() if i in taken) / total_flops) if total_flops else None
    accelerator = "XNNPACK" if delegate_nodes and delegate != "none" else None
    note = None
    if delegate == "none":
        note = "XNNPACK turned off (options.delegate = none): every op on TFLite's builtin kernels"
    elif not delegate_nodes:
        note = "XNNPACK took no op: every op on TFLite's builtin kernels"
    return summary(accelerator, len(original), len(taken), outside, len(delegate_nodes),
                   "interpreter: original nodes replaced by DELEGATE nodes (reconstructed from their boundary)",
                   note=note, flops=total_flops or None,
                   delegated_flops_share=None if share is None else round(share, 4))


_TFLITE_MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def _tflite_op_flops(shapes: dict, op) -> int:
    """2 x multiply-adds of a convolution or fully connected node from its filter and output shapes; 0 for other
    ops (pools, adds, concatenations move memory, they are not where the FLOPs are)."""
    if op["op_name"] not in _TFLITE_MAC_OPS or len(op["inputs"]) < 2:
        return 0
    filt, out = shapes.get(int(op["inputs"][1])), shapes.get(int(op["outputs"][0]))
    if not filt or not out:
        return 0
    out_elems = 1
    for d in out:
        out_elems *= int(d)
    if op["op_name"] == "FULLY_CONNECTED":
        per_output = int(filt[-1])
    elif op["op_name"] == "DEPTHWISE_CONV_2D":
        per_output = int(filt[1]) * int(filt[2])
    else:
        per_output = int(filt[1]) * int(filt[2]) * int(filt[3])
    return 2 * out_elems * per_output


# -- ONNX Runtime ----------------------------------------------------------------------------------------------------

def onnxruntime_coverage(model_file: str | os.PathLike, providers: list[str], input_name: str, input_shape,
                         input_dtype, threads: int = 1) -> dict:
    """Nodes per execution provider, as ONNX Runtime's own profiler reports them for one inference in a separate
    profiling session (the benchmarked session is never profiled: profiling costs time per node)."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    so.enable_profiling = True
    with tempfile.TemporaryDirectory(prefix="aiotbench-ortprof-") as tmp:
        so.profile_file_prefix = os.path.join(tmp, "prof")
        session = ort.InferenceSession(str(model_file), sess_options=so, providers=providers)
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in input_shape]
        session.run(None, {input_name: np.zeros(shape, dtype=input_dtype)})
        events = json.loads(Path(session.end_profiling()).read_text())
    per_provider, kinds = Counter(), {}
    nodes = set()
    for ev in events:
        args = ev.get("args") or {}
        if ev.get("cat") != "Node" or "provider" not in args or not ev.get("name", "").endswith("_kernel_time"):
            continue
        name = ev["name"][: -len("_kernel_time")]
        if name in nodes:
            continue
        nodes.add(name)
        per_provider[args["provider"]] += 1
        kinds.setdefault(args["provider"], Counter())[args.get("op_name", "?")] += 1
    best = providers[0] if providers else None
    outside = Counter()
    for provider, counter in kinds.items():
        if provider != best:
            outside.update({f"{op} ({provider})": n for op, n in counter.items()})
    return summary(best, len(nodes), per_provider.get(best, 0), outside, len(per_provider),
                   "onnxruntime profiler: nodes per execution provider (one profiled inference, separate session)",
                   providers=dict(per_provider))


# -- PyTorch Mobile --------------------------------------------------------------------------------------------------

def torch_mobile_coverage(module) -> dict:
    """The lite interpreter has no delegate: every op runs on ATen's CPU kernels. XNNPACK enters only through
    ``optimize_for_mobile``'s prepacked ops; their presence is what this records."""
    graph = getattr(module, "inlined_graph", None)
    if graph is not None:  # TorchScript (.pt) through torch.jit.load: count the ATen calls of its graph
        calls = sum(1 for node in graph.nodes() if node.kind().startswith("aten::"))
        return summary(None, calls, 0, {}, 0, "TorchScript graph: aten:: calls",
                       note="no delegate (TorchScript): ATen CPU kernels")
    from torch.jit.mobile import _export_operator_list

    ops = sorted(_export_operator_list(module))
    prepacked = [op for op in ops if op.startswith("prepacked::")]
    if prepacked:
        return summary("XNNPACK (prepacked conv/linear)", len(ops), len(prepacked), {}, None,
                       "lite interpreter operator list (distinct ops, not calls)")
    return summary(None, len(ops), 0, {}, 0, "lite interpreter operator list (distinct ops, not calls)",
                   note="no XNNPACK ops (not optimized for mobile): ATen CPU kernels")


def collect(inspect) -> dict:
    """Run a session's coverage inspection; a failure is recorded in the dict (the measured case stays valid)."""
    try:
        return inspect()
    except Exception as exc:  # a file format this reader does not know: say so, keep the measurement
        return summary(None, None, None, {}, None, "unavailable", error=f"{type(exc).__name__}: {exc}"[:300])


# -- ncnn, MNN, OpenVINO ---------------------------------------------------------------------------------------------

def ncnn_coverage(net, vulkan: bool) -> dict:
    """ncnn has no delegate: each layer runs in ncnn's own kernels (x86 AVX/ARM NEON), on the Vulkan GPU only
    when asked and when the layer has a Vulkan implementation; layers without one fall back to the CPU."""
    layers = [layer for layer in net.layers() if layer.type != "Input"]
    if not vulkan:
        return summary("ncnn CPU", len(layers), len(layers), {}, 1,
                       "ncnn net layers (all on ncnn's CPU kernels: Vulkan off)",
                       fp16_capable_layers=sum(1 for layer in layers if layer.support_fp16_storage))
    outside = Counter(layer.type for layer in layers if not layer.support_vulkan)
    return summary("Vulkan", len(layers), len(layers) - sum(outside.values()), outside, None,
                   "ncnn net layers: support_vulkan per layer")


def mnn_coverage(model_file: str | os.PathLike, input_shape, threads: int = 1) -> dict:
    """Ops one inference executes on MNN's CPU backend, counted by its per-op callback in a separate session
    (the benchmarked module is never instrumented)."""
    from .base import quiet_stdio
    from .mnn import import_mnn

    MNN = import_mnn()
    with quiet_stdio(stderr=True):
        interpreter = MNN.Interpreter(str(model_file))
        session = interpreter.createSession({"backend": "CPU", "numThread": int(threads), "precision": "high"})
    kinds: Counter = Counter()

    def begin(tensors, op):
        kinds[op.getType()] += 1
        return True

    with quiet_stdio(stderr=True):
        interpreter.runSessionWithCallBackInfo(session, begin, lambda tensors, op: True)
    total = sum(kinds.values())
    return summary("MNN CPU", total, total, {}, 1, "MNN session: ops executed, per-op callback (separate session)",
                   delegated_kinds=dict(kinds))


def openvino_coverage(core, model, compiled, device: str) -> dict:
    """Which device each op of the model is assigned to (``query_model``) and the precision each executed node
    ran in (the compiled model's runtime graph: bf16/f32 is visible here, not only in the requested hint)."""
    assigned = core.query_model(model, device)
    ops = [op for op in model.get_ops() if op.get_type_name() not in ("Parameter", "Result", "Constant")]
    outside = Counter(f"{op.get_type_name()} (unsupported on {device})" for op in ops
                      if op.get_friendly_name() not in assigned)
    precisions: Counter = Counter()
    for node in compiled.get_runtime_model().get_ops():
        info = node.get_rt_info()
        if "runtimePrecision" in info and str(info["layerType"].astype(str)) not in ("Input", "Output", "Const"):
            precisions[str(info["runtimePrecision"].astype(str))] += 1
    return summary(device, len(ops), len(ops) - sum(outside.values()), outside, 1,
                   "openvino query_model: op -> device; runtime model: executed precision per node",
                   runtime_precisions=dict(precisions))
