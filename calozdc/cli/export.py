"""``calozdc export RUN_DIR -o model.onnx``: a trained run as one ONNX file or SavedModel.

The whole generator goes into one graph (condition transform, networks, the fixed-step
sampler, inverse shower transform; the caller draws the noise), with a model card
``<output>.json`` beside it (:mod:`calozdc.export`). Sampler settings default to the run's
generation settings (``run.json``), then to the model's ``generate`` defaults.
"""

import os


def _batch_size(text):
    if text == "dynamic":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"--batch-size must be a positive integer or 'dynamic'. Received: {text!r}")
    return value


def register(subparsers):
    p = subparsers.add_parser(
        "export", help="export a trained model (run directory) to ONNX or a SavedModel",
        description="Write RUN_DIR/model.keras as one graph (conditions, noise) -> showers with "
                    "the sampler and transforms inside, plus a JSON model card beside it.",
    )
    p.add_argument("run_dir", help="run directory written by `calozdc train`")
    p.add_argument("-o", "--output", required=True,
                   help="output file (.onnx) or directory (saved_model)")
    p.add_argument("--format", default="onnx",
                   help="onnx (default) or saved_model (TensorFlow SavedModel, endpoint 'serve')")
    p.add_argument("--steps", type=int, default=None,
                   help="sampler steps baked in (DDIM, flow; default: the run's setting)")
    p.add_argument("--solver", default=None,
                   help="flow ODE solver: euler, midpoint or heun (default: the run's setting)")
    p.add_argument("--guidance", type=float, default=None,
                   help="classifier-free guidance scale (default: the run's setting, else 0)")
    p.add_argument("--batch-size", default="dynamic",
                   help="a fixed batch size, or 'dynamic' (default)")
    p.add_argument("--layout", default="calozdc",
                   help="calozdc (default) or alice-o2 (ALICE O2's ZDC fast-simulation "
                        "interface; writes the means/scales file too)")
    p.add_argument("--part", default="generator",
                   help="generator (default) or decoder (a VQ generator's decoder given codes)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    p.set_defaults(func=run)


def run(args):
    from calozdc.export.export_generator import FORMATS, scales_path
    from calozdc.export.layouts import LAYOUTS
    from calozdc.export.model_card import card_path

    # Checks that need no model first: a bad option writes nothing and loads nothing.
    if args.format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}. Received: {args.format!r}")
    if args.layout not in LAYOUTS:
        raise ValueError(f"--layout must be one of {LAYOUTS}. Received: {args.layout!r}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be a positive integer. Received: {args.steps}")
    batch_size = _batch_size(args.batch_size)
    outputs = [args.output, card_path(args.output)]
    if args.layout == "alice-o2":
        outputs.append(scales_path(args.output))
    for path in outputs:
        if os.path.exists(path) and not args.overwrite:
            raise ValueError(f"Output exists (use --overwrite to replace it). Received: {path!r}")

    from calozdc.cli.run_dir import load_run_model, read_run_info
    from calozdc.cli.train_config import generation_settings
    from calozdc.export import export_generator

    run_info = read_run_info(args.run_dir)
    model, _ = load_run_model(args.run_dir, run_info)
    settings = generation_settings(run_info, model) if args.part == "generator" else {}
    if float(settings.get("eta") or 0.0) > 0:
        raise ValueError(
            "The run samples with eta > 0 (DDPM-like noise at every step, drawn inside Keras), "
            "which is not exported; the exported DDIM is the deterministic eta = 0 sampler. "
            f"Received: eta={settings['eta']}"
        )
    steps = args.steps if args.steps is not None else settings.get("steps")
    solver = args.solver if args.solver is not None else settings.get("solver")
    guidance = args.guidance if args.guidance is not None else settings.get("guidance", 0.0)
    card = export_generator(
        model, args.output, format=args.format, steps=steps, solver=solver,
        guidance=guidance or 0.0, batch_size=batch_size, layout=args.layout, part=args.part,
        overwrite=args.overwrite, condition_names=run_info.get("condition_names") or None,
        run_dir=args.run_dir,
    )
    if not args.quiet:
        sampler = ", ".join(f"{k}={v}" for k, v in card["sampler"].items())
        print(f"calozdc export: wrote {args.output} ({args.format}, layout {args.layout}"
              f"{', ' + sampler if sampler else ''}) and {card_path(args.output)}")
    return 0
