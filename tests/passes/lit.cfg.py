"""lit configuration of the pass tests: each ``*.mlir`` file's ``RUN:`` lines pipe ``cimc opt`` into ``filecheck``.

``cimc`` and ``filecheck`` in RUN lines are substituted by the tools' full paths, looked up beside the running
Python first (the install lit itself runs from), then on PATH, so a virtual environment works without being
activated.
"""

import os
import shutil
import sys

import lit.formats

# lit runs this file with ``config`` and ``lit_config`` defined
config.name = "cimc-passes"  # noqa: F821
config.test_format = lit.formats.ShTest(execute_external=False)  # noqa: F821
config.suffixes = [".mlir"]  # noqa: F821
config.test_source_root = os.path.dirname(__file__)  # noqa: F821

search = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
for tool in ("cimc", "filecheck"):
    found = shutil.which(tool, path=search)
    if found is None:
        lit_config.fatal(f"'{tool}' is neither on PATH nor beside {sys.executable}; run: pip install -e '.[dev]'")  # noqa: F821
    # the bare command word only, not the same letters inside a path or a longer name
    config.substitutions.append((rf"(?<![\w./-]){tool}(?![\w./-])", found))  # noqa: F821
