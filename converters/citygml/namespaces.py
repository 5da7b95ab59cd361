"""XML namespaces of CityGML 1.0/2.0/3.0 and GML 3.1.1/3.2, and fast tag helpers.

lxml gives tags as ``{namespace}localname`` strings. The hot loops compare whole tag strings
against the precomputed sets below (one per concept, covering every CityGML/GML version), and
split unknown tags with :func:`split_tag`, whose results are cached.
"""
from __future__ import annotations

import re

GML_NAMESPACES = ("http://www.opengis.net/gml", "http://www.opengis.net/gml/3.2")
XLINK = "http://www.w3.org/1999/xlink"
XLINK_HREF = f"{{{XLINK}}}href"
CITYGML_VERSIONS = ("1.0", "2.0", "3.0")

#: CityGML module namespace folder -> the prefix its specification uses
MODULE_PREFIXES = {
    "core": "core", "building": "bldg", "transportation": "tran", "relief": "dem", "generics": "gen",
    "vegetation": "veg", "waterbody": "wtr", "landuse": "luse", "bridge": "brid", "tunnel": "tun",
    "cityfurniture": "frn", "cityobjectgroup": "grp", "construction": "con", "appearance": "app",
    "texturedsurface": "tex", "pointcloud": "pcl", "dynamizer": "dyn", "versioning": "vers",
}

_CITYGML_NS = re.compile(r"^http://www\.opengis\.net/citygml/(?:([a-z]+)/)?(\d\.\d)(?:\.\d)?$")

GML_ID = tuple(f"{{{ns}}}id" for ns in GML_NAMESPACES)


def citygml_namespace(module: str, version: str) -> str:
    return f"http://www.opengis.net/citygml/{version}" if module == "core" else \
        f"http://www.opengis.net/citygml/{module}/{version}"


def citygml_module(namespace: str) -> tuple[str, str] | None:
    """``(module, version)`` of a CityGML namespace (``("building", "2.0")``), or None."""
    m = _CITYGML_NS.match(namespace)
    if not m:
        return None
    return (m.group(1) or "core", m.group(2))


def gml_tags(*local_names: str) -> frozenset[str]:
    """The tags of GML elements ``local_names`` in GML 3.1.1 and 3.2."""
    return frozenset(f"{{{ns}}}{name}" for ns in GML_NAMESPACES for name in local_names)


def citygml_tags(module: str, *local_names: str) -> frozenset[str]:
    """The tags of elements ``local_names`` of a CityGML module in every CityGML version."""
    return frozenset(f"{{{citygml_namespace(module, v)}}}{name}" for v in CITYGML_VERSIONS for name in local_names)


_split_cache: dict[str, tuple[str, str]] = {}
_CACHE_LIMIT = 20_000


def split_tag(tag: str) -> tuple[str, str]:
    """``"{ns}local"`` -> ``("ns", "local")`` (cached; comments/PIs give ``("", "")``)."""
    hit = _split_cache.get(tag)
    if hit is not None:
        return hit
    if not isinstance(tag, str):  # comments and processing instructions
        return ("", "")
    ns, _, local = tag[1:].rpartition("}") if tag.startswith("{") else ("", "", tag)
    result = (ns, local)
    if len(_split_cache) < _CACHE_LIMIT:
        _split_cache[tag] = result
    return result


def is_gml(namespace: str) -> bool:
    return namespace in GML_NAMESPACES


def qualified_name(namespace: str, local: str, prefix: str | None) -> str:
    """``bldg:Building`` style name: the specification's prefix for CityGML modules, the
    document's prefix otherwise (ADEs), or the bare local name."""
    mod = citygml_module(namespace)
    if mod is not None:
        return f"{MODULE_PREFIXES.get(mod[0], mod[0])}:{local}"
    if is_gml(namespace):
        return f"gml:{local}"
    return f"{prefix}:{local}" if prefix else local


def citygml_version(namespaces: "list[str] | tuple[str, ...] | set[str]") -> str | None:
    """The CityGML version used by a set of namespace URIs (the highest one found)."""
    found = {m[1] for ns in namespaces if (m := citygml_module(ns)) is not None}
    return max(found) if found else None


def gml_version(namespaces: "list[str] | tuple[str, ...] | set[str]") -> str | None:
    if GML_NAMESPACES[1] in namespaces:
        return "3.2"
    if GML_NAMESPACES[0] in namespaces:
        return "3.1.1"
    return None


# --- tags the reader looks for ------------------------------------------------------------

#: top-level members handled one at a time by the streaming loop
CITY_OBJECT_MEMBER = citygml_tags("core", "cityObjectMember")
GML_FEATURE_MEMBER = gml_tags("featureMember")
GML_FEATURE_MEMBERS = gml_tags("featureMembers")
#: other top-level members that are skipped (but still cleared from memory)
SKIPPED_MEMBERS = (citygml_tags("appearance", "appearanceMember")
                   | citygml_tags("core", "appearanceMember", "versionMember", "versionTransitionMember"))
#: members holding one feature (CityGML 3.0 ``core:featureMember`` holds non-city-object features,
#: which are skipped unless they are city objects)
SINGLE_MEMBERS = CITY_OBJECT_MEMBER | GML_FEATURE_MEMBER | citygml_tags("core", "featureMember")
MEMBER_TAGS = SINGLE_MEMBERS | GML_FEATURE_MEMBERS | SKIPPED_MEMBERS

#: root elements: the DTD check runs as soon as one starts
CITY_MODEL = citygml_tags("core", "CityModel")

GML_NAME = gml_tags("name")
GML_DESCRIPTION = gml_tags("description")
GML_BOUNDED_BY = gml_tags("boundedBy")
GML_ENVELOPE = gml_tags("Envelope")
