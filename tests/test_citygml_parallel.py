"""The parallel CityGML reader (chunks of members parsed in worker processes) gives exactly what
the sequential reader gives: the same features, reports, errors and error lines.

The parallel path is forced on the small committed fixtures with a tiny chunk size."""
from __future__ import annotations

import multiprocessing
import re
import subprocess
import sys
from multiprocessing.context import BaseContext
from pathlib import Path

import numpy as np
import pytest

from cim.errors import CimError, CrsContradictionError, TruncatedFileError
from cim.feature import Feature
from cim.ingest import ingest
from cim.store import open_store
from converters import ConvertOptions
from converters.citygml import chunks, parallel
from converters.citygml.parallel import ParallelRead
from converters.citygml.reader import CityGmlReading

REPO = Path(__file__).resolve().parents[1]
FIXTURES = [REPO / "fixtures" / "danang_hitech_park_citygml2.gml", REPO / "fixtures" / "danang_hitech_park_citygml3.gml"]
CHUNK = 64 * 1024


def _sequential(path: Path) -> CityGmlReading:
    return CityGmlReading(path, ConvertOptions(), parallel_min_bytes=1 << 62)


def _parallel(path: Path, chunk_bytes: int = CHUNK) -> CityGmlReading:
    return CityGmlReading(path, ConvertOptions(), parallel_min_bytes=0, chunk_bytes=chunk_bytes, workers=2)


def _read(reading: CityGmlReading) -> list[Feature]:
    return list(reading.features())


def _assert_same(expected: list[Feature], got: list[Feature]) -> None:
    assert [f.id for f in got] == [f.id for f in expected]
    for a, b in zip(expected, got):
        assert (a.city_class, a.parent, a.name, a.source, a.attributes) == (b.city_class, b.parent, b.name, b.source,
                                                                            b.attributes), a.id
        assert a.geometry.keys() == b.geometry.keys(), a.id
        for lod, mesh in a.geometry.items():
            other = b.geometry[lod]
            assert np.array_equal(mesh.triangles, other.triangles) and np.array_equal(mesh.surfaces, other.surfaces)
            assert np.allclose(mesh.vertices, other.vertices, rtol=0, atol=1e-9), a.id
        assert (a.footprint is None) == (b.footprint is None), a.id
        if a.footprint is not None:
            assert a.footprint.equals_exact(b.footprint, 1e-9), a.id


def _error(reading: CityGmlReading) -> CimError:
    with pytest.raises(CimError) as err:
        _read(reading)
    return err.value


@pytest.mark.parametrize("method", ["fork", "forkserver"])
@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_parallel_gives_the_sequential_features(path: Path, method: str, monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[str] = []

    def context() -> BaseContext:
        started.append(method)
        ctx = multiprocessing.get_context(method)
        if method == "forkserver":
            ctx.set_forkserver_preload(["cim.worker_env", "converters.citygml.parallel"])
        return ctx

    monkeypatch.setattr(parallel, "pool_context", context)
    seq, par = _sequential(path), _parallel(path)
    expected, got = _read(seq), _read(par)
    assert par.parallel and not seq.parallel
    assert len(list(chunks.chunks(path, chunks.layout(path, par._root_tag), CHUNK))) > 10  # type: ignore[arg-type]
    _assert_same(expected, got)
    assert par.report.to_dict() == seq.report.to_dict()
    assert par.frame.spec() == seq.frame.spec()
    assert par.bytes_read == par.total_bytes
    assert started == [method]


def test_workers_fork_only_from_a_process_without_other_threads() -> None:
    """Forked workers share the imports of a process that runs one thread (the CLI); with any
    other thread running, a fork could copy a lock it holds: then a forkserver starts them."""
    code = ("from converters.citygml.parallel import pool_context; import threading, time;"
            "print(pool_context().get_start_method());"
            "threading.Thread(target=time.sleep, args=(2,), daemon=True).start();"
            "print(pool_context().get_start_method())")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["fork", "forkserver"]
    # the CLI's progress bars start no monitor thread (which would rule out the fork)
    code = ("import threading\nfrom server import cli\nwith cli._bar('x'):\n    print(threading.active_count())")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["1"]


def test_derived_ids_are_numbered_across_chunks(tmp_path: Path) -> None:
    """City objects without gml:id get the ids (and warnings) of a sequential read."""
    text = FIXTURES[0].read_text(encoding="utf-8")
    text = re.sub(r'(<bldg:(?:Building|BuildingPart)) gml:id="[^"]*"', r"\1", text)
    path = tmp_path / "no_ids.gml"
    path.write_text(text, encoding="utf-8")
    seq, par = _sequential(path), _parallel(path)
    expected, got = _read(seq), _read(par)
    assert any(f.id.startswith("no_ids:BuildingPart:") and f.parent for f in expected)
    _assert_same(expected, got)
    assert par.report.to_dict() == seq.report.to_dict()


def test_srs_contradiction_in_a_later_chunk(tmp_path: Path) -> None:
    text = FIXTURES[0].read_text(encoding="utf-8")
    at = text.index("srsName", int(len(text) * 0.8)) if "srsName" in text[int(len(text) * 0.8):] else None
    if at is None:  # no srsName late in the file: put one on a late polygon
        at = text.index("<gml:Polygon", int(len(text) * 0.8)) + len("<gml:Polygon")
        text = text[:at] + ' srsName="EPSG:32648"' + text[at:]
    else:
        end = text.index('"', text.index('"', at) + 1)
        text = text[:at] + 'srsName="EPSG:32648' + text[end:]
    path = tmp_path / "mixed.gml"
    path.write_text(text, encoding="utf-8")
    expected, got = _error(_sequential(path)), _error(_parallel(path))
    assert isinstance(got, CrsContradictionError)
    assert got.message == expected.message and "EPSG:32648" in got.message


def test_truncated_big_file_fails_and_imports_nothing(tmp_path: Path) -> None:
    data = FIXTURES[0].read_bytes()
    path = tmp_path / "cut.gml"
    path.write_bytes(data[:int(len(data) * 0.9)])
    expected, got = _error(_sequential(path)), _error(_parallel(path))
    assert isinstance(got, TruncatedFileError)
    assert got.message == expected.message and got.details == expected.details
    store = open_store(tmp_path / "city.gpkg")
    try:
        with pytest.raises(TruncatedFileError):
            ingest(store, "cut", [_parallel(path)])
        assert "cut" not in [d.name for d in store.list_datasets()]
    finally:
        store.close()


def test_syntax_error_mid_file_has_the_file_line(tmp_path: Path) -> None:
    text = FIXTURES[1].read_text(encoding="utf-8")
    at = text.index("</gml:posList>", len(text) // 2)
    path = tmp_path / "broken.gml"
    path.write_text(text[:at] + "</gml:posLis>" + text[at + len("</gml:posList>"):], encoding="utf-8")
    expected, got = _error(_sequential(path)), _error(_parallel(path))
    assert type(got) is type(expected) and got.message == expected.message
    assert got.details["line"] == text[:at].count("\n") + 1


def test_boundary_inside_a_comment_is_survived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member start tag inside a comment looks like a boundary: the reader recovers by reading
    the rest of the file in one piece."""
    calls: list[int] = []
    rest = ParallelRead._rest_in_process
    monkeypatch.setattr(ParallelRead, "_rest_in_process", lambda self, chunk: calls.append(chunk.index) or rest(self, chunk))
    text = FIXTURES[0].read_text(encoding="utf-8")
    at = text.index("<cityObjectMember>", len(text) // 3)
    fake = "<!-- a comment with a fake boundary:\n</cityObjectMember>\n<cityObjectMember>\n-->\n"
    path = tmp_path / "comment.gml"
    path.write_text(text[:at] + fake * 40 + text[at:], encoding="utf-8")
    _assert_same(_read(_sequential(path)), _read(_parallel(path, chunk_bytes=2048)))
    assert calls


def test_the_first_chunk_is_read_here_while_the_pool_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    here: list[int] = []
    real = ParallelRead._here
    monkeypatch.setattr(ParallelRead, "_here", lambda self, chunk: here.append(chunk.index) or real(self, chunk))
    path = FIXTURES[0]
    _assert_same(_read(_sequential(path)), _read(_parallel(path)))
    assert here == [0]


def test_an_error_in_the_first_chunk_is_raised_as_in_a_sequential_read(tmp_path: Path) -> None:
    text = FIXTURES[1].read_text(encoding="utf-8")
    at = text.index("</gml:posList>")  # the first city object: chunk 0, read in this process
    path = tmp_path / "broken_early.gml"
    path.write_text(text[:at] + "</gml:posLis>" + text[at + len("</gml:posList>"):], encoding="utf-8")
    expected, got = _error(_sequential(path)), _error(_parallel(path))
    assert type(got) is type(expected) and got.message == expected.message
    assert got.details["line"] == text[:at].count("\n") + 1


def test_a_pool_that_cannot_start_fails_the_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ProcessPoolExecutor

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("no processes left")

    monkeypatch.setattr(ProcessPoolExecutor, "submit", refuse)
    with pytest.raises(OSError, match="no processes left"):
        _read(_parallel(FIXTURES[0]))


def test_a_read_chunk_leaves_no_cycle_holding_its_polygons(monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything a chunk read builds is freed by reference counting once the result is packed:
    a reference cycle (the walker's geometry collector calling back into the walker) would keep
    the chunk's polygon map alive until the cyclic collector ran, and its pass over them cost
    ~5 % of a worker's time."""
    import gc
    import weakref

    from converters.citygml import city_object, parallel

    walkers: list[weakref.ref[city_object.CityObjectWalker]] = []
    real_init = city_object.CityObjectWalker.__init__

    def init(self: city_object.CityObjectWalker, *args: object, **kwargs: object) -> None:
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]
        walkers.append(weakref.ref(self))

    monkeypatch.setattr(city_object.CityObjectWalker, "__init__", init)
    path = FIXTURES[0]
    lay = chunks.layout(path, _parallel(path)._root_tag)
    assert lay is not None
    chunk = next(chunks.chunks(path, lay, CHUNK))
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        result = parallel.read_chunk(path, lay, chunk)
        assert result.packed is not None and result.objects > 0
        assert walkers and all(w() is None for w in walkers)  # freed without the collector
    finally:
        if was_enabled:
            gc.enable()
