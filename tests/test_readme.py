"""The README's first example runs as written (it parses saved SOS text: no debugger needed)."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_first_python_example_of_the_readme_runs():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.DOTALL)
    done = subprocess.run(
        [sys.executable, "-c", blocks[0]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=ROOT),
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "System.InvalidOperationException The order queue timeout expired 0x80131509" in done.stdout
    assert "ThrowingApp.Program.ThrowInvalidOperation" in done.stdout


def test_readme_names_the_two_setup_commands_and_ci_runs_them():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert readme.index("scripts/setup") < readme.index("scripts/test") < readme.index("```python")
    with open(os.path.join(ROOT, ".ci", "run"), encoding="utf-8") as f:
        ci = f.read()
    assert "scripts/setup\n" in ci and "scripts/test\n" in ci
