"""``calozdc generate RUN_DIR -n N -o OUT.h5``: sample showers from a trained run.

The model samples with the run's generation settings (``config.generation`` of its
``run.json``, e.g. ``steps``/``solver`` of a flow run; see :mod:`calozdc.cli.train_config`);
``--set KEY=VALUE`` overrides one of them.
"""

import inspect
import os


def register(subparsers):
    p = subparsers.add_parser(
        "generate", help="generate showers with a trained model (run directory)",
        description="Generate showers in physical units from RUN_DIR/model.keras; conditions come "
                    "from a file or are sampled like the built-in simulator does.",
    )
    p.add_argument("run_dir", help="run directory written by `calozdc train`")
    p.add_argument("-n", "--n", type=int, default=None,
                   help="number of showers (default: all rows of --conditions)")
    p.add_argument("-o", "--output", required=True, help="output HDF5 file")
    p.add_argument("--conditions", default=None,
                   help="shower file whose conditions (and PDG ids) to use")
    p.add_argument("--energy-range", nargs=2, type=float, metavar=("LO", "HI"), default=None,
                   help="energy range of sampled conditions (geometry units)")
    p.add_argument("--particles", default=None,
                   help="comma-separated particle names or PDG ids for sampled conditions")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--batch-size", type=int, default=1024, help="generation batch size")
    p.add_argument("--set", dest="set", action="append", default=None, metavar="KEY=VALUE",
                   help="override a generation setting of the run (ddim: steps, eta, "
                        "guidance; flow: steps, solver, guidance), e.g. --set steps=50")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars (stderr) and no summary line")
    p.set_defaults(func=run)


def _conditions(args, run_info):
    from calozdc.data import load, simulate

    if args.conditions is not None:
        if args.energy_range is not None or args.particles is not None:
            raise ValueError("--conditions cannot be combined with --energy-range/--particles.")
        source = load(args.conditions)
        n = len(source) if args.n is None else args.n
        if not 0 < n <= len(source):
            raise ValueError(
                f"-n must be in [1, {len(source)}] for this conditions file. Received: n={n}"
            )
        return source, n
    if args.n is None or args.n < 1:
        raise ValueError(f"-n must be a positive integer. Received: n={args.n}")
    geometry = run_info.get("geometry")
    if geometry is None:
        raise ValueError(
            "This run has no named geometry; pass --conditions FILE to give the conditions."
        )
    particles = args.particles.split(",") if args.particles else None
    # The simulator's condition sampler: simulate and keep only the conditions.
    return simulate(geometry, args.n, seed=args.seed, particles=particles,
                    energy_range=args.energy_range, verbose=not args.quiet), args.n


def run(args):
    import numpy as np

    import calozdc.models  # noqa: F401  (registers the model classes)
    from calozdc.cli.run_dir import load_run_model, read_run_info
    from calozdc.cli.train_config import generation_settings, parse_set
    from calozdc.data import ShowerDataset, save

    run_info = read_run_info(args.run_dir)  # one clear error per problem (future versions...)
    sets = parse_set(args.set)
    if os.path.exists(args.output) and not args.overwrite:
        raise ValueError(
            f"Output exists (use --overwrite to replace it). Received: {args.output!r}"
        )
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1. Received: {args.batch_size}")
    source, n = _conditions(args, run_info)
    conditions = np.asarray(source.conditions[:n], dtype="float32")
    if conditions.shape[1] != run_info.get("condition_dim", conditions.shape[1]):
        raise ValueError(
            f"The model takes {run_info['condition_dim']} conditions. "
            f"Received: {conditions.shape[1]} columns"
        )
    model, _ = load_run_model(args.run_dir, run_info)
    options = generation_settings(run_info, model, sets)
    if "verbose" in inspect.signature(model.generate).parameters:  # calozdc models
        options["verbose"] = not args.quiet
    showers = model.generate(conditions, seed=args.seed, batch_size=args.batch_size, **options)
    pdg = None if source.pdg is None else np.asarray(source.pdg[:n])
    metadata = {"generated_by": run_info.get("family"), "run_dir": os.path.abspath(args.run_dir),
                "seed": args.seed}
    out = ShowerDataset(showers, conditions, pdg=pdg, condition_names=source.condition_names,
                        geometry=source.geometry, metadata=metadata)
    save(out, args.output, overwrite=args.overwrite)
    if not args.quiet:
        print(f"calozdc generate: wrote {n} showers to {args.output}")
    return 0
