"""The ``calozdc`` command: ``calozdc {simulate,info,convert,train,presets,generate,evaluate,tune,export}``.

Each sub-command lives in its own module of :mod:`calozdc.cli` with a ``register(subparsers)``
function that adds its parser and sets ``func`` (a callable taking the parsed args and
returning an exit code or None). Errors a user can cause (``ValueError``, ``OSError``,
``KeyError``, :class:`CLIError`) print one line on stderr and exit with code 2; ``--debug``
shows the traceback instead.

Framework start-up chatter is held back unless ``--debug`` (:func:`quiet_frameworks`):
TensorFlow's C++ log lines (oneDNN notices, CUDA probing on CPU machines, "All log messages
before absl::InitializeLog() ..."), which every command that loads TensorFlow would otherwise
print on stderr.
"""

import argparse
import contextlib
import importlib
import importlib.util
import os
import re
import sys
import tempfile

from calozdc.version import __version__

#: Environment set (with ``os.environ.setdefault``: the user's own values win) before any
#: framework is imported, unless ``--debug``. ``TF_CPP_MIN_LOG_LEVEL=3`` silences TensorFlow's
#: C++ messages below FATAL once TensorFlow has read it ("failed call to cuInit", grappler's
#: "remapper failed", the CPU-feature notice). Child processes (``simulate --workers``)
#: inherit it. (``TF_ENABLE_ONEDNN_OPTS=0`` would also silence the oneDNN notice, but it turns
#: the oneDNN kernels off, so it is not set; the notice is filtered, see
#: :func:`quiet_frameworks`.)
QUIET_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3"}

#: C++ log records and their severity: absl/glog format ``I0101 12:00:00.000000  123
#: file.cc:45] ...`` (before absl is initialised: ``I0000 00:00:1796420933.099979  4565
#: port.cc:153] ...``); older TensorFlow: ``2024-01-01 12:00:00.000000: I file.cc:45] ...``.
_LOG_RECORD = re.compile(
    r"^(?:\d{4}-\d\d-\d\d [\d:.]+: ([IWEF]) |([IWEF])\d{4} [\d:.]+\s+\d+ )\S+:\d+\] "
)
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
#: Frameworks whose first import is watched (their C++ start-up lines come before they read
#: ``TF_CPP_MIN_LOG_LEVEL``).
_WATCHED_IMPORTS = ("tensorflow",)

#: Sub-command modules, in the order they appear in ``calozdc --help``.
COMMAND_MODULES = ("simulate", "info", "convert", "train", "presets", "generate", "evaluate",
                   "tune", "export")


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


def _min_log_level():
    """``TF_CPP_MIN_LOG_LEVEL`` as an int in [0, 3] (0 when unset or not a number)."""
    try:
        return min(3, max(0, int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))))
    except ValueError:
        return 0


def is_startup_chatter(line, level=None):
    """Whether ``line`` (of a framework's start-up output on stderr) is below ``level``
    (default: ``TF_CPP_MIN_LOG_LEVEL``): a C++ log record of severity I/W/E/F (0/1/2/3) under
    it, or absl's "All log messages before absl::InitializeLog()" notice at level >= 1."""
    level = _min_log_level() if level is None else level
    if line.startswith(_ABSL_PREAMBLE):
        return level >= 1
    match = _LOG_RECORD.match(line)
    if match is None:
        return False
    return "IWEF".index(match.group(1) or match.group(2)) < level


@contextlib.contextmanager
def _filtered_stderr():
    """Send file descriptor 2 to a temporary file, then write back to stderr the lines that
    :func:`is_startup_chatter` keeps (Python warnings, real errors)."""
    with contextlib.suppress(AttributeError, OSError, ValueError):  # None or closed
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to redirect
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(AttributeError, OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", errors="replace")
            kept = "".join(line for line in text.splitlines(keepends=True)
                           if not is_startup_chatter(line))
            if kept and sys.stderr is not None:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietFrameworkImport:
    """``sys.meta_path`` entry that finds nothing itself: it asks the other finders for a
    watched framework and runs that module's import inside :func:`_filtered_stderr`
    (TensorFlow writes its C++ start-up lines while its shared libraries load, before it reads
    ``TF_CPP_MIN_LOG_LEVEL``). Probes (``importlib.util.find_spec("tensorflow")``, as Keras
    does) get a wrapped spec too; the finder leaves ``sys.meta_path`` once the module runs."""

    def find_spec(self, name, path=None, target=None):
        if name not in _WATCHED_IMPORTS:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original = loader.exec_module

        def exec_module(module):
            _uninstall(self)
            try:
                with _filtered_stderr():
                    original(module)
            finally:
                with contextlib.suppress(AttributeError):
                    del loader.exec_module  # back to the class's method

        try:
            loader.exec_module = exec_module
        except (AttributeError, TypeError):  # a loader that takes no attributes: not filtered
            pass
        return spec


def _uninstall(finder):
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(finder)


@contextlib.contextmanager
def quiet_frameworks():
    """For the duration of a command: the :data:`QUIET_ENV` defaults in ``os.environ`` (kept
    afterwards, so that child processes inherit them) and, while no watched framework is
    loaded yet, its start-up lines below ``TF_CPP_MIN_LOG_LEVEL`` filtered from stderr."""
    for key, value in QUIET_ENV.items():
        os.environ.setdefault(key, value)
    finder = None
    if not any(name in sys.modules for name in _WATCHED_IMPORTS):
        finder = _QuietFrameworkImport()
        sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        if finder is not None:
            _uninstall(finder)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)  # imports no framework: the commands import them lazily
    quiet = contextlib.nullcontext() if args.debug else quiet_frameworks()
    try:
        with quiet:
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
