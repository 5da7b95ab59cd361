"""``xlink:href`` geometry references: resolution within a city object and, best effort, to
polygons seen earlier in the file; and the rule that keeps shared polygons from being meshed twice.

CityGML files commonly define each polygon once, in a thematic surface (``WallSurface``...), and
let the feature's ``lodNSolid`` reference it. The rule, per city object and LOD:

* polygons of thematic surfaces (SEMANTIC) and of openings' own geometry (OPENING) are always kept;
* a feature's own solid / multi-surface polygons (DIRECT) are dropped when a thematic surface or an
  opening of the same city object already carries them (matched by ``gml:id``), and a DIRECT
  reference to the same target with the same orientation is used once per feature and LOD.

References are looked up in the city object first, then in a bounded map of polygons seen earlier
in the file (:class:`SeenPolygons`); unresolved ones are counted in the report.
"""
from __future__ import annotations

from collections.abc import Iterator

from converters.citygml.notes import Notes
from converters.citygml.polygons import DIRECT, PolygonRecord, RefRecord

_MAX_DEPTH = 8


class SeenPolygons:
    """A bounded first-in-first-out map of polygon ``gml:id`` -> polygon record, for references
    to polygons of earlier city objects. The caps (polygons, coordinate values) hold memory
    constant on big files; references to polygons evicted from it are reported as unresolved."""

    def __init__(self, max_polygons: int = 20_000, max_values: int = 1_000_000) -> None:
        self.max_polygons = max_polygons
        self.max_values = max_values
        self._map: dict[str, tuple[PolygonRecord, int]] = {}  # in insertion order: oldest first
        self._values = 0

    def __len__(self) -> int:
        return len(self._map)

    @property
    def values(self) -> int:
        """Coordinate values of the exterior rings held."""
        return self._values

    def add(self, records: list[PolygonRecord]) -> None:
        """Remember the polygons of one city object that have a ``gml:id`` (a later polygon with
        the same id replaces an earlier one and counts as the newest)."""
        held = self._map
        values = self._values
        for r in records:
            pid = r.pid
            if pid is None or r.rings is None:
                continue
            old = held.pop(pid, None)
            if old is not None:
                values -= old[1]
            size = r.rings[0].size  # exterior ring
            held[pid] = (r, size)
            values += size
        self._values = values
        if len(held) > self.max_polygons or values > self.max_values:
            self._evict()

    def _evict(self) -> None:
        """Drop the oldest polygons until a quarter of either cap is free again."""
        held = self._map
        keys = iter(list(held))
        while len(held) > self.max_polygons * 3 // 4 or self._values > self.max_values * 3 // 4:
            pid = next(keys, None)
            if pid is None:
                break
            self._values -= held.pop(pid)[1]

    def get(self, pid: str) -> PolygonRecord | None:
        hit = self._map.get(pid)
        return None if hit is None else hit[0]


class _Resolver:
    def __init__(self, records: list[PolygonRecord], refs: list[RefRecord], seen: SeenPolygons) -> None:
        self.seen = seen
        self.index: dict[str, list[tuple[PolygonRecord | RefRecord, bool]]] = {}
        both: list[PolygonRecord | RefRecord] = [*records, *refs]
        for rec in both:
            for gid, flip_above in rec.path:
                self.index.setdefault(gid, []).append((rec, flip_above))

    def targets(self, href: str, chain: tuple[str, ...] = ()) -> Iterator[tuple[PolygonRecord, bool, bool]]:
        """(polygon record, flip relative to the reference, whether it is in this city object).
        ``chain`` holds the references being followed: cycles and deep chains stop there."""
        hits = self.index.get(href)
        if hits:
            chain = (*chain, href)
            for rec, flip_above in hits:
                rel = rec.flip ^ flip_above
                if isinstance(rec, PolygonRecord):
                    yield rec, rel, True
                elif len(chain) < _MAX_DEPTH and rec.href not in chain:
                    for target, flip, local in self.targets(rec.href, chain):
                        yield target, flip ^ rel, local
            return
        hit = self.seen.get(href)
        if hit is not None:
            yield hit, False, False


def resolve_member(records: list[PolygonRecord], refs: list[RefRecord], seen: SeenPolygons,
                   notes: Notes) -> list[PolygonRecord]:
    """Apply the rule of the module docstring to one city object's records; returns the
    polygons to triangulate."""
    seen.add(records)
    if not refs:
        return records
    items: list[PolygonRecord] = []
    covered: dict[int, set[str]] = {}  # lod -> ids carried by thematic surfaces and openings
    both: list[PolygonRecord | RefRecord] = [*records, *refs]
    for rec in both:
        if rec.origin != DIRECT:
            ids = covered.setdefault(rec.bucket & 7, set())
            ids.update(gid for gid, _ in rec.path)
            if isinstance(rec, RefRecord):
                ids.add(rec.href)
    for r in records:
        if r.origin == DIRECT and r.path:
            lod_ids = covered.get(r.bucket & 7)
            if lod_ids and any(gid in lod_ids for gid, _ in r.path):
                continue
        items.append(r)
    resolver: _Resolver | None = None
    used: set[tuple[int, str, bool]] = set()
    for ref in refs:
        ids = covered.get(ref.bucket & 7, set())
        if ref.origin == DIRECT:
            if ref.href in ids or (ref.bucket, ref.href, ref.flip) in used:
                continue
            used.add((ref.bucket, ref.href, ref.flip))
        found = False
        if resolver is None:
            resolver = _Resolver(records, refs, seen)
        for target, flip, local in resolver.targets(ref.href):
            found = True
            if ref.origin == DIRECT and local and (
                    (target.bucket == ref.bucket and target.origin == DIRECT)
                    or any(gid in ids for gid, _ in target.path)):
                continue  # already in this feature's mesh, or carried by a thematic surface/opening
            stype = target.stype
            if ref.origin != DIRECT or stype == 0:
                stype = ref.stype  # thematic surfaces and openings type what they reference
            items.append(PolygonRecord(ref.bucket, target.rings, stype, flip ^ ref.flip, (), ref.origin, None,
                                       target.mesh))
        if not found:
            notes.report.skip("unresolved xlink:href geometry reference")
            notes.warn("unresolved", f"line {ref.line}: geometry reference '#{ref.href}' points at nothing in this "
                       "city object nor at a polygon seen earlier in the file; it was left out", limit=5)
    return items
