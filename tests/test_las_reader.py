"""The LAS/LAZ converter on the real samples in ../shared/data/las (provenance in MANIFEST.tsv):
point counts, CRS (WKT, GeoTIFF keys, both, none), feet, classes and colours; damaged copies
(lying header, truncation) written to tmp_path give typed errors."""
from __future__ import annotations

import pickle
import shutil
import struct
from pathlib import Path

import laspy
import numpy as np
import pytest

import converters
from cim.placement import user_frame
from cim.errors import CrsMissingError, EmptyInputError, ParseError, TruncatedFileError
from cim.points import PointChunk, PointStats, class_name, decode_block, encode_block
from converters.las import LasReading

FT, FTUS = 0.3048, 1200 / 3937
# file: (points, EPSG, metres per z unit or None, has usable RGB) -- counts and CRSs from MANIFEST.tsv
SAMPLES = {
    "AHN3_Delft_cropped_2.laz": (208_432, None, None, False),
    "IGN_semis_2023_0292_6833_LA93_IGN69.laz": (289_055, 2154, None, False),
    "autzen_trim.las": (110_000, 2994, FT, True),
    "epsg_4326_pf0.las": (5_380, 4326, None, False),
    "file_with_both_wkt_and_geotiff_vlrs.las": (25_408, 6880, FTUS, False),
    "fullwave_yellowscan.laz": (10_750, 32723, None, True),
    "simple.las": (1_065, None, None, True),
    "with_srs_3857.las": (1_247, 3857, None, False),  # RGB fields all zero
}


def _read_all(reading: LasReading) -> list[PointChunk]:
    return list(reading.chunks())


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_reads_like_laspy(name: str, shared_data: Path) -> None:
    path = shared_data / "las" / name
    count, epsg, z_factor, rgb = SAMPLES[name]
    frame = user_frame(crs="EPSG:28992") if epsg is None else None
    reading = converters.open_input(path, converters.ConvertOptions(frame=frame))
    assert isinstance(reading, LasReading)
    assert reading.point_count == count
    if epsg is not None:
        assert reading.frame.spec()["horizontal"] == epsg
        assert reading.frame.z_to_metres == pytest.approx(z_factor or 1.0)
    reading.chunk_points = 40_000  # several chunks for the bigger files
    chunks = _read_all(reading)
    reference = laspy.read(path)
    assert sum(len(c) for c in chunks) == count == len(reference.points)
    xyz = np.concatenate([c.xyz for c in chunks])
    np.testing.assert_allclose(xyz, np.column_stack([reference.x, reference.y, reference.z]), rtol=0, atol=1e-9)
    classes = np.concatenate([c.classification for c in chunks])
    np.testing.assert_array_equal(classes, np.asarray(reference.classification))
    np.testing.assert_array_equal(np.concatenate([c.intensity for c in chunks]), np.asarray(reference.intensity))
    np.testing.assert_array_equal(np.concatenate([c.return_number for c in chunks]), np.asarray(reference.return_number))
    assert all((c.rgb is not None) == rgb for c in chunks)


def test_ign_classes_and_names(shared_data: Path) -> None:
    reading = converters.open_input(shared_data / "las" / "IGN_semis_2023_0292_6833_LA93_IGN69.laz")
    codes = set(np.unique(np.concatenate([c.classification for c in reading.chunks()])).tolist())
    assert codes == {1, 2, 3, 4, 5, 6, 17, 64, 66, 67}  # MANIFEST.tsv
    assert class_name(2) == "Ground" and class_name(6) == "Building" and class_name(66) == "User 66"


def test_autzen_8bit_rgb_in_16bit_fields(shared_data: Path) -> None:
    reading = converters.open_input(shared_data / "las" / "autzen_trim.las")
    rgb = np.concatenate([c.rgb for c in reading.chunks() if c.rgb is not None])
    raw = laspy.read(shared_data / "las" / "autzen_trim.las")
    assert int(raw.red.max()) == 236  # MANIFEST: 8-bit values stored in 16-bit fields
    np.testing.assert_array_equal(rgb[:, 0], np.asarray(raw.red))  # used as is, not divided by 256
    assert any("8-bit" in w for w in reading.report.warnings)
    assert "EPSG:2994" in reading.report.georeferencing  # ESRI WKT identified by definition


def test_both_wkt_and_geotiff_keys_disagree_is_reported(shared_data: Path) -> None:
    reading = converters.open_input(shared_data / "las" / "file_with_both_wkt_and_geotiff_vlrs.las")
    assert reading.frame.spec()["horizontal"] == 6880
    assert any("EPSG:32104" in w and "WKT" in w for w in reading.report.warnings)


@pytest.mark.parametrize("name", ["simple.las", "AHN3_Delft_cropped_2.laz"])
def test_no_crs_is_refused_without_crs(name: str, shared_data: Path) -> None:
    with pytest.raises(CrsMissingError, match="--crs"):
        converters.open_input(shared_data / "las" / name)


def test_user_crs_geographic_is_lon_first(shared_data: Path) -> None:
    reading = converters.open_input(shared_data / "las" / "epsg_4326_pf0.las",
                                    converters.ConvertOptions(frame=user_frame(crs="EPSG:4326")))
    ll = reading.frame.to_lonlat(np.array([[-94.67, 31.04, 50.0]]))
    assert ll[0, 0] == pytest.approx(-94.67) and ll[0, 1] == pytest.approx(31.04)


def test_block_round_trip(shared_data: Path) -> None:
    reading = converters.open_input(shared_data / "las" / "autzen_trim.las")
    chunk = next(iter(reading.chunks()))
    back = decode_block(encode_block(chunk))
    np.testing.assert_array_equal(back.ixyz, chunk.ixyz)
    np.testing.assert_array_equal(back.rgb, chunk.rgb)
    np.testing.assert_array_equal(back.classification, chunk.classification)
    assert back.scale == chunk.scale and back.offset == chunk.offset


# --- damaged copies ---------------------------------------------------------------------------

def _copy(shared_data: Path, name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copyfile(shared_data / "las" / name, target)
    target.chmod(0o644)
    return target


def test_header_lying_about_point_count(shared_data: Path, tmp_path: Path) -> None:
    path = _copy(shared_data, "simple.las", tmp_path)
    with open(path, "r+b") as fh:  # LAS 1.2 legacy point count at byte 107
        fh.seek(107)
        fh.write(struct.pack("<I", 1_000_000_000))
    with pytest.raises(TruncatedFileError, match="1,000,000,000 points"):
        converters.open_input(path, converters.ConvertOptions(frame=user_frame(crs="EPSG:2994")))


def test_truncated_las(shared_data: Path, tmp_path: Path) -> None:
    path = _copy(shared_data, "autzen_trim.las", tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(TruncatedFileError, match="truncated"):
        converters.open_input(path)


def test_truncated_laz_fails_while_reading(shared_data: Path, tmp_path: Path) -> None:
    path = _copy(shared_data, "IGN_semis_2023_0292_6833_LA93_IGN69.laz", tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TruncatedFileError):
        reading = converters.open_input(path)
        for _ in reading.chunks():
            pass


def test_laz_header_announcing_impossible_count(shared_data: Path, tmp_path: Path) -> None:
    path = _copy(shared_data, "IGN_semis_2023_0292_6833_LA93_IGN69.laz", tmp_path)
    with open(path, "r+b") as fh:  # LAS 1.4 64-bit point count at byte 247
        fh.seek(247)
        fh.write(struct.pack("<Q", 10**12))
    with pytest.raises(TruncatedFileError, match="header lies"):
        converters.open_input(path)


def test_zero_scale_is_refused(shared_data: Path, tmp_path: Path) -> None:
    path = _copy(shared_data, "with_srs_3857.las", tmp_path)
    with open(path, "r+b") as fh:  # x scale factor at byte 131
        fh.seek(131)
        fh.write(struct.pack("<d", 0.0))
    with pytest.raises(ParseError, match="scale"):
        converters.open_input(path)


def test_header_without_points(shared_data: Path, tmp_path: Path) -> None:
    path = _copy(shared_data, "with_srs_3857.las", tmp_path)
    with open(path, "r+b") as fh:
        fh.seek(107)
        fh.write(struct.pack("<I", 0))
    with pytest.raises(EmptyInputError):
        converters.open_input(path)


def test_not_a_las_file_after_signature(tmp_path: Path) -> None:
    path = tmp_path / "broken.las"
    path.write_bytes(b"LASF" + b"\x00" * 50)
    with pytest.raises(ParseError):
        converters.open_input(path)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_pieces_decode_exactly_the_chunks(name: str, shared_data: Path) -> None:
    """What cim convert's workers decode piece by piece equals what chunks() yields, with the
    same statistics and report (count, colour warnings)."""
    path = shared_data / "las" / name
    _, epsg, _, _ = SAMPLES[name]
    options = converters.ConvertOptions(frame=None if epsg else user_frame(crs="EPSG:28992"))
    sequential = LasReading(path, options, chunk_points=50_000)
    chunks = _read_all(sequential)
    parallel = LasReading(path, options, chunk_points=50_000)
    pieces = parallel.pieces()
    if name == "with_srs_3857.las":  # colour fields all zero: the depth cannot be decided up front
        assert pieces is None
        return
    assert pieces is not None and len(pieces) == len(chunks) == -(-SAMPLES[name][0] // 50_000)
    stats = PointStats()
    for piece, chunk in zip(pieces, chunks):
        got, piece_stats = pickle.loads(pickle.dumps(piece)).read()  # as a worker process gets it
        assert got.ixyz.tobytes() == chunk.ixyz.tobytes() and (got.scale, got.offset) == (chunk.scale, chunk.offset)
        for field in ("intensity", "classification", "return_number"):
            np.testing.assert_array_equal(getattr(got, field), getattr(chunk, field))
        assert (got.rgb is None) == (chunk.rgb is None)
        if got.rgb is not None:
            np.testing.assert_array_equal(got.rgb, chunk.rgb)
        stats.merge(piece_stats)
    parallel.finish(stats)
    assert stats.count == SAMPLES[name][0]
    assert parallel.report.to_dict() == sequential.report.to_dict()


def test_truncated_laz_fails_in_its_piece(shared_data: Path, tmp_path: Path) -> None:
    path = _copy(shared_data, "IGN_semis_2023_0292_6833_LA93_IGN69.laz", tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    reading = converters.open_input(path)
    pieces = reading.pieces()
    assert pieces is not None
    with pytest.raises(TruncatedFileError, match="truncated"):
        for piece in pieces:
            piece.read()


def _variable_chunk_laz(src: Path, dst: Path, sizes: list[int]) -> None:
    """``src`` recompressed with variable-size LAZ chunks of ``sizes`` points (as COPC files and
    some writers make them), through lazrs' own compressor."""
    import lazrs
    from laspy._compression import lazrsbackend

    las = laspy.read(src)
    real = lazrs.LazVlr.new_for_compression

    class VariableVlr:
        @staticmethod
        def new_for_compression(point_format: int, extra: int) -> lazrs.LazVlr:
            return real(point_format, extra, True)

    writer_cls = lazrsbackend.LazrsPointWriter
    original_write = writer_cls.write_points

    def write_in_chunks(self, points) -> None:  # type: ignore[no-untyped-def]
        data = np.frombuffer(points.array, np.uint8).reshape(len(points.array), -1)
        start = 0
        for size in sizes + [len(data)]:
            part = data[start:start + size]
            if len(part):
                self.compressor.compress_many(part.reshape(-1))
                self.compressor.finish_current_chunk()
            start += size

    patched_vlr = lazrsbackend.lazrs.LazVlr
    try:
        lazrsbackend.lazrs.LazVlr = VariableVlr  # type: ignore[assignment]
        writer_cls.write_points = write_in_chunks  # type: ignore[method-assign]
        with laspy.open(dst, mode="w", header=las.header, do_compress=True,
                        laz_backend=laspy.LazBackend.Lazrs) as out:
            out.write_points(las.points)
    finally:
        lazrsbackend.lazrs.LazVlr = patched_vlr
        writer_cls.write_points = original_write  # type: ignore[method-assign]


def test_a_variable_chunk_laz_is_read_in_order_not_in_pieces(shared_data: Path, tmp_path: Path) -> None:
    """laspy/lazrs seek to wrong points in LAZ files with chunks of varying size (COPC and some
    writers): such files offer no pieces and are read in order, correctly."""
    path = tmp_path / "autzen_variable.laz"
    _variable_chunk_laz(shared_data / "las" / "autzen_trim.las", path, [7_000, 33_000, 41_000, 9_000])
    with laspy.open(path) as reader:
        vlr = reader.header.vlrs.get("LasZipVlr")[0]
        assert struct.unpack_from("<I", vlr.record_data, 12)[0] == 0xFFFFFFFF  # variable-size chunks
        reader.seek(50_000)
        sought = reader.read_points(1_000).X
    want = laspy.read(shared_data / "las" / "autzen_trim.las")
    assert not np.array_equal(sought, want.X[50_000:51_000])  # the seek this guards against
    reading = LasReading(path, converters.ConvertOptions(), chunk_points=25_000)
    assert reading.pieces() is None
    chunks = _read_all(reading)
    assert np.concatenate([c.ixyz[:, 0] for c in chunks]).tolist() == want.X.tolist()
    fixed = tmp_path / "autzen_fixed.laz"  # the same points with fixed-size chunks do offer pieces
    want.write(fixed, laz_backend=laspy.LazBackend.Lazrs)
    assert LasReading(fixed, converters.ConvertOptions(), chunk_points=25_000).pieces() is not None
