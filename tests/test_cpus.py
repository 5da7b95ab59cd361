"""Worker pools size themselves by the CPUs this process may use (its affinity set), not by the
machine's CPU count (cim.cpus)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cim import cpus
from converters.base import ConvertOptions
from converters.citygml.reader import CityGmlReading
from tiling.pointcloud.pool import default_workers

REPO = Path(__file__).resolve().parents[1]
SMALL_GML = REPO / "fixtures" / "danang_hitech_park_citygml2.gml"


def test_usable_cpus_is_the_affinity_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3, 5, 7}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert cpus.usable_cpus() == 3


def test_usable_cpus_without_an_affinity_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert cpus.usable_cpus() == 6
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert cpus.usable_cpus() == 1


def test_pools_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert CityGmlReading(SMALL_GML, ConvertOptions()).workers == 1
    assert default_workers() == 1
    from converters.ifc.spawn import default_threads

    monkeypatch.delenv("CIM_IFC_THREADS", raising=False)
    assert default_threads() == 1


@pytest.mark.skipif(shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"), reason="needs taskset")
def test_a_process_pinned_to_one_cpu_reads_citygml_in_one_process() -> None:
    cpu = min(os.sched_getaffinity(0))
    code = ("from pathlib import Path; from converters.base import ConvertOptions; "
            "from converters.citygml.reader import CityGmlReading; "
            f"print(CityGmlReading(Path({str(SMALL_GML)!r}), ConvertOptions()).workers)")
    out = subprocess.run(["taskset", "-c", str(cpu), sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "1"
