"""OpenAPI 3 path items of the footprint routes (:mod:`server.features_api`), for the app's
OpenAPI document."""
from __future__ import annotations

from typing import Any

_ERROR = {"description": "Invalid parameter (bbox, crs, bbox-crs, limit, offset, format)",
          "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_NOT_FOUND = {"description": "Unknown collection, feature or dataset",
              "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _param(name: str, description: str, schema: dict[str, Any], where: str = "query",
           required: bool = False, explode: bool | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "description": description, "required": required, "schema": schema}
    if explode is not None:
        p["style"], p["explode"] = "form", explode
    return p


_CID = _param("cid", "Collection: `buildings` (class Building) or `footprints` (every class)",
              {"type": "string", "enum": ["buildings", "footprints"]}, "path", True)
_BBOX = _param("bbox", "minx,miny,maxx,maxy in bbox-crs (default CRS84 lon/lat); a footprint matches when it "
               "intersects the box", {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 6},
               explode=False)
_CRS = _param("crs", "Output CRS: `http://www.opengis.net/def/crs/EPSG/0/N`, `EPSG:N` or CRS84 (default). "
              "Coordinates follow the CRS's axis order (EPSG:4326 is lat/lon)", {"type": "string", "format": "uri"})
_BBOX_CRS = _param("bbox-crs", "CRS of bbox (same spellings as crs; default CRS84)", {"type": "string", "format": "uri"})
_DATASET = _param("dataset", "Only footprints of this dataset", {"type": "string"})
_CLASS = _param("class", "Only these CIM classes (repeatable), e.g. Building", {"type": "string"})
_GEOJSON = {"application/geo+json": {"schema": {"type": "object"}}}
_CONTENT_CRS = {"Content-Crs": {"description": "URI of the CRS of the coordinates, in angle brackets",
                                "schema": {"type": "string"}}}

OPENAPI_PATHS: dict[str, Any] = {
    "/collections": {"get": {
        "summary": "Feature collections (OGC API - Features)", "operationId": "getCollections", "tags": ["Footprints"],
        "responses": {"200": {"description": "The collections", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
    "/collections/{cid}": {"get": {
        "summary": "One collection", "operationId": "getCollection", "tags": ["Footprints"], "parameters": [_CID],
        "responses": {"200": {"description": "The collection", "content": {"application/json": {"schema": {"type": "object"}}}},
                      "404": _NOT_FOUND}}},
    "/collections/{cid}/items": {"get": {
        "summary": "Footprints as a GeoJSON FeatureCollection, paged", "operationId": "getFeatures", "tags": ["Footprints"],
        "parameters": [_CID, _BBOX, _BBOX_CRS, _CRS, _DATASET, _CLASS,
                       _param("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100}),
                       _param("offset", "Features to skip (the next/prev links carry it)",
                              {"type": "integer", "minimum": 0, "default": 0})],
        "responses": {"200": {"description": "GeoJSON FeatureCollection with numberMatched, numberReturned and "
                                             "self/next/prev links", "headers": _CONTENT_CRS, "content": _GEOJSON},
                      "400": _ERROR, "404": _NOT_FOUND}}},
    "/collections/{cid}/items/{fid}": {"get": {
        "summary": "One footprint", "operationId": "getFeature", "tags": ["Footprints"],
        "parameters": [_CID, _param("fid", "`<dataset>:<feature id>`", {"type": "string"}, "path", True), _CRS],
        "responses": {"200": {"description": "GeoJSON Feature", "headers": _CONTENT_CRS, "content": _GEOJSON},
                      "400": _ERROR, "404": _NOT_FOUND}}},
    "/api/footprints": {"get": {
        "summary": "All matching footprints as one GeoJSON or GeoPackage file", "operationId": "downloadFootprints",
        "tags": ["Footprints"],
        "parameters": [_param("format", "File format", {"type": "string", "enum": ["geojson", "gpkg"], "default": "geojson"}),
                       _BBOX, _BBOX_CRS, _CRS, _DATASET, _CLASS],
        "responses": {"200": {"description": "The file (Content-Disposition: attachment); the GeoPackage's "
                                             "coordinates are x = easting/longitude", "headers": _CONTENT_CRS,
                              "content": {**_GEOJSON, "application/geopackage+sqlite3": {
                                  "schema": {"type": "string", "format": "binary"}}}},
                      "400": _ERROR, "404": _NOT_FOUND}}},
}
