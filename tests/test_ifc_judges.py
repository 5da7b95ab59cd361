"""IFC tilesets judged by tools nobody here wrote: check-tileset (3D Tiles validator + Khronos glTF
validator) on every sample in 1.1 (glb) and 1.0 (b3dm), and view-tileset (CesiumJS in headless
Chromium): every sample loads with no tile error, and a picked element shows its IFC class,
GlobalId and a property set value."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cim.placement import user_frame
from server.pipeline import convert
from tests.test_tiling_judges import assert_clean, check_tileset, view_tileset

FILES = ["AC20-FZK-Haus.ifc", "duplex.ifc", "Duplex_A_20110907_georeferenced.ifc", "IfcOpenHouse_IFC4.ifc",
         "geographic-referencing-utm.ifc", "geolocation-mapconversion-angle.ifc"]
#: the two samples with nothing to place them get a user placement (the CLI's --origin / --crs)
PLACEMENT: dict[str, dict[str, str]] = {"IfcOpenHouse_IFC4.ifc": {"origin": "108.25,16.05,5"},
                                        "geolocation-mapconversion-angle.ifc": {"crs": "EPSG:3857"}}
#: samples without any IfcPropertySet/IfcElementQuantity (grep of the files): no pset value to show
NO_PSETS = {"IfcOpenHouse_IFC4.ifc", "geographic-referencing-utm.ifc", "geolocation-mapconversion-angle.ifc"}
NOT_PSET = {"ifc_class", "GlobalId", "Name", "Description", "ObjectType", "LongName", "Tag", "PredefinedType",
            "CompositionType", "Elevation", "color", "transparency", "material", "storey", "id", "class", "name",
            "parent", "height", "zmin", "zmax", "function", "usage", "source_dataset", "source_file", "source_class"}


@pytest.fixture(scope="module")
def tilesets(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Path]:
    root = tmp_path_factory.mktemp("ifc-tiles")
    out: dict[tuple[str, str], Path] = {}
    for name in FILES:
        frame = user_frame(**PLACEMENT[name]) if name in PLACEMENT else None
        for fmt in ("1.1", "1.0"):
            target = root / f"{Path(name).stem}-{fmt}"
            convert([shared_data / "ifc" / name], target, frame=frame, format=fmt)
            out[(name, fmt)] = target
    return out


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["1.1", "1.0"])
@pytest.mark.parametrize("name", FILES)
def test_ifc_tilesets_pass_check_tileset(shared_tools: Path, tilesets: dict[tuple[str, str], Path], tmp_path: Path,
                                         name: str, fmt: str) -> None:
    report = check_tileset(shared_tools, tilesets[(name, fmt)], tmp_path / "report.json")
    assert_clean(report)
    assert report["totals"]["filesByType"].get("glb" if fmt == "1.1" else "b3dm", 0) >= 1


def _pset_values(properties: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in properties.items() if k not in NOT_PSET and v not in (None, "")}


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.parametrize("name", FILES)
def test_cesium_loads_each_ifc_model_and_picks_an_element(shared_tools: Path, tilesets: dict[tuple[str, str], Path],
                                                          tmp_path: Path, name: str) -> None:
    report = view_tileset(shared_tools, tilesets[(name, "1.1")], tmp_path / "view.json", tmp_path / "shot.png")
    assert report["ok"], report["problems"]
    assert report["tileErrors"] == [] and report["tiles"]["failed"] == 0
    assert report["content"]["featuresLoaded"] > 0
    properties = report["pick"]["properties"]
    assert properties["source_class"].startswith("Ifc") and properties["class"]
    assert properties["GlobalId"] == properties["id"] and len(properties["id"]) == 22
    assert properties["ifc_class"] == properties["source_class"]
    if name not in NO_PSETS:
        assert _pset_values(properties), properties
