"""``calozdc info FILE``: summarise a shower file (format, size, shapes, energies, particles)
and say what is wrong with its values (NaN/inf or negative cells, empty showers, NaN/inf
conditions, incident energies <= 0), each problem with a count and its first index.

``--check`` makes the problems the exit code: 0 when the values are clean, 2 when any problem
is found (the summary is printed either way, then one line on stderr).
"""

import json
import sys


def register(subparsers):
    p = subparsers.add_parser(
        "info",
        help="summarise a shower file and check its values",
        description="Print a summary of a calozdc / CaloChallenge HDF5 file or an ALICE ZDC "
                    "npz pair, and what is wrong with its values: NaN/inf or negative cells, "
                    "empty (all-zero) showers, NaN/inf conditions, layers or PDG ids, "
                    "incident energies <= 0 (each with a count and the first index). HDF5 "
                    "showers are read in chunks (memory does not grow with the file). A file "
                    "with bad values is still described; --check exits with code 2 then.",
    )
    p.add_argument("file", help="HDF5 file, ALICE responses .npz, or a directory with the pair")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--check", action="store_true",
                   help="exit with code 2 when any problem is found (0 when the values are clean)")
    p.add_argument("--no-scan", dest="scan", action="store_false",
                   help="do not read the showers (faster on large files; conditions, layers "
                        "and PDG ids are still checked)")
    p.add_argument("--format", default=None,
                   help="calozdc, calochallenge or alice (default: detected)")
    p.add_argument("--grid-shape", nargs="+", type=int, default=None, metavar="N",
                   help="CaloChallenge grid H W (or L H W) when the file does not record it")
    p.add_argument("--particles", default=None, help="ALICE particles .npz when not beside FILE")
    p.set_defaults(func=run)


def format_summary(summary):
    """Human-readable lines of :func:`calozdc.data.info`'s dict."""
    from calozdc.data.io import describe_problem  # noqa: PLC0415

    unit = summary["energy_unit"] or "?"
    if summary["energy_range"] is None:
        energy = "no finite values"
    else:
        lo, hi = summary["energy_range"]
        energy = f"{lo:.6g} .. {hi:.6g} {unit}"
    lines = [
        f"file:        {summary['path']}",
        f"format:      {summary['format']}"
        + (f" (calozdc {summary['calozdc_version']})" if summary["calozdc_version"] else ""),
        f"showers:     {summary['n_showers']} x {summary['shower_shape'][0]} x "
        f"{summary['shower_shape'][1]} ({summary['response_unit'] or '?'})",
        f"geometry:    {summary['geometry']}",
        f"conditions:  {summary['n_conditions']} ({', '.join(summary['condition_names'])})",
        f"energy:      {energy}",
        f"layers:      {summary['n_layers']}",
    ]
    if summary["particles"]:
        n = summary["n_showers"]
        parts = ", ".join(
            f"{p['name']} ({p['pdg']}): {p['count']} ({100.0 * p['count'] / n:.1f}%)"
            for p in summary["particles"]
        )
        lines.append(f"particles:   {parts}")
    problems = summary.get("problems") or []
    if problems:
        for i, problem in enumerate(problems):
            lines.append(("problems:    " if i == 0 else " " * 13) + describe_problem(problem))
    else:
        scanned = "" if summary.get("showers_scanned", True) else " (showers not read: --no-scan)"
        lines.append(f"problems:    none{scanned}")
    return "\n".join(lines)


def run(args):
    from calozdc.data import io  # noqa: PLC0415 (keep `calozdc --help` fast)

    summary = io.info(args.file, format=args.format, grid_shape=args.grid_shape,
                      particles_path=args.particles, scan=args.scan)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    problems = summary["problems"]
    if args.check and problems:
        sys.stdout.flush()
        n = len(problems)
        print(f"calozdc info: check failed: {summary['path']}: {n} problem{'s' * (n != 1)} "
              f"({'; '.join(io.describe_problem(p) for p in problems)})", file=sys.stderr)
        return 2
    return 0
