"""``calozdc info FILE``: summarise a shower file (format, size, shapes, energies, particles)."""

import json


def register(subparsers):
    p = subparsers.add_parser(
        "info",
        help="summarise a shower file",
        description="Print a summary of a calozdc / CaloChallenge HDF5 file or an ALICE ZDC "
                    "npz pair (the showers themselves are not loaded for HDF5 files).",
    )
    p.add_argument("file", help="HDF5 file, ALICE responses .npz, or a directory with the pair")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--format", default=None,
                   help="calozdc, calochallenge or alice (default: detected)")
    p.add_argument("--grid-shape", nargs="+", type=int, default=None, metavar="N",
                   help="CaloChallenge grid H W (or L H W) when the file does not record it")
    p.add_argument("--particles", default=None, help="ALICE particles .npz when not beside FILE")
    p.set_defaults(func=run)


def format_summary(summary):
    """Human-readable lines of :func:`calozdc.data.info`'s dict."""
    unit = summary["energy_unit"] or "?"
    lo, hi = summary["energy_range"]
    lines = [
        f"file:        {summary['path']}",
        f"format:      {summary['format']}"
        + (f" (calozdc {summary['calozdc_version']})" if summary["calozdc_version"] else ""),
        f"showers:     {summary['n_showers']} x {summary['shower_shape'][0]} x "
        f"{summary['shower_shape'][1]} ({summary['response_unit'] or '?'})",
        f"geometry:    {summary['geometry']}",
        f"conditions:  {summary['n_conditions']} ({', '.join(summary['condition_names'])})",
        f"energy:      {lo:.6g} .. {hi:.6g} {unit}",
        f"layers:      {summary['n_layers']}",
    ]
    if summary["particles"]:
        n = summary["n_showers"]
        parts = ", ".join(
            f"{p['name']} ({p['pdg']}): {p['count']} ({100.0 * p['count'] / n:.1f}%)"
            for p in summary["particles"]
        )
        lines.append(f"particles:   {parts}")
    return "\n".join(lines)


def run(args):
    from calozdc.data import io  # noqa: PLC0415 (keep `calozdc --help` fast)

    summary = io.info(args.file, format=args.format, grid_shape=args.grid_shape,
                      particles_path=args.particles)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
