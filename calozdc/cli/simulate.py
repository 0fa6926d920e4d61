"""``calozdc simulate``: write built-in simulator showers to a calozdc HDF5 file."""

import os

from calozdc.data.geometry import available_geometries


def register(subparsers):
    p = subparsers.add_parser(
        "simulate",
        help="simulate showers with the built-in parametrised model (no download)",
        description="Simulate calorimeter showers (GFlash EM / hadron showers) into an HDF5 file.",
    )
    p.add_argument("geometry", choices=available_geometries(), help="detector geometry")
    p.add_argument("-n", "--n", type=int, required=True, help="number of showers")
    p.add_argument("-o", "--output", required=True, help="output HDF5 file")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--particles", default=None,
                   help="comma-separated particle names or PDG ids (default: the geometry's mix)")
    p.add_argument("--energy-range", nargs=2, type=float, metavar=("LO", "HI"), default=None,
                   help="log-uniform energy range in the geometry's unit (zn44: GeV, ecal20: MeV)")
    p.add_argument("--impact-halfwidth-mm", type=float, default=None,
                   help="impact points uniform within +-this of the centre (test-beam style)")
    p.add_argument("--angle-halfwidth-mrad", type=float, default=None,
                   help="angles to the axis uniform within +-this")
    p.add_argument("--impact-point-mm", nargs=2, type=float, metavar=("X", "Y"), default=None,
                   help="centre of the test-beam impact spread (default: detector centre)")
    p.add_argument("--response", choices=("photons", "energy"), default=None,
                   help="zn44: Cherenkov photons (default) or visible energy in MeV")
    p.add_argument("--n-layers", type=int, default=None, help="longitudinal layers recorded")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="worker processes (results do not depend on it)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args):
    from calozdc.data import get_geometry, io  # noqa: PLC0415

    if os.path.exists(args.output) and not args.overwrite:
        raise FileExistsError(
            f"Output exists; pass --overwrite to replace it. Received: output={args.output!r}"
        )
    kwargs = {} if args.n_layers is None else {"n_layers": args.n_layers}
    geometry = get_geometry(args.geometry, **kwargs)
    # streamed chunk by chunk into the file: memory does not grow with --n
    io.save_simulation(
        args.output, geometry, args.n, overwrite=args.overwrite, seed=args.seed,
        particles=args.particles, energy_range=args.energy_range,
        impact_halfwidth_mm=args.impact_halfwidth_mm,
        angle_halfwidth_mrad=args.angle_halfwidth_mrad, response=args.response,
        impact_point_mm=args.impact_point_mm, workers=args.workers, verbose=not args.quiet,
    )
    if not args.quiet:
        print(f"wrote {args.n} {geometry.name} showers to {args.output}")
