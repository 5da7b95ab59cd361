"""Exports from the store: footprints (GeoJSON, GeoPackage) and CityJSON."""
