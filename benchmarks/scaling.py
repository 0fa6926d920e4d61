"""Data-parallel scaling: GAN train-step time on 1, 2, 4, 8 devices for one global batch.

Trains the default GAN of the model registry (``build_model("gan", ...)``, zn44 unless
``--geometry``) with ``model.fit`` inside :func:`calozdc.backend.distribution_scope`
(``"none"`` for 1 device, ``"data-parallel"`` otherwise) and reports the median time of
``--steps`` timed steps after ``--warmup`` untimed ones (compile), the throughput and the
overhead ratio ``t(n) / t(1)`` for the same global batch.

Without accelerators the devices are simulated by splitting the host CPU (JAX
``--xla_force_host_platform_device_count``, TensorFlow logical CPU devices); the count must be
set before the backend starts, so the script runs itself once per (backend, device count) in a
fresh process. On simulated devices all "devices" share the same cores: the ratio measures
the cost of partitioning the step (collectives, per-device kernels), not a speed-up; on real
GPUs/TPUs it measures scaling.

    python benchmarks/scaling.py --backends jax,tensorflow --devices 1,2,4,8 --steps 10

Prints a markdown table and writes JSON to ``benchmarks/out/`` (``--out``).
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="jax", help="comma-separated: jax,tensorflow")
    parser.add_argument("--devices", default="1,2,4,8", help="comma-separated device counts")
    parser.add_argument("--geometry", default="zn44")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch size")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compile)")
    parser.add_argument("--out", default=None,
                        help="JSON path (default benchmarks/out/scaling-<date>.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        args.devices = [int(n) for n in args.devices.split(",")]
    except ValueError:
        parser.error(f"--devices must be comma-separated integers. Received: {args.devices!r}")
    for backend in args.backends:
        if backend not in ("jax", "tensorflow"):
            parser.error(f"--backends: data parallel runs on jax and tensorflow. Received: {backend!r}")
    for n in args.devices:
        if n < 1 or args.batch_size % n:
            parser.error(f"every device count must be >= 1 and divide --batch-size "
                         f"{args.batch_size}. Received: {n}")
    for name in ("batch_size", "steps", "warmup"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1. Received: {getattr(args, name)}")
    return args


def worker(args):
    """One backend and device count (this process's devices are set before the backend starts)."""
    sys.path.insert(0, ROOT)
    n = args.devices[0]
    from calozdc.backend import distribution

    if os.environ.get("KERAS_BACKEND") == "tensorflow":
        distribution.configure_cpu_devices(n)
    import keras
    import numpy as np
    from _gan_timing import gan_training_data, timed_fit

    from calozdc.data import get_geometry
    from calozdc.models.registry import build_model

    geometry = get_geometry(args.geometry)
    x, c, shower_t, cond_t = gan_training_data(geometry, args.batch_size)
    accelerators = [d for d in distribution.available_devices() if not d.startswith("cpu")]
    kind = "none" if n == 1 else "data-parallel"

    load_before = os.getloadavg()[0]
    with distribution.distribution_scope(kind, n if kind != "none" else None):
        model = build_model("gan", geometry, c.shape[1], shower_transform=shower_t,
                            condition_transform=cond_t, seed=0)
        per_step, warmup_s = timed_fit(model, x, c, args.batch_size, args.steps, args.warmup)
    result = {
        "backend": keras.backend.backend(),
        "devices": n,
        "device_kind": accelerators[0].split(":")[0] if accelerators else "cpu (simulated)",
        "ms_median": 1e3 * float(np.median(per_step)),
        "ms_mean": 1e3 * float(np.mean(per_step)),
        "warmup_s": warmup_s,
        "parameters": int(model.generator.count_params() + model.discriminator.count_params()),
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    print("RESULT " + json.dumps(result))


def run_one(args, backend, n):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    if backend == "jax":
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}").strip()
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--backends", backend,
           "--devices", str(n), "--geometry", args.geometry, "--batch-size", str(args.batch_size),
           "--steps", str(args.steps), "--warmup", str(args.warmup)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"backend": backend, "devices": n, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        worker(args)
        return
    stamp = datetime.datetime.now()
    out = args.out or os.path.join(HERE, "out", f"scaling-{stamp:%Y%m%d-%H%M%S}.json")
    if os.path.exists(out) and not args.overwrite:
        raise SystemExit(f"{out} exists; pass --overwrite to replace it.")
    results = []
    for backend in args.backends:
        base = None
        for n in args.devices:
            r = run_one(args, backend, n)
            if "error" not in r:
                if n == 1:
                    base = r["ms_median"]
                r["ratio_to_1"] = None if base is None else r["ms_median"] / base
            results.append(r)
            print(f"  {backend} x{n}: {r.get('ms_median', r.get('error'))}", file=sys.stderr, flush=True)
    command = shlex.join(["python", os.path.relpath(os.path.abspath(__file__), ROOT)]
                         + [a for a in (argv if argv is not None else sys.argv[1:])])
    meta = {
        "command": command,
        "date": stamp.isoformat(timespec="seconds"),
        "machine": f"{platform.platform()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "geometry": args.geometry,
        "global_batch": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
    }
    print("## GAN train step vs number of data-parallel devices\n")
    for key in ("command", "date", "machine"):
        print(f"- {key}: {meta[key]}")
    print(f"- model: registry 'gan' on {args.geometry}, global batch {args.batch_size}, "
          f"median of {args.steps} steps after {args.warmup} warm-up steps\n")
    print("| backend | devices | device kind | ms / step | showers / s | t(n) / t(1) | warm-up (s) "
          "| load avg |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in results:
        if "error" in r:
            print(f"| {r['backend']} | {r['devices']} | failed: {r['error']} | | | | | |")
            continue
        ratio = "" if r["ratio_to_1"] is None else f"{r['ratio_to_1']:.2f}"
        print(f"| {r['backend']} | {r['devices']} | {r['device_kind']} | {r['ms_median']:.1f} "
              f"| {1e3 * args.batch_size / r['ms_median']:.0f} | {ratio} | {r['warmup_s']:.1f} "
              f"| {r['load_before']:.1f} |")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    os.replace(tmp, out)
    print(f"\nJSON: {os.path.relpath(out)}")


if __name__ == "__main__":
    main()
