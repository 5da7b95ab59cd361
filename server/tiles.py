"""Tile routes, served from an in-memory LRU cache (see docs/http-api.md for the caching rules).

* ``GET /tiles/{dataset}/{path}``: a file of the dataset's published version folder
  (``<tiles>/<dataset>/CURRENT`` names it, docs/layout.md).
* ``GET /tiles/city/tileset.json``: every published dataset as an external-tileset child.

``CURRENT`` is stat'ed on every request (a microsecond syscall, so a new version shows up at
once); everything else (reading ``CURRENT``, file contents, gzip, the city tileset) runs in a
worker thread, and only when it is not cached yet.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

import tiling
from cim.errors import CimError, DatasetNotFoundError, InputError, NotFoundError, TilesetNotFoundError

log = logging.getLogger("server.tiles")

MEDIA_TYPES = {
    ".json": "application/json", ".glb": "model/gltf-binary", ".gltf": "model/gltf+json",
    ".b3dm": "application/octet-stream", ".pnts": "application/octet-stream", ".i3dm": "application/octet-stream",
    ".cmpt": "application/octet-stream", ".subtree": "application/octet-stream", ".bin": "application/octet-stream",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp", ".ktx2": "image/ktx2",
}
#: tileset JSON: always revalidate (a 304 is cheap), so that a new version shows up at once
JSON_CACHE_CONTROL = "no-cache"
#: content: URLs do not name the version, so browsers may reuse a copy for one minute only
CONTENT_CACHE_CONTROL = "public, max-age=60, must-revalidate"
GZIP_MIN_SAVING = 0.10  # binary content is gzipped only when that saves at least 10 %
CACHE_ENTRY_SHARE = 4  # a file larger than budget / 4 is streamed from disk, not cached
CITY = "city"  # reserved: /tiles/city/tileset.json
CURRENT_FILE = "CURRENT"


@dataclass(frozen=True)
class TileFile:
    """A file ready to answer: body, gzipped body (None when gzip does not help), strong ETags."""

    body: bytes
    gzipped: bytes | None
    etag: str
    media_type: str
    cache_control: str

    @property
    def nbytes(self) -> int:
        return len(self.body) + len(self.gzipped or b"")

    @property
    def etag_gzip(self) -> str:
        return self.etag[:-1] + '-gz"'

    @classmethod
    def make(cls, body: bytes, media_type: str, cache_control: str) -> TileFile:
        """JSON is gzipped whenever that makes it smaller, binary content when it saves 10 %."""
        packed = gzip.compress(body, compresslevel=6, mtime=0)
        limit = len(body) if media_type.endswith("json") else len(body) * (1.0 - GZIP_MIN_SAVING)
        etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
        return cls(body, packed if len(packed) < limit else None, etag, media_type, cache_control)


@dataclass(frozen=True)
class LargeFile:
    """A file over the cache's entry limit: streamed from disk, never gzipped."""

    path: Path
    etag: str
    media_type: str
    cache_control: str


@dataclass(frozen=True)
class Published:
    """A dataset's published version: ``token`` changes whenever the version folder does."""

    dataset: str
    version: str
    folder: Path
    token: str


class TileCache:
    """LRU of :class:`TileFile` keyed by (dataset, version token, path), within a byte budget."""

    def __init__(self, budget: int) -> None:
        self.budget = max(0, budget)
        self.max_entry = self.budget // CACHE_ENTRY_SHARE
        self._entries: OrderedDict[tuple[str, str, str], TileFile] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str, str]) -> TileFile | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: tuple[str, str, str], item: TileFile) -> None:
        if item.nbytes > self.max_entry:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            self._bytes -= old.nbytes if old else 0
            self._entries[key] = item
            self._bytes += item.nbytes
            while self._bytes > self.budget:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes

    def drop_dataset(self, dataset: str, keep_token: str | None = None) -> None:
        """Forget a dataset's files of every version but ``keep_token``."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == dataset and k[1] != keep_token]:
                self._bytes -= self._entries.pop(key).nbytes

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


class TileSource:
    """The published tilesets under ``tiles_root``, read through a :class:`TileCache`."""

    def __init__(self, tiles_root: Path, cache: TileCache) -> None:
        self.tiles_root = tiles_root
        self.cache = cache
        self._published: dict[str, tuple[tuple[int, int, int], Published]] = {}
        self._city: tuple[tuple[tuple[str, str], ...], TileFile] | None = None

    async def published(self, dataset: str) -> Published:
        """The dataset's current version; raises DatasetNotFoundError / TilesetNotFoundError."""
        check_dataset_name(dataset)
        try:
            st = os.stat(self.tiles_root / dataset / CURRENT_FILE)
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        memo = self._published.get(dataset)
        if memo is not None and memo[0] == stamp:
            return memo[1]
        try:
            published = await run_in_threadpool(_resolve, self.tiles_root, dataset)
        except NotFoundError:
            self._published.pop(dataset, None)
            self.cache.drop_dataset(dataset)
            raise
        if stamp is not None:
            self._published[dataset] = (stamp, published)
        self.cache.drop_dataset(dataset, keep_token=published.token)
        return published

    async def file(self, dataset: str, path: str) -> TileFile | LargeFile:
        relative = check_tile_path(path)
        published = await self.published(dataset)
        key = (dataset, published.token, relative)
        found = self.cache.get(key)
        if found is None:
            loaded = await run_in_threadpool(_load, published.folder, relative, self.cache.max_entry)
            if isinstance(loaded, LargeFile):
                return loaded
            self.cache.put(key, loaded)
            found = loaded
        return found

    async def city(self) -> TileFile:
        """The city tileset over every published dataset (rebuilt when one of them changes)."""
        published = []
        for name in await run_in_threadpool(_dataset_dirs, self.tiles_root):
            try:
                published.append(await self.published(name))
            except (NotFoundError, InputError):
                continue
        key = tuple((p.dataset, p.token) for p in published)
        if self._city is not None and self._city[0] == key:
            return self._city[1]
        folders = [(p.dataset, p.folder) for p in published]
        tileset = await run_in_threadpool(_city_tileset, folders)
        body = json.dumps(tileset, separators=(",", ":")).encode()
        made = await run_in_threadpool(TileFile.make, body, "application/json", JSON_CACHE_CONTROL)
        self._city = (key, made)
        return made


def check_tile_path(path: str) -> str:
    """A relative path inside a version folder: no empty, '.'-led, backslash or control segments."""
    if path == "" or path.endswith("/"):
        raise NotFoundError(f"'{path}' is a folder, not a file", path=path)
    for segment in path.split("/"):
        if (not segment or segment.startswith(".") or "\\" in segment
                or any(ord(c) < 32 or ord(c) == 127 for c in segment)):
            raise InputError(f"invalid tile path '{path}': segments must be non-empty and may not start "
                             "with '.' or hold '\\' or control characters", path=path)
    return path


def _load(folder: Path, relative: str, max_entry: int) -> TileFile | LargeFile:
    root = folder.resolve()
    target = (root / relative).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise NotFoundError(f"no file '{relative}' in the published tileset", path=relative)
    suffix = target.suffix.lower()
    media_type = MEDIA_TYPES.get(suffix, "application/octet-stream")
    cache_control = JSON_CACHE_CONTROL if suffix == ".json" else CONTENT_CACHE_CONTROL
    st = target.stat()
    if st.st_size > max_entry:
        tag = hashlib.blake2b(f"{folder}|{relative}|{st.st_size}|{st.st_mtime_ns}".encode(), digest_size=16)
        return LargeFile(target, f'"{tag.hexdigest()}"', media_type, cache_control)
    return TileFile.make(target.read_bytes(), media_type, cache_control)


def accepts_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            return not (q.startswith("q=") and _float(q[2:]) == 0.0)
    return False


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0


def etag_matches(if_none_match: str | None, *etags: str) -> bool:
    """Weak comparison, as RFC 9110 prescribes for If-None-Match."""
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or any(e in tags for e in etags)


def tile_response(request: Request, item: TileFile | LargeFile) -> Response:
    """200 (gzipped when accepted and useful), 304 on a matching If-None-Match, no body for HEAD."""
    if isinstance(item, LargeFile):
        headers = {"ETag": item.etag, "Cache-Control": item.cache_control}
        if etag_matches(request.headers.get("if-none-match"), item.etag):
            return Response(status_code=304, headers=headers)
        return FileResponse(item.path, media_type=item.media_type, headers=headers)
    use_gzip = item.gzipped is not None and accepts_gzip(request.headers.get("accept-encoding", ""))
    headers = {"ETag": item.etag_gzip if use_gzip else item.etag, "Cache-Control": item.cache_control,
               "Vary": "Accept-Encoding"}
    if etag_matches(request.headers.get("if-none-match"), item.etag, item.etag_gzip):
        return Response(status_code=304, headers=headers)
    body = item.gzipped if use_gzip and item.gzipped is not None else item.body
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
    if request.method == "HEAD":
        headers["Content-Length"] = str(len(body))
        body = b""
    return Response(body, media_type=item.media_type, headers=headers)


async def tile(request: Request) -> Response:
    dataset: str = request.path_params["dataset"]
    path: str = request.path_params["path"]
    if dataset == CITY:
        raise NotFoundError("the city has only /tiles/city/tileset.json; its children are /tiles/<dataset>/...",
                            path=path)
    source: TileSource = request.app.state.tiles
    return tile_response(request, await source.file(dataset, path))


async def city_tileset(request: Request) -> Response:
    source: TileSource = request.app.state.tiles
    return tile_response(request, await source.city())


async def published_or_none(source: TileSource, dataset: str) -> Published | None:
    try:
        return await source.published(dataset)
    except CimError:
        return None


def routes() -> list[Route]:
    return [
        Route("/tiles/city/tileset.json", city_tileset, methods=["GET", "HEAD"], name="city_tileset"),
        Route("/tiles/{dataset}/{path:path}", tile, methods=["GET", "HEAD"], name="tile"),
    ]


def cache_stats(source: TileSource) -> dict[str, Any]:
    cache = source.cache
    return {"entries": len(cache), "bytes": cache.nbytes, "budget": cache.budget, "hits": cache.hits,
            "misses": cache.misses}


# --- the published layout (docs/layout.md) through tiling -------------------------------------

def check_dataset_name(name: str) -> str:
    if not tiling.is_dataset_name(name):
        raise InputError(f"'{name}' is not a valid dataset name: 1-64 letters, digits, '_', '-' or '.', "
                         "starting with a letter or digit (and not 'city')", dataset=name)
    return name


def _resolve(tiles_root: Path, dataset: str) -> Published:
    folder = tiling.current_tileset_dir(tiles_root, dataset)
    if folder is None:
        if not (tiles_root / dataset).is_dir():
            raise DatasetNotFoundError(f"no published dataset named '{dataset}'", dataset=dataset)
        raise TilesetNotFoundError(f"dataset '{dataset}' has no published tileset", dataset=dataset)
    return Published(dataset, folder.name, folder, f"{folder.name}@{folder.stat().st_ino}")


def _dataset_dirs(tiles_root: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(tiles_root) if e.is_dir() and tiling.is_dataset_name(e.name))
    except OSError:
        return []


def _city_tileset(folders: list[tuple[str, Path]]) -> dict[str, Any]:
    """``tiling.city_tileset`` over the datasets' tileset.json; a dataset whose tileset.json
    cannot be read is left out (logged), so that one broken dataset does not hide the city."""
    children = []
    for name, folder in folders:
        try:
            doc = json.loads((folder / "tileset.json").read_bytes())
            tiling.tileset_region(doc)
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            log.warning("city tileset: leaving out dataset '%s': its tileset.json is unusable (%s)", name, exc)
            continue
        extras = doc.get("extras") if isinstance(doc.get("extras"), dict) else {}
        children.append((tiling.dataset_child_uri(name), {**doc, "extras": {**extras, "dataset": name}}))
    return tiling.city_tileset(children)


_TILE_RESPONSES = {
    "200": {"description": "The file (JSON, glb, b3dm, pnts...); ETag, Cache-Control, gzip when it helps"},
    "304": {"description": "Not modified (If-None-Match)"},
    "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"},
    "404": {"$ref": "#/components/responses/Error"}}

OPENAPI_PATHS: dict[str, Any] = {
    "/tiles/city/tileset.json": {
        method: {"summary": "The city tileset: every published dataset as an external tileset (3D Tiles 1.1)",
                 "operationId": f"cityTileset{method.title()}", "tags": ["tiles"], "security": [{"bearer": ["read"]}, {}],
                 "responses": _TILE_RESPONSES} for method in ("get", "head")},
    "/tiles/{dataset}/{path}": {
        method: {"summary": "A file of a dataset's published tileset", "operationId": f"tile{method.title()}",
                 "tags": ["tiles"], "security": [{"bearer": ["read"]}, {}],
                 "parameters": [{"name": "dataset", "in": "path", "required": True, "schema": {"type": "string"}},
                                {"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
                                 "description": "Path inside the version folder, may contain '/'"}],
                 "responses": _TILE_RESPONSES} for method in ("get", "head")},
}
