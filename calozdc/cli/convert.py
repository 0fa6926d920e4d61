"""``calozdc convert IN OUT``: convert between calozdc HDF5, CaloChallenge HDF5 and ALICE npz."""


def register(subparsers):
    p = subparsers.add_parser(
        "convert",
        help="convert a shower file to another format",
        description="Convert between calozdc HDF5, CaloChallenge HDF5 (energies in MeV) and the "
                    "ALICE ZDC npz pair. HDF5 inputs are streamed in chunks.",
    )
    p.add_argument("input", help="input file (format detected), or a directory with the ALICE pair")
    p.add_argument("output", help="output file (for alice: the responses .npz or a directory)")
    p.add_argument("--format", default=None,
                   help="output format: calozdc, calochallenge or alice (default: alice for a "
                        ".npz output, else calozdc)")
    p.add_argument("--input-format", default=None, help="input format (default: detected)")
    p.add_argument("--grid-shape", nargs="+", type=int, default=None, metavar="N",
                   help="CaloChallenge input grid H W (or L H W) when the file does not record it")
    p.add_argument("--geometry", default=None, help="geometry to attach (zn44, ecal20)")
    p.add_argument("--particles", default=None,
                   help="ALICE particles .npz of the input when not beside it")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=run)


def run(args):
    from calozdc.data import io  # noqa: PLC0415 (keep `calozdc --help` fast)

    out_format = args.format
    if out_format is None:
        out_format = "alice" if str(args.output).endswith(".npz") else "calozdc"
    if out_format not in io.FORMATS:
        raise ValueError(
            f"Unknown output format. Expected one of {io.FORMATS}. Received: --format={out_format}"
        )
    ds = io.load(args.input, format=args.input_format, geometry=args.geometry,
                 grid_shape=args.grid_shape, lazy=True, particles_path=args.particles)
    written = io.save(ds, args.output, format=out_format, overwrite=args.overwrite)
    if not args.quiet:
        written = " and ".join(written) if isinstance(written, tuple) else written
        print(f"wrote {len(ds)} showers ({out_format}) to {written}")
