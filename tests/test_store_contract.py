"""Contract of the store interface (cim.store.base.Store), run against every implementation."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import sqlite3

import numpy as np
import pyogrio
import pytest
from shapely.geometry import box

from cim import CityClass, Feature, Source
from cim.errors import ConflictError, DatasetNotFoundError, EmptyInputError, JobNotFoundError, StoreError
from cim.ingest import ingest
from cim.store import SqliteStore, gpkg, open_store
from tests.cim_helpers import FakeReading, box_mesh, district


@pytest.fixture(params=["sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqliteStore]:
    s = open_store(tmp_path / "city.gpkg")
    yield s
    s.close()


def test_ingest_round_trip(store: SqliteStore) -> None:
    info = ingest(store, "d1", [FakeReading(district(20))])
    assert info.feature_count == 20 and info.class_counts == {"Building": 20}
    assert info.frame["horizontal"] == 5899
    west, south, east, north = info.bbox
    assert 108.0 < west < east < 108.3 and 15.9 < south < north < 16.2
    assert info.height_range == (0.0, 29.0)
    features = {f.id: f for f in store.iter_features("d1")}
    assert features["b3"].attributes == {"measuredHeight": 13.0, "function": "office", "employees": 3}
    assert features["b3"].source == Source("fake.gml", "bldg:Building")


def test_feature_index_and_geometry(store: SqliteStore) -> None:
    ingest(store, "d1", [FakeReading(district(5))])
    index = store.feature_index("d1")
    assert len(index) == 5 and list(index.triangles) == [12] * 5
    assert index.bounds[0] == pytest.approx([536000, 1777000, 0, 536010, 1777010, 10])
    loaded = store.load_features(index.keys[:2])
    mesh = loaded[0].geometry[2]
    assert np.allclose(mesh.vertices, box_mesh(536000, 1777000).vertices, atol=1e-3)
    assert list(mesh.surfaces) == list(box_mesh(0, 0).surfaces)


def test_footprints_bbox_query(store: SqliteStore) -> None:
    ingest(store, "d1", [FakeReading(district(20))])
    everything = list(store.footprints())
    assert len(everything) == 20
    first = next(f for f in everything if f.feature_id == "b0")
    w, s, e, n = first.geometry.bounds
    window = (w - 1e-7, s - 1e-7, e + 1e-7, n + 1e-7)
    hits = list(store.footprints(window))
    assert [h.feature_id for h in hits] == ["b0"]
    assert first.geometry.area > 0 and first.height_max == 10.0


def test_replace_is_atomic_on_failure(store: SqliteStore) -> None:
    ingest(store, "d1", [FakeReading(district(10))])
    with pytest.raises(ValueError):
        ingest(store, "d1", [FakeReading(district(20), fail_after=15)])
    assert store.get_dataset("d1").feature_count == 10
    assert len(list(store.iter_features("d1"))) == 10
    assert len(list(store.footprints(dataset="d1"))) == 10


def test_replace_bumps_version(store: SqliteStore) -> None:
    ingest(store, "d1", [FakeReading(district(3))])
    info = ingest(store, "d1", [FakeReading(district(4))])
    assert info.version == 2 and info.feature_count == 4
    assert len(list(store.footprints(dataset="d1"))) == 4


def test_datasets_are_separate(store: SqliteStore) -> None:
    ingest(store, "a", [FakeReading(district(3))])
    ingest(store, "b", [FakeReading(district(5, x0=537000))])
    assert [d.name for d in store.list_datasets()] == ["a", "b"]
    store.delete_dataset("a")
    assert [d.name for d in store.list_datasets()] == ["b"]
    with pytest.raises(DatasetNotFoundError):
        store.get_dataset("a")
    assert len(list(store.footprints())) == 5


def test_empty_input_is_refused(store: SqliteStore) -> None:
    with pytest.raises(EmptyInputError):
        ingest(store, "d1", [FakeReading([])])
    assert store.list_datasets() == []


def test_duplicate_ids_are_refused(store: SqliteStore) -> None:
    features = district(2)
    features[1].id = features[0].id
    with pytest.raises(StoreError, match="duplicate"):
        ingest(store, "d1", [FakeReading(features)])
    assert store.list_datasets() == []


def test_building_with_parts_uses_given_footprint(store: SqliteStore) -> None:
    parent = Feature("b", CityClass.BUILDING, Source("f", "bldg:Building"), footprint=box(536000, 1777000, 536010, 1777010))
    part = Feature("p", CityClass.BUILDING_PART, Source("f", "bldg:BuildingPart"), parent="b",
                   geometry={2: box_mesh(536000, 1777000)})
    ingest(store, "d1", [FakeReading([parent, part])])
    rows = list(store.footprints())
    assert [r.feature_id for r in rows] == ["b"]  # parts have no footprint row of their own


def test_gdal_opens_the_store(store: SqliteStore) -> None:
    ingest(store, "d1", [FakeReading(district(7))])
    layers = dict(pyogrio.list_layers(store.path))
    assert layers["footprints"] == "MultiPolygon"
    info = pyogrio.read_info(store.path, layer="footprints")
    assert info["features"] == 7 and info["crs"] == "EPSG:4326"
    assert info["capabilities"]["fast_spatial_filter"]  # the R*Tree index is recognised
    meta, fids, geometry, fields = pyogrio.raw.read(store.path, layer="footprints", read_geometry=True)
    assert len(geometry) == 7
    names = list(meta["fields"])
    assert set(fields[names.index("feature_id")]) == {f"b{i}" for i in range(7)}


def test_rtree_rows_and_triggers_after_imports(store: SqliteStore) -> None:
    """The writer fills the footprints' R*Tree itself (the spec's insert trigger is dropped for
    the transaction): the rows are what the trigger would write, the six triggers are back after
    each commit and after a failed import, and GDAL's spatial filter finds the features."""
    ingest(store, "d1", [FakeReading(district(12))])
    ingest(store, "d2", [FakeReading(district(5, x0=537000.0))])
    ingest(store, "d1", [FakeReading(district(9))])  # replaces d1: new fids after the old ones
    with pytest.raises(ValueError):
        ingest(store, "d2", [FakeReading(district(20), fail_after=15)])
    conn = sqlite3.connect(store.path)
    try:
        gpkg.register_functions(conn)
        triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                               "AND tbl_name = 'footprints'")}
        assert triggers == {f"rtree_footprints_geom_{n}" for n in
                            ("insert", "update1", "update2", "update3", "update4", "delete")}
        expected = conn.execute("SELECT fid, ST_MinX(geom), ST_MaxX(geom), ST_MinY(geom), ST_MaxY(geom) "
                                "FROM footprints ORDER BY fid").fetchall()
        rows = conn.execute("SELECT id, minx, maxx, miny, maxy FROM rtree_footprints_geom ORDER BY id").fetchall()
        conn.execute("CREATE VIRTUAL TABLE temp.check_rtree USING rtree(id, minx, maxx, miny, maxy)")
        conn.executemany("INSERT INTO temp.check_rtree VALUES (?,?,?,?,?)", expected)  # as the trigger writes them
        assert len(rows) == len(expected) == 14
        assert rows == conn.execute("SELECT * FROM temp.check_rtree ORDER BY id").fetchall()
        fids = [r[0] for r in expected]
        assert len(set(fids)) == len(fids) and min(fids) > 12  # d1's first fids were not reused
        # the spec's trigger works again for other writers (GDAL, QGIS)
        blob = conn.execute("SELECT geom FROM footprints LIMIT 1").fetchone()[0]
        conn.execute("INSERT INTO footprints (geom, dataset, feature_id, class, feature_key) VALUES (?, 'x', 'x1', 'Building', -1)", (blob,))
        fid = conn.execute("SELECT fid FROM footprints WHERE feature_id = 'x1'").fetchone()[0]
        assert conn.execute("SELECT COUNT(*) FROM rtree_footprints_geom WHERE id = ?", (fid,)).fetchone()[0] == 1
        conn.rollback()
    finally:
        conn.close()
    w, s, e, n = next(f for f in store.footprints() if f.feature_id == "b0" and f.dataset == "d2").geometry.bounds
    meta, fids, geometry, fields = pyogrio.raw.read(store.path, layer="footprints", bbox=(w - 1e-7, s - 1e-7, e + 1e-7, n + 1e-7))
    names = list(meta["fields"])
    assert list(fields[names.index("feature_id")]) == ["b0"] and list(fields[names.index("dataset")]) == ["d2"]


def test_batch_encoding_of_footprints_matches_one_by_one() -> None:
    """The writer encodes a batch's footprints together; the blobs and bounds are those of
    encode_geometry one by one (None and empty geometries give no blob)."""
    from shapely.geometry import MultiPolygon, Polygon

    holed = Polygon([(0, 0), (4, 0), (4, 4), (0, 4)], [[(1, 1), (2, 1), (2, 2), (1, 2)]])
    geoms = [box(106.1, 16.0, 106.2, 16.1), None, Polygon(), holed,
             MultiPolygon([box(0, 0, 1, 1), box(2, 2, 3, 3)]), Polygon([(0, 0, 5), (1, 0, 5), (1, 1, 6)])]
    blobs, bounds = gpkg.encode_geometries(geoms, 4326)
    for g, blob, b in zip(geoms, blobs, bounds.tolist()):
        if g is None or g.is_empty:
            assert blob is None
        else:
            assert blob == gpkg.encode_geometry(g, 4326)
            assert tuple(b) == g.bounds
            assert gpkg.decode_geometry(blob).equals(g)


def test_not_a_store_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.gpkg"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError):
        open_store(bad)


# --- jobs ----------------------------------------------------------------------------------

def test_job_lifecycle(store: SqliteStore) -> None:
    job = store.create_job("j1", "lyon", {"files": ["a.gml"], "filename": "a.gml"})
    assert job.state == "queued" and job.dataset == "lyon" and job.progress["stage"] == "queued"
    assert job.params["files"] == ["a.gml"] and job.report is None and job.error is None
    assert store.update_job("j1", state="running", pid=4242, started="2026-01-01T00:00:00Z")
    assert store.update_job("j1", progress={"stage": "import", "percent": 40.0, "messages": ["read 2 MB"]})
    running = store.get_job("j1")
    assert (running.state, running.pid, running.progress["percent"]) == ("running", 4242, 40.0)
    assert store.update_job("j1", only_if=["running"], state="done", report={"files": [], "warnings": ["w"]})
    # a compare-and-set that does not match changes nothing (a late worker cannot undo a cancel)
    assert not store.update_job("j1", only_if=["running"], state="failed", error={"error": "x"})
    done = store.get_job("j1")
    assert done.state == "done" and done.report == {"files": [], "warnings": ["w"]} and done.error is None
    assert done.to_dict()["source"] == "a.gml"


def test_jobs_list_newest_first_and_by_state(store: SqliteStore) -> None:
    for n in range(3):
        store.create_job(f"j{n}", "d", {})
    store.update_job("j1", state="failed", error={"error": "crash", "message": "worker crashed"})
    assert [j.id for j in store.list_jobs()] == ["j2", "j1", "j0"]
    assert [j.id for j in store.list_jobs(states=["queued", "running"])] == ["j2", "j0"]
    assert [j.id for j in store.list_jobs(limit=1)] == ["j2"]
    assert store.get_job("j1").error == {"error": "crash", "message": "worker crashed"}


def test_unknown_and_duplicate_jobs(store: SqliteStore) -> None:
    with pytest.raises(JobNotFoundError):
        store.get_job("nope")
    with pytest.raises(JobNotFoundError):
        store.update_job("nope", state="failed")
    store.create_job("j", "d", {})
    with pytest.raises(ConflictError):
        store.create_job("j", "d", {})
    store.delete_job("j")
    assert store.list_jobs() == []


def test_job_progress_is_writable_during_a_dataset_import(store: SqliteStore) -> None:
    """A worker writes progress while its dataset transaction holds the store's write lock, and
    the server creates jobs meanwhile (on another connection, as another process would)."""
    store.create_job("j", "d1", {})
    other = open_store(store.path)
    try:
        with store.dataset_writer("d1"):  # BEGIN IMMEDIATE: the city store's write lock
            assert store.update_job("j", progress={"stage": "import", "percent": 50.0, "messages": []})
            other.create_job("k", "d2", {})
            assert other.get_job("j").progress["percent"] == 50.0
    finally:
        other.close()
