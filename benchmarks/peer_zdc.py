"""The ZDC peer's ViT GAN, timed in calozdc (each Keras backend) and in the peer's own JAX code.

One run, one machine, one thread count: the training step (one discriminator and one generator
update) of the peer-size ViT GAN (:func:`calozdc.models.vit.zdc_gan_networks`: generator
915,841 + discriminator 1,422,337 parameters, zn44 images, 9 conditions) at batch 256 under
each Keras backend, and the peer's jitted ``step_fn`` (github.com/m-wojnar/zdc, timed by the
peer's harness ``bench_peer.py``); then milliseconds per generated shower (generator at
``training=False``, batch 1024) on both sides. Each side runs in its own subprocess, one after
the other, with the same thread settings (``--threads 1``: ``OMP_NUM_THREADS=1``, XLA's
``--xla_cpu_multi_thread_eigen=false``, TensorFlow's intra/inter-op pools of 1 thread); the
median of ``--steps`` timed steps after ``--warmup`` untimed ones is reported, with the ratio
to the peer.

The calozdc step is :class:`~calozdc.models.gan.ConditionalGAN`'s ``fit`` step with the peer's
BCE (hard labels 1/0) and Adam settings (no generator loss terms, no total model); inputs are
random with the peer's shapes and scaling (as ``bench_peer.py``): sparse ``log(1 + counts)``
images and N(0, 1) conditions.

The peer side needs the peer's source exported to ``PEER_DIR/src`` beside a copy of
``shared/peers/zdc/bench_peer.py`` and a Python with the peer's pins (jax/jaxlib 0.4.26, flax
0.8.2, optax 0.1.9; ``shared/peers/zdc/README.md``); without ``--peer-python`` only the
calozdc side runs. Example (a few steps: the machine is shared)::

    python benchmarks/peer_zdc.py --steps 3 --warmup 2 --gen-reps 3 \\
        --peer-dir /tmp/peer_zdc --peer-python /tmp/peervenv/bin/python
"""

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
BACKENDS = ("tensorflow", "jax", "torch")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--batch-size", type=int, default=256, help="training batch (peer: 256)")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compile)")
    parser.add_argument("--gen-batch", type=int, default=1024, help="generation batch (peer: 1024)")
    parser.add_argument("--gen-reps", type=int, default=3, help="timed generation calls")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of every framework (the peer's harness default: 1)")
    parser.add_argument("--peer-dir", default=None,
                        help="folder with bench_peer.py and the peer's source in src/")
    parser.add_argument("--peer-python", default=None,
                        help="Python with the peer's pins (none: calozdc side only)")
    parser.add_argument("--xla-probe", action="store_true",
                        help="also time one plain-JAX transformer trunk under both jax versions "
                             "and the same trunk of calozdc layers (_peer_xla_probe.py)")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("batch_size", "steps", "warmup", "gen_batch", "gen_reps", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1. "
                         f"Received: {getattr(args, name)}")
    if args.peer_python and not args.peer_dir:
        parser.error("--peer-python needs --peer-dir (bench_peer.py and src/)")
    return args


def thread_env(threads):
    """Environment that limits TensorFlow, XLA (JAX) and torch/OpenMP to ``threads``."""
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS"):
        env[var] = str(threads)
    if threads == 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"})
    env.pop("JAX_DISABLE_MOST_OPTIMIZATIONS", None)  # time the optimised programs
    return env


def peer_like_batch(n, seed=0):
    """Random inputs with the peer's shapes and scaling (as ``bench_peer.fake_batch``)."""
    rng = np.random.default_rng(seed)
    counts = np.floor(rng.exponential(size=(n, 44, 44, 1)) * 20.0)
    images = np.log1p(np.where(rng.uniform(size=counts.shape) < 0.3, counts, 0.0))
    return images.astype("float32"), rng.standard_normal((n, 9)).astype("float32")


def summary(seconds):
    ms = [1e3 * s for s in seconds]
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms), "n": len(ms)}


def run_worker(args):
    """The calozdc side under the current KERAS_BACKEND; prints one JSON line."""
    import keras
    from _gan_timing import timed_fit

    from calozdc.models.gan import ConditionalGAN
    from calozdc.models.vit import ZDC_PARAMETERS, zdc_gan_networks
    from calozdc.models.vit.presets import ZDC_GAN

    generator, discriminator = zdc_gan_networks(seed=0)
    counts = {"generator": generator.count_params(), "discriminator": discriminator.count_params()}
    assert counts == {k: ZDC_PARAMETERS[k] for k in counts}, counts
    gan = ConditionalGAN(generator, discriminator, ZDC_GAN["latent_dim"], real_label=1.0,
                         fake_label=0.0, seed=0)
    # The peer's Adam settings (its one-cycle schedules cost nothing extra; a constant rate here).
    gan.compile(g_optimizer=keras.optimizers.Adam(1e-4, beta_1=0.76, beta_2=0.54, epsilon=1.8e-2),
                d_optimizer=keras.optimizers.Adam(1.4e-5, beta_1=0.97, beta_2=0.96, epsilon=3.7e-5))
    x, c = peer_like_batch(2 * args.batch_size)
    per_step, warmup_s = timed_fit(gan, x, c, args.batch_size, args.steps, args.warmup)
    result = {"backend": keras.backend.backend(), "params": counts,
              "train_step": summary(per_step), "train_warmup_incl_compile_s": warmup_s}

    _, cond = peer_like_batch(args.gen_batch, seed=7)
    rng = np.random.default_rng(1)

    def noise():
        return rng.standard_normal((args.gen_batch, ZDC_GAN["latent_dim"])).astype("float32")

    start = time.perf_counter()
    out = generator.predict_on_batch([noise(), cond])  # compiles on JAX / TensorFlow
    result["generate_first_call_incl_compile_s"] = time.perf_counter() - start
    times = []
    for _ in range(args.gen_reps):
        z = noise()
        start = time.perf_counter()
        out = generator.predict_on_batch([z, cond])
        np.asarray(out)
        times.append(time.perf_counter() - start)
    result["generate"] = summary(times)
    result["generate"]["ms_per_shower"] = result["generate"]["median_ms"] / args.gen_batch
    result["generate"]["output_shape"] = list(np.asarray(out).shape)
    print(json.dumps(result))


def _last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON line in the output:\n{text[-2000:]}")


def run_calozdc(args, backend):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", backend,
           "--batch-size", str(args.batch_size), "--steps", str(args.steps),
           "--warmup", str(args.warmup), "--gen-batch", str(args.gen_batch),
           "--gen-reps", str(args.gen_reps), "--threads", str(args.threads)]
    env = thread_env(args.threads)
    env["KERAS_BACKEND"] = backend
    env["PYTHONPATH"] = os.pathsep.join([HERE, os.path.dirname(HERE), env.get("PYTHONPATH", "")])
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"{backend} worker failed:\n{proc.stderr[-3000:]}")
    result = _last_json(proc.stdout)
    result["wall_s"] = time.perf_counter() - start
    return result


def run_peer(args):
    cmd = [args.peer_python, os.path.join(args.peer_dir, "bench_peer.py"),
           "--threads", str(args.threads), "--gan-batch", str(args.batch_size),
           "--steps", str(args.steps), "--warmup", str(args.warmup),
           "--gen-batch", str(args.gen_batch), "--gen-reps", str(args.gen_reps),
           "--no-vq", "--no-diffusion", "--tabulate", "0"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=thread_env(args.threads), capture_output=True, text=True,
                          check=False, cwd=args.peer_dir)
    if proc.returncode:
        raise RuntimeError(f"peer harness failed:\n{proc.stderr[-3000:]}")
    gan = _last_json(proc.stdout)["gan"]
    return {"backend": "peer (JAX/flax)", "params": gan["params"],
            "train_step": {k: gan["train_step"][k] for k in ("median_ms", "min_ms", "max_ms", "n")},
            "train_warmup_incl_compile_s": gan["train_first_call_incl_compile_s"],
            "generate": {"median_ms": gan["generate"]["median_ms"],
                         "ms_per_shower": gan["generate"]["ms_per_sample"],
                         "n": gan["generate"]["n"]},
            "wall_s": time.perf_counter() - start}


def run_probes(args):
    """``_peer_xla_probe.py`` under the peer's Python and ours (plain JAX, then calozdc
    blocks without and with dropout)."""
    script = os.path.join(HERE, "_peer_xla_probe.py")
    env = thread_env(args.threads)
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(HERE), env.get("PYTHONPATH", "")])
    runs = [[sys.executable, script], [sys.executable, script, "--keras"],
            [sys.executable, script, "--keras", "--dropout", "0.1"]]
    if args.peer_python:
        runs.insert(0, [args.peer_python, script])
    probes = []
    for cmd in runs:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"probe {cmd[1:]} failed:\n{proc.stderr[-2000:]}")
        probes.append(_last_json(proc.stdout))
    return probes


def report(args, results, load_start, probes=()):
    from importlib.metadata import version

    peer = next((r for r in results if r["backend"].startswith("peer")), None)
    print("## The ZDC peer's ViT GAN: calozdc vs the peer\n")
    print(f"- command: `{shlex.join(['python', os.path.relpath(sys.argv[0])] + sys.argv[1:])}`")
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
    print(f"- machine: {platform.platform()}, {os.cpu_count()} CPUs (shared/loaded), load average "
          f"{load_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
          f"{args.threads} thread(s) per framework; keras {version('keras')}")
    print(f"- model: generator {results[0]['params']['generator']:,} + discriminator "
          f"{results[0]['params']['discriminator']:,} parameters; train batch {args.batch_size}, "
          f"median of {args.steps} steps after {args.warmup} warm-up; generation batch "
          f"{args.gen_batch}, median of {args.gen_reps} calls\n")
    print("| side | ms / train step (median) | min-max | ratio to peer | ms / shower (generation) "
          "| ratio to peer | first step(s) incl. compile (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        step, gen = r["train_step"], r["generate"]
        ratio = f"{step['median_ms'] / peer['train_step']['median_ms']:.2f}" if peer else "-"
        gratio = f"{gen['ms_per_shower'] / peer['generate']['ms_per_shower']:.2f}" if peer else "-"
        print(f"| {r['backend']} | {step['median_ms']:.0f} | {step['min_ms']:.0f}-"
              f"{step['max_ms']:.0f} | {ratio} | {gen['ms_per_shower']:.3f} | {gratio} "
              f"| {r['train_warmup_incl_compile_s']:.0f} |")
    if probes:
        print("\nThe peer's transformer trunk (4 blocks, d 128, 37 tokens, batch 256), forward + "
              "backward, jitted:\n")
        print("| program | jax | ms (median) |")
        print("|---|---|---:|")
        for r in probes:
            print(f"| {r['program']} | {r['jax']} | {r['median_ms']:.0f} |")
    print("\n```json\n" + json.dumps(results + probes) + "\n```")


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return
    load_start = os.getloadavg()[0]
    results = []
    for backend in args.backends:
        print(f"[peer_zdc] calozdc on {backend} ...", file=sys.stderr, flush=True)
        results.append(run_calozdc(args, backend))
    if args.peer_python:
        print("[peer_zdc] the peer (JAX/flax) ...", file=sys.stderr, flush=True)
        results.append(run_peer(args))
    probes = []
    if args.xla_probe:
        print("[peer_zdc] XLA probes ...", file=sys.stderr, flush=True)
        probes = run_probes(args)
    report(args, results, load_start, probes)


if __name__ == "__main__":
    main()
