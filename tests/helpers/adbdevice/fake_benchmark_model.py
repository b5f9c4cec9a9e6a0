"""Stand-in for TFLite's benchmark_model (no Android binary can run here): same flags, the same output lines,
real invocations of the model through LiteRT on random inputs. Tests copy it with a shebang for this Python."""

import sys
import time

import numpy as np
from ai_edge_litert.interpreter import Interpreter

flags = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
print("INFO: STARTING!")
print(f"INFO: Graph: [{flags['graph']}]")
t0 = time.perf_counter()
interp = Interpreter(model_path=flags["graph"], num_threads=int(flags.get("num_threads", 1)))
interp.allocate_tensors()
init_us = (time.perf_counter() - t0) * 1e6
inp = interp.get_input_details()[0]
x = np.random.randint(0, 255, size=inp["shape"]).astype(inp["dtype"])


def once():
    start = time.perf_counter()
    interp.set_tensor(inp["index"], x)
    interp.invoke()
    return (time.perf_counter() - start) * 1e6


print(f"INFO: Initialized session in {init_us / 1000:.3f}ms.")
warm = [once() for _ in range(int(flags.get("warmup_runs", 1)))]
print(f"INFO: count={len(warm)} first={int(warm[0])} curr={int(warm[-1])} min={int(min(warm))} "
      f"max={int(max(warm))} avg={sum(warm) / len(warm):.2f} std=0")
runs = [once() for _ in range(int(flags.get("num_runs", 50)))]
print(f"INFO: count={len(runs)} first={int(runs[0])} curr={int(runs[-1])} min={int(min(runs))} "
      f"max={int(max(runs))} avg={sum(runs) / len(runs):.2f} std=0")
print(f"INFO: Inference timings in us: Init: {int(init_us)}, First inference: {int(warm[0])}, "
      f"Warmup (avg): {sum(warm) / len(warm):.2f}, Inference (avg): {sum(runs) / len(runs):.2f}")
print("INFO: Memory footprint delta from the start of the tool (MB): init=2.5 overall=3.6")
