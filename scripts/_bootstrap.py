"""Imported first by every rule script: the library is read from this checkout's src/.

Snakemake puts this folder on sys.path; putting ../src before everything else means the code
that runs is the code in the checkout, installed or not, also inside a conda environment
(--software-deployment-method conda), which holds only the dependencies.
"""

import sys
from pathlib import Path

_SRC = str(Path(__file__).resolve().parents[1] / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
