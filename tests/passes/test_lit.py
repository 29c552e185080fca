"""Runs the textual pass tests (``tests/passes/*.mlir``) with lit, so ``pytest`` covers them."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_lit_pass_tests() -> None:
    # lit has no ``__main__``; its console script is this call
    command = [sys.executable, "-c", "import sys; from lit.main import main; sys.exit(main())", "-v", str(HERE)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"lit failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
