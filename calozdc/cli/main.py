"""The ``calozdc`` command: ``calozdc {simulate,info,convert,train,generate,evaluate,tune}``.

Each sub-command lives in its own module of :mod:`calozdc.cli` with a ``register(subparsers)``
function that adds its parser and sets ``func`` (a callable taking the parsed args and
returning an exit code or None). Errors a user can cause (``ValueError``, ``OSError``,
``KeyError``, :class:`CLIError`) print one line on stderr and exit with code 2; ``--debug``
shows the traceback instead.
"""

import argparse
import importlib
import os
import sys

# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) is noise on a CLI.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from calozdc.version import __version__

#: Sub-command modules, in the order they appear in ``calozdc --help``.
COMMAND_MODULES = ("simulate", "info", "convert", "train", "generate", "evaluate", "tune")


class CLIError(Exception):
    """An error caused by the user's input, reported without a traceback."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="calozdc",
        description="Fast generative calorimeter simulation (Keras 3: TensorFlow, JAX, PyTorch).",
    )
    parser.add_argument("--version", action="version", version=f"calozdc {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f"calozdc.cli.{name}").register(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except (CLIError, ValueError, OSError, KeyError) as err:
        if args.debug:
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"calozdc {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"calozdc {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0 if code is None else int(code)


if __name__ == "__main__":
    sys.exit(main())
