"""``calozdc presets [FAMILY]``: list the named option sets of ``calozdc train --preset``.

One line per preset: ``FAMILY NAME: description; option=value ...`` (values as JSON, the
form ``--set`` takes). Imports no framework (:mod:`calozdc.presets`).
"""


def register(subparsers):
    from calozdc.names import available_families

    p = subparsers.add_parser(
        "presets", help="list the presets of `calozdc train --preset` (one line each)",
        description="List the named option sets (presets) of each model family: name, "
                    "description and the options it sets (values as JSON, as --set takes "
                    "them). `calozdc train FAMILY --preset NAME` uses one; --config and --set "
                    "override its options.",
    )
    p.add_argument("family", nargs="?", choices=available_families(), default=None,
                   help="only this family's presets")
    p.set_defaults(func=run)


def run(args):
    from calozdc.presets import describe

    for line in describe(args.family):
        print(line)
    return 0
