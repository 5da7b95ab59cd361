"""Footprints over HTTP: OGC API - Features (Part 1 core, Part 2 CRS by reference) and a download.

* ``GET /collections``, ``/collections/{c}``, ``/collections/{c}/items``, ``/collections/{c}/items/{id}``
  with ``c`` = ``buildings`` (class Building) or ``footprints`` (every class that has one).
* ``GET /api/footprints?format=geojson|gpkg&bbox=…&crs=…`` the whole selection as one file.

``crs``/``bbox-crs`` take ``http://www.opengis.net/def/crs/EPSG/0/N``, ``EPSG:N`` or CRS84 (the
default). Coordinates follow the CRS's axis order (Part 2: EPSG:4326 is lat/lon, CRS84 lon/lat);
the ``Content-Crs`` header names the CRS. The GeoPackage is always x = easting/longitude.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from cim.errors import InvalidParameterError, NotFoundError
from cim.export.footprints import (FootprintPage, FootprintQuery, geojson_feature, parse_bbox, parse_int,
                                   select_footprints)
from cim.export.footprints_gpkg import write_gpkg
from cim.export.output_crs import CRS84_URI, output_crs
from cim.store import Store
from server.features_openapi import OPENAPI_PATHS

GEOJSON = "application/geo+json"
GPKG = "application/geopackage+sqlite3"
DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET = 100, 10_000, 1_000_000_000
COLLECTIONS: dict[str, tuple[str, frozenset[str] | None]] = {
    "buildings": ("Building footprints with height range (class Building)", frozenset({"Building"})),
    "footprints": ("Footprints of every city object that has one (buildings, roads, generic objects...)", None),
}
#: CRSs advertised in collection documents; any other EPSG code is accepted too
SUGGESTED_CRS = [CRS84_URI] + [f"http://www.opengis.net/def/crs/EPSG/0/{c}" for c in (4326, 5899, 32649, 3405, 3857)]
QUERY_PARAMS = {"bbox", "bbox-crs", "crs", "limit", "offset", "dataset", "f"}


def _collection(request: Request, cid: str) -> dict[str, Any]:
    if cid not in COLLECTIONS:
        raise NotFoundError(f"no collection named '{cid}'; the collections are {', '.join(COLLECTIONS)}", collection=cid)
    items = str(request.url_for("collection_items", cid=cid))
    return {"id": cid, "title": cid.capitalize(), "description": COLLECTIONS[cid][0], "itemType": "feature",
            "crs": SUGGESTED_CRS + ["http://www.opengis.net/def/crs/EPSG/0/*"], "storageCrs": CRS84_URI,
            "links": [{"href": str(request.url_for("collection", cid=cid)), "rel": "self", "type": "application/json"},
                      {"href": items, "rel": "items", "type": GEOJSON, "title": "Footprints as GeoJSON"},
                      {"href": f"{request.url_for('footprints_download')}?format=gpkg" + (
                          f"&class={next(iter(COLLECTIONS[cid][1]))}" if COLLECTIONS[cid][1] else ""),
                       "rel": "enclosure", "type": GPKG, "title": "All footprints as a GeoPackage"}]}


async def collections(request: Request) -> Response:
    return JSONResponse({"collections": [_collection(request, c) for c in COLLECTIONS],
                         "links": [{"href": str(request.url), "rel": "self", "type": "application/json"}]})


async def collection(request: Request) -> Response:
    return JSONResponse(_collection(request, request.path_params["cid"]))


def _query(request: Request, classes: frozenset[str] | None, *, paged: bool, xy: bool = False) -> FootprintQuery:
    q = request.query_params
    bbox_crs = q.get("bbox-crs")
    if bbox_crs and not q.get("bbox"):
        raise InvalidParameterError("bbox-crs needs bbox", parameter="bbox-crs")
    if "class" in q:
        classes = frozenset(q.getlist("class"))
    return FootprintQuery(
        bbox=parse_bbox(q.get("bbox")), bbox_crs=output_crs(bbox_crs, parameter="bbox-crs"),
        crs=output_crs(q.get("crs"), authority_axis_order=not xy), dataset=q.get("dataset") or None, classes=classes,
        limit=parse_int(q.get("limit"), "limit", DEFAULT_LIMIT, 1, MAX_LIMIT) if paged else None,
        offset=parse_int(q.get("offset"), "offset", 0, 0, MAX_OFFSET) if paged else 0)


def _page_url(request: Request, offset: int) -> str:
    return str(request.url.include_query_params(offset=offset))


def _collection_body(request: Request, page: FootprintPage) -> dict[str, Any]:
    q = page.query
    body: dict[str, Any] = {"type": "FeatureCollection", "numberMatched": page.number_matched,
                            "numberReturned": len(page.features),
                            "features": [geojson_feature(f) for f in page.features]}
    links = [{"href": str(request.url), "rel": "self", "type": GEOJSON}]
    if q.limit is not None:
        if q.offset + q.limit < page.number_matched:
            links.append({"href": _page_url(request, q.offset + q.limit), "rel": "next", "type": GEOJSON})
        if q.offset > 0:
            links.append({"href": _page_url(request, max(0, q.offset - q.limit)), "rel": "prev", "type": GEOJSON})
    body["links"] = links
    return body


def _crs_headers(query: FootprintQuery) -> dict[str, str]:
    return {"Content-Crs": f"<{query.crs.uri}>"}


async def items(request: Request) -> Response:
    cid = request.path_params["cid"]
    _collection(request, cid)
    query = _query(request, COLLECTIONS[cid][1], paged=True)
    store: Store = request.app.state.store
    page = await run_in_threadpool(select_footprints, store, query)
    body = _collection_body(request, page)
    body["links"].append({"href": str(request.url_for("collection", cid=cid)), "rel": "collection",
                          "type": "application/json"})
    return JSONResponse(body, media_type=GEOJSON, headers=_crs_headers(query))


async def item(request: Request) -> Response:
    cid, fid = request.path_params["cid"], request.path_params["fid"]
    _collection(request, cid)
    dataset, sep, feature_id = fid.partition(":")
    if not sep or not feature_id:
        raise NotFoundError(f"no footprint '{fid}' in '{cid}': ids are '<dataset>:<feature id>'", id=fid)
    query = _query(request, COLLECTIONS[cid][1], paged=False)
    query = FootprintQuery(crs=query.crs, dataset=dataset, classes=query.classes)
    store: Store = request.app.state.store
    page = await run_in_threadpool(select_footprints, store, query)
    found = [f for f in page.features if f.row.feature_id == feature_id]
    if not found:
        raise NotFoundError(f"no footprint '{fid}' in '{cid}'", id=fid)
    body = geojson_feature(found[0])
    body["links"] = [{"href": str(request.url), "rel": "self", "type": GEOJSON},
                     {"href": str(request.url_for("collection", cid=cid)), "rel": "collection", "type": "application/json"}]
    return JSONResponse(body, media_type=GEOJSON, headers=_crs_headers(query))


async def footprints_download(request: Request) -> Response:
    fmt = request.query_params.get("format", "geojson")
    if fmt not in ("geojson", "gpkg"):
        raise InvalidParameterError(f"format must be geojson or gpkg, not '{fmt[:20]}'", parameter="format")
    query = _query(request, None, paged=False, xy=fmt == "gpkg")
    store: Store = request.app.state.store
    page = await run_in_threadpool(select_footprints, store, query)
    if fmt == "geojson":
        body = _collection_body(request, page)
        return JSONResponse(body, media_type=GEOJSON, headers={
            **_crs_headers(query), "Content-Disposition": 'attachment; filename="footprints.geojson"'})
    fd, tmp = tempfile.mkstemp(prefix="cim-footprints-", suffix=".gpkg")
    os.close(fd)
    try:
        await run_in_threadpool(write_gpkg, page.features, query.crs, Path(tmp))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    name = f"footprints-epsg{query.crs.epsg}.gpkg"
    return FileResponse(tmp, media_type=GPKG, filename=name, headers=_crs_headers(query),
                        background=BackgroundTask(os.unlink, tmp))


def routes() -> list[Route]:
    return [
        Route("/collections", collections, methods=["GET"], name="collections"),
        Route("/collections/{cid}", collection, methods=["GET"], name="collection"),
        Route("/collections/{cid}/items", items, methods=["GET"], name="collection_items"),
        Route("/collections/{cid}/items/{fid}", item, methods=["GET"], name="collection_item"),
        Route("/api/footprints", footprints_download, methods=["GET"], name="footprints_download"),
    ]

__all__ = ["OPENAPI_PATHS", "routes"]
