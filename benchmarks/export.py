"""Exported generators: ms per shower with onnxruntime vs Keras' ``model.generate``.

For each family, on the current ``KERAS_BACKEND``: the builder's default model for zn44 (9
conditions; untrained weights, transforms fitted on simulated showers: the cost does not
depend on the values), ``generate`` timed at batch 1 and at batch 256, then the model
exported with :func:`calozdc.export.export_generator` (dynamic batch; PyTorch: batch 1 and
256 exported separately) and the ONNX file run
with onnxruntime at the same batch sizes (``intra_op_num_threads`` = ``--threads``). Each
timing is the median of ``--repeats`` calls after one untimed call. Families the backend's
converter cannot export get the Keras column only (export them under TensorFlow). The
C++ callers (ALICE O2, Geant4 Par04) run at batch 1.

    KERAS_BACKEND=tensorflow python benchmarks/export.py
    KERAS_BACKEND=jax python benchmarks/export.py --families gan

Prints one JSON line per family and a Markdown table.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time

FAMILIES = ("gan", "twostep", "ddim", "flow", "latent-flow")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    parser.add_argument("--steps", type=int, default=10, help="DDIM/flow steps (default 10)")
    parser.add_argument("--batch", type=int, default=256, help="large batch (default 256)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per batch-1 cell")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads")
    parser.add_argument("--n-fit", type=int, default=256, help="showers to fit transforms on")
    parser.add_argument("--total-steps", type=int, default=20,
                        help="fit steps of the total model where the family has one (0: none)")
    return parser.parse_args(argv)


def timed(fn, repeats):
    fn()  # compilation / warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(family, args, showers, conditions, big, backend):
    """One row of the table: Keras and onnxruntime ms per shower for ``family``."""
    import onnxruntime as ort

    from calozdc.export import export_generator, exportable, generation_noise
    from calozdc.models.registry import build_model, default_transforms

    shower_t, cond_t = default_transforms(family)
    shower_t.fit(showers, conditions=conditions)
    cond_t.fit(conditions)
    model = build_model(family, "zn44", conditions.shape[1], shower_transform=shower_t,
                        condition_transform=cond_t, seed=0)
    if getattr(model, "fit_with_preprocess", False):
        model.fit_transforms(showers, conditions)
    if args.total_steps and getattr(model, "total_model", None) is not None:
        # the energy/shape factorisation's total model, as `calozdc train` fits it (a few
        # steps: the cost does not depend on the values)
        model.fit_totals(showers, conditions, steps=args.total_steps)
    gen = {} if family in ("gan", "twostep") else {"steps": args.steps}
    row = {"family": family, "backend": backend, "steps": gen.get("steps")}
    row["keras_b1_ms"] = 1e3 * timed(lambda: model.generate(conditions[:1], seed=0, **gen),
                                     args.repeats)
    row[f"keras_b{args.batch}_ms"] = 1e3 * timed(
        lambda: model.generate(big, seed=0, batch_size=args.batch, **gen), 1) / args.batch
    if exportable(model):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            if backend == "torch":  # torch's exporter: fixed batch sizes
                paths = {}
                for n in (1, args.batch):
                    paths[n] = os.path.join(tmp, f"{family}_{n}.onnx")
                    export_generator(model, paths[n], steps=gen.get("steps"), batch_size=n)
            else:
                path = os.path.join(tmp, f"{family}.onnx")
                export_generator(model, path, steps=gen.get("steps"))
                paths = {1: path, args.batch: path}
            row["export_s"] = time.perf_counter() - start
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            sessions = {n: ort.InferenceSession(p, options, providers=["CPUExecutionProvider"])
                        for n, p in paths.items()}
            noise1 = generation_noise(model, 1, seed=0)
            noise = generation_noise(model, args.batch, seed=0)
            row["onnx_b1_ms"] = 1e3 * timed(
                lambda: sessions[1].run(None, {"conditions": conditions[:1], "noise": noise1}),
                args.repeats)
            row[f"onnx_b{args.batch}_ms"] = 1e3 * timed(
                lambda: sessions[args.batch].run(None, {"conditions": big, "noise": noise}),
                1) / args.batch
            row["speedup_b1"] = row["keras_b1_ms"] / row["onnx_b1_ms"]
    return row


def main(argv=None):
    args = parse_args(argv)
    import keras
    import numpy as np
    import onnxruntime as ort

    from calozdc.data import simulate

    backend = keras.backend.backend()
    data = simulate("zn44", args.n_fit, seed=0, workers=1)
    showers = np.asarray(data.showers, "float32")[..., None] if np.ndim(data.showers) == 3 \
        else np.asarray(data.showers, "float32")
    conditions = np.asarray(data.conditions, "float32")
    big = np.resize(conditions, (args.batch, conditions.shape[1]))
    rows = []
    for family in args.families:
        row = measure(family, args, showers, conditions, big, backend)
        print(json.dumps(row), flush=True)
        rows.append(row)
    b = args.batch
    print(f"\n{datetime.date.today()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, backend {backend}, onnxruntime {ort.__version__}")
    print(f"| family | steps | Keras b=1 (ms/shower) | ONNX b=1 | speed-up b=1 | "
          f"Keras b={b} | ONNX b={b} |")
    print("|---|---|---|---|---|---|---|")

    def cell(value):
        return "—" if value is None else f"{value:.2f}"

    for r in rows:
        speed = r.get("speedup_b1")
        print(f"| {r['family']} | {r['steps'] or '—'} | {cell(r['keras_b1_ms'])} | "
              f"{cell(r.get('onnx_b1_ms'))} | {'—' if speed is None else f'{speed:.1f}x'} | "
              f"{cell(r[f'keras_b{b}_ms'])} | {cell(r.get(f'onnx_b{b}_ms'))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
