"""CityGML properties -> flat, typed feature attributes.

* simple properties (``function``, ``usage``, ``class``, ``roofType``, ``yearOfConstruction``,
  ``storeysAboveGround``, ``creationDate`` ...) keep their local name; counts and years are
  ``int``, measures (an ``uom`` attribute: ``measuredHeight``) are ``float`` in metres, ``true``/
  ``false`` are ``bool``, codes stay ``str``; a repeated property joins its values with ``"; "``;
* generic attributes of every kind (1.0/2.0 ``gen:stringAttribute`` ... ``gen:genericAttributeSet``,
  3.0 ``genericAttribute`` with ``gen:StringAttribute`` ...) are typed by their kind; sets are
  flattened as ``set.name``; a measure's unit goes to ``name.uom``;
* addresses (xAL 2 and xAL 3) become ``address.street``, ``address.number``, ``address.city``,
  ``address.postalCode``, ``address.country``, ``address.region`` (``address2.*`` for a second one);
* CityGML 3.0 ``con:height`` becomes ``height.value`` (metres), ``height.status`` ..., and a
  measured height also becomes ``measuredHeight``;
* other structured properties are flattened as ``property.leaf`` (at most 20 values each).
"""
from __future__ import annotations

from lxml import etree

from cim.feature import AttributeValue
from converters.citygml.namespaces import XLINK_HREF, split_tag
from converters.citygml.notes import Notes

Attributes = dict[str, AttributeValue]

INT_PROPERTIES = frozenset({"yearOfConstruction", "yearOfDemolition", "storeysAboveGround", "storeysBelowGround",
                            "lod", "numberOfFloors"})

#: unit of measure (normalised) -> metres
LENGTH_UNITS = {
    "m": 1.0, "metre": 1.0, "meter": 1.0, "metres": 1.0, "meters": 1.0, "9001": 1.0,
    "ft": 0.3048, "foot": 0.3048, "feet": 0.3048, "[ft_i]": 0.3048, "ft_i": 0.3048, "9002": 0.3048,
    "us-ft": 1200 / 3937, "ft_us": 1200 / 3937, "[ft_us]": 1200 / 3937, "9003": 1200 / 3937,
    "mm": 0.001, "millimetre": 0.001, "millimeter": 0.001, "1025": 0.001,
    "cm": 0.01, "centimetre": 0.01, "centimeter": 0.01, "1033": 0.01,
    "km": 1000.0, "kilometre": 1000.0, "kilometer": 1000.0, "9036": 1000.0,
}
_MAX_FLATTENED = 20


def _unit_key(uom: str) -> str:
    u = uom.strip().lower().lstrip("#")
    for sep in ("::", ":", "/"):
        if sep in u:
            u = u.rsplit(sep, 1)[1]
    return u


def length_factor(uom: str | None) -> float | None:
    """Metres per unit for a length ``uom`` (``#m``, ``ft``, ``urn:ogc:def:uom:EPSG::9002`` ...),
    1.0 when there is no uom, None for an unknown unit."""
    if uom is None or not uom.strip():
        return 1.0
    return LENGTH_UNITS.get(_unit_key(uom))


def _put(attrs: Attributes, key: str, value: AttributeValue) -> None:
    if key in attrs:
        attrs[key] = f"{attrs[key]}; {value}"
    else:
        attrs[key] = value


def _text(el: etree._Element) -> str | None:
    t = el.text
    if t is None:
        return None
    t = t.strip()
    return t or None


class AttributeReader:
    """Reads attributes into a feature's dict; unit problems go to the report."""

    def __init__(self, notes: Notes) -> None:
        self.report = notes.report
        self.notes = notes

    # --- simple properties -------------------------------------------------------------------
    def simple(self, prop: etree._Element, name: str, attrs: Attributes) -> None:
        text = _text(prop)
        if text is None:
            href = prop.get(XLINK_HREF)
            if href:
                _put(attrs, name, href)
            return
        uom = prop.get("uom")
        value: AttributeValue
        if uom is not None:
            value = self._measure(text, uom, name, attrs)
        elif name in INT_PROPERTIES:
            value = _int_or_str(text)
        elif text in ("true", "false"):
            value = text == "true"
        else:
            value = text
        _put(attrs, name, value)

    def _measure(self, text: str, uom: str, name: str, attrs: Attributes) -> AttributeValue:
        try:
            number = float(text)
        except ValueError:
            return text  # a list of measures ("3.0 2.5") stays text
        factor = length_factor(uom)
        if factor is None:
            attrs[f"{name}.uom"] = uom
            self.notes.warn(("uom", uom), f"unit of measure '{uom}' (on {name}) is not a length unit this reader "
                            "knows; the value is kept as written and its unit stored in '<name>.uom'")
            return number
        return number * factor

    # --- generic attributes --------------------------------------------------------------------
    def generic(self, prop: etree._Element, attrs: Attributes, prefix: str = "") -> None:
        """1.0/2.0 ``gen:xxxAttribute name="..."`` / ``gen:genericAttributeSet`` and 3.0
        ``genericAttribute`` holding ``gen:XxxAttribute``/``gen:GenericAttributeSet``."""
        local = split_tag(prop.tag)[1]
        if local == "genericAttribute":  # 3.0 property: the attribute object is its child
            for child in prop:
                self._generic3(child, attrs, prefix)
            return
        name = prop.get("name")
        if not name:
            return
        if local == "genericAttributeSet":
            for child in prop:
                if isinstance(child.tag, str):
                    self.generic(child, attrs, f"{prefix}{name}.")
            return
        value_el = next((c for c in prop if split_tag(c.tag)[1] == "value"), None)
        if value_el is not None:
            self._typed(local[:-len("Attribute")], value_el, f"{prefix}{name}", attrs)

    def _generic3(self, obj: etree._Element, attrs: Attributes, prefix: str) -> None:
        kind = split_tag(obj.tag)[1]
        name, value_el, members = None, None, []
        for c in obj:
            local = split_tag(c.tag)[1]
            if local == "name":
                name = _text(c)
            elif local == "value":
                value_el = c
            elif local == "genericAttribute":
                members.append(c)
        if not name:
            return
        if kind == "GenericAttributeSet":
            for m in members:
                self.generic(m, attrs, f"{prefix}{name}.")
        elif value_el is not None and kind.endswith("Attribute"):
            self._typed(kind[:-len("Attribute")].lower(), value_el, f"{prefix}{name}", attrs)

    def _typed(self, kind: str, value_el: etree._Element, key: str, attrs: Attributes) -> None:
        text = _text(value_el)
        if text is None:
            return
        kind = kind.lower()
        value: AttributeValue = text
        if kind == "int":
            value = _int_or_str(text)
        elif kind in ("double", "measure"):
            try:
                value = float(text)
            except ValueError:
                value = text
            uom = value_el.get("uom") or value_el.getparent().get("uom")  # type: ignore[union-attr]
            if kind == "measure" and uom:
                attrs[f"{key}.uom"] = uom
        _put(attrs, key, value)

    # --- addresses ---------------------------------------------------------------------------
    def address(self, prop: etree._Element, attrs: Attributes) -> None:
        n = 1
        while any(k.startswith(f"address{n if n > 1 else ''}.") for k in attrs):
            n += 1
        prefix = f"address{n if n > 1 else ''}."
        for el in prop.iter(*_XAL_TAGS):
            text = _text(el)
            if text is None:
                continue
            field = _XAL2_FIELDS.get(el.tag)
            if field is None:  # xAL 3: the meaning comes from the parent element
                parent = el.getparent()
                field = _XAL3_FIELDS.get((split_tag(parent.tag)[1] if parent is not None else "", split_tag(el.tag)[1]))
                if field is None:
                    continue
                kind = next((v for k, v in el.attrib.items() if k.endswith("NameType")), None)
                if kind not in (None, "NameOnly", "Name"):
                    field = f"{field}.{kind}"
            _put(attrs, prefix + field, text)

    # --- CityGML 3.0 height --------------------------------------------------------------------
    def height(self, prop: etree._Element, attrs: Attributes) -> None:
        n = 1
        while f"height{n if n > 1 else ''}.value" in attrs:
            n += 1
        key = f"height{n if n > 1 else ''}"
        for obj in prop:
            status, value = None, None
            for c in obj:
                local = split_tag(c.tag)[1]
                text = _text(c)
                if text is None:
                    continue
                if local == "value":
                    v = self._measure(text, c.get("uom") or "", f"{key}.value", attrs)
                    if isinstance(v, float):
                        value = v
                    attrs[f"{key}.value"] = v
                else:
                    attrs[f"{key}.{local}"] = text
                    if local == "status":
                        status = text
            if status == "measured" and value is not None and "measuredHeight" not in attrs:
                attrs["measuredHeight"] = value

    # --- anything else structured ----------------------------------------------------------------
    def flatten(self, prop: etree._Element, name: str, attrs: Attributes) -> None:
        count = 0
        for el in prop.iter():
            if not isinstance(el.tag, str) or len(el) or el is prop:
                continue
            local = split_tag(el.tag)[1]
            if local in ("posList", "pos", "coordinates"):
                self.report.skip(f"geometry inside property '{name}' (not understood)")
                return
            text = _text(el)
            if text is None:
                continue
            count += 1
            if count > _MAX_FLATTENED:
                self.report.skip(f"values of property '{name}' beyond the first {_MAX_FLATTENED}")
                return
            _put(attrs, f"{name}.{local}", text)


XAL2 = "urn:oasis:names:tc:ciq:xsdschema:xAL:2.0"
XAL3 = "urn:oasis:names:tc:ciq:xal:3"
_XAL2_FIELDS = {f"{{{XAL2}}}{local}": field for local, field in {
    "ThoroughfareName": "street", "ThoroughfareNumber": "number", "LocalityName": "city",
    "DependentLocalityName": "district", "PostalCodeNumber": "postalCode", "CountryName": "country",
    "AdministrativeAreaName": "region", "SubAdministrativeAreaName": "subregion", "PremiseName": "premise",
    "AddressLine": "line", "PostBoxNumber": "postBox",
}.items()}
_XAL3_FIELDS = {
    ("Thoroughfare", "NameElement"): "street", ("Thoroughfare", "Number"): "number",
    ("Locality", "NameElement"): "city", ("SubLocality", "NameElement"): "district",
    ("PostCode", "Identifier"): "postalCode", ("Country", "NameElement"): "country",
    ("AdministrativeArea", "NameElement"): "region", ("SubAdministrativeArea", "NameElement"): "subregion",
    ("Premise", "NameElement"): "premise", ("Premise", "Number"): "premiseNumber",
}
_XAL_TAGS = tuple(_XAL2_FIELDS) + tuple(f"{{{XAL3}}}{local}" for local in ("NameElement", "Number", "Identifier"))


def _int_or_str(text: str) -> AttributeValue:
    try:
        return int(text)
    except ValueError:
        try:
            f = float(text)
        except ValueError:
            return text
        return int(f) if f.is_integer() else f
