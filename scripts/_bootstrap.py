"""Imported first by every rule script: the library is read from this checkout's src/.

Snakemake puts this folder on sys.path; putting ../src before everything else means the code
that runs is the code in the checkout, installed or not, also inside a conda environment
(--software-deployment-method conda), which holds only the dependencies. It goes first even when
it is on sys.path already (Snakemake may have appended it): an editable install of another
checkout earlier on the path must not win.
"""

import os
import sys

_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "src")
sys.path[:] = [_SRC] + [p for p in sys.path if not p or os.path.realpath(p) != _SRC]
