"""``cim export``: footprints (GeoJSON, GeoPackage) and CityJSON from the city store."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cim.errors import InvalidParameterError
from server.layout import DataDir


@click.group("export")
def export() -> None:
    """Export from the city store: footprints for GIS tools, datasets as CityJSON."""


@export.command("footprints")
@click.option("--format", "fmt", type=click.Choice(["geojson", "gpkg"]), required=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output file.")
@click.option("--crs", default=None, metavar="EPSG:N",
              help="Output CRS (EPSG:5899, EPSG:32649, EPSG:4326 ...); default WGS 84 lon/lat (CRS84).")
@click.option("--bbox", default=None, metavar="W,S,E,N", help="Only footprints meeting this box (lon/lat unless --bbox-crs).")
@click.option("--bbox-crs", default=None, metavar="EPSG:N", help="CRS of --bbox (x = easting/longitude first).")
@click.option("--dataset", default=None, help="Only this dataset.")
@click.option("--class", "classes", multiple=True, metavar="CLASS", help="Only this CIM class (repeatable), e.g. Building.")
@click.pass_obj
def footprints(obj: Any, fmt: str, out: Path, crs: str | None, bbox: str | None, bbox_crs: str | None,
               dataset: str | None, classes: tuple[str, ...]) -> None:
    """Footprints (2D polygon, height range, class, id, name, dataset, key attributes).

    Coordinates are written x = easting/longitude first in every CRS (the GIS file convention);
    a GeoJSON file in another CRS than WGS 84 names it in a "crs" member that GDAL and QGIS read.
    """
    from cim.export.footprints import FootprintQuery, parse_bbox, select_footprints, write_geojson
    from cim.export.footprints_gpkg import write_gpkg
    from cim.export.output_crs import output_crs

    if bbox_crs and not bbox:
        raise InvalidParameterError("--bbox-crs needs --bbox", parameter="bbox-crs")
    query = FootprintQuery(bbox=parse_bbox(bbox, "--bbox"),
                           bbox_crs=output_crs(bbox_crs, authority_axis_order=False, parameter="--bbox-crs"),
                           crs=output_crs(crs, authority_axis_order=False, parameter="--crs"),
                           dataset=dataset, classes=frozenset(classes) if classes else None)
    store = DataDir(obj.data).open_store()
    try:
        page = select_footprints(store, query)
        n = (write_gpkg if fmt == "gpkg" else write_geojson)(page.features, query.crs, out)
    finally:
        store.close()
    click.echo(f"{n} footprints in {query.crs.name} -> {out}")


@export.command("cityjson")
@click.option("--dataset", required=True, help="The dataset to export.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output .city.json file.")
@click.option("--bbox", default=None, metavar="W,S,E,N",
              help="Only top-level features (with their children) whose footprint meets this lon/lat box.")
@click.option("--crs", default=None, metavar="EPSG:N",
              help="Write vertices in this CRS (default: the dataset's source CRS).")
@click.pass_obj
def cityjson(obj: Any, dataset: str, out: Path, bbox: str | None, crs: str | None) -> None:
    """A dataset (or the part of it in a bbox) as CityJSON 2.0."""
    from cim.export.cityjson import write_cityjson
    from cim.export.footprints import parse_bbox

    store = DataDir(obj.data).open_store()
    try:
        summary = write_cityjson(store, dataset, out, bbox=parse_bbox(bbox, "--bbox"), crs=crs)
    finally:
        store.close()
    click.echo(f"{summary.city_objects} city objects, {summary.vertices} vertices, "
               f"{summary.reference_system or 'no CRS'} -> {out}")
