"""An independent memory measurement, run as its own fresh process: the runtime's own API (no pytest_aiotbench
code), the model loaded from the same file, VmRSS before and after the load and VmHWM after a few inferences.

    python memory_independent.py tflite|onnx MODEL SIZE   ->  prints "PREPARE_MB PEAK_MB" (10^6 bytes)
"""

import sys

import numpy as np


def status() -> dict:
    out = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def main() -> None:
    kind, path, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "tflite":
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            from tflite_runtime.interpreter import Interpreter
        x = np.zeros((1, size, size, 3), np.uint8)  # the input exists before the base: it is not the model's
        base = status()["VmRSS"]
        interpreter = Interpreter(model_path=path, num_threads=1)
        interpreter.allocate_tensors()
        loaded = status()["VmRSS"]
        index = interpreter.get_input_details()[0]["index"]
        output = interpreter.get_output_details()[0]["index"]

        def infer():
            interpreter.set_tensor(index, x)
            interpreter.invoke()
            return interpreter.get_tensor(output)
    else:
        import onnxruntime as ort

        x = np.zeros((1, 3, size, size), np.float32)
        base = status()["VmRSS"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        loaded = status()["VmRSS"]
        name = session.get_inputs()[0].name

        def infer():
            return session.run(None, {name: x})[0]
    for _ in range(5):
        infer()
    print((loaded - base) / 1e6, (status()["VmHWM"] - base) / 1e6)


if __name__ == "__main__":
    main()
