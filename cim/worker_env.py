"""Imported first in a worker server process (forkserver preload), before numpy.

Our worker pools run one process per core, so a worker's BLAS needs no threads of its own:
OpenBLAS's threads only spin for a while after numpy's import (about 0.1 s of a core each
time) and compete with the other workers. Standard library only, so that it runs before numpy.
"""
from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
