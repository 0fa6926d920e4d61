"""TensorFlow, JAX and PyTorch may be imported only under calozdc/backend/ (STYLE.md, habit 2)."""

import ast
import pathlib

import calozdc

FRAMEWORKS = {"tensorflow", "jax", "jaxlib", "torch"}
ROOT = pathlib.Path(calozdc.__file__).parent


def _framework_imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", ""))
              in ("import_module", "__import__") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            names = [node.args[0].value]
        else:
            continue
        found += [(node.lineno, n) for n in names if n.split(".")[0] in FRAMEWORKS]
    return found


def test_scanner_detects_framework_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import os\nimport jax.numpy as jnp\nfrom torch import nn\n"
                   "import importlib\nimportlib.import_module('tensorflow')\n")
    assert [n for _, n in _framework_imports(src)] == ["jax.numpy", "torch", "tensorflow"]


def test_no_framework_imports_outside_backend():
    offenders = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] == "backend":
            continue
        offenders += [f"{rel}:{line}: {name}" for line, name in _framework_imports(path)]
    assert offenders == [], "framework imports outside calozdc/backend/:\n" + "\n".join(offenders)


def test_import_calozdc_loads_no_framework():
    import subprocess
    import sys

    code = ("import sys, calozdc, calozdc.data; "
            "print(sorted(m for m in ('tensorflow', 'jax', 'torch', 'keras') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
