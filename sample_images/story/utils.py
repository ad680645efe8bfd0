"""Small geometry helpers with no dependency beyond the standard library."""

import math

EARTH_RADIUS_M = 6_371_000


def parse_points(raw):
    return [(float(lon), float(lat)) for lon, lat in raw if -180 <= float(lon) <= 180 and -90 <= float(lat) <= 90]


def buffer_points(points, metres, sides=16):
    rings = []
    for lon, lat in points:
        dlat = math.degrees(metres / EARTH_RADIUS_M)
        dlon = dlat / max(math.cos(math.radians(lat)), 1e-9)
        ring = [
            (lon + dlon * math.cos(2 * math.pi * k / sides), lat + dlat * math.sin(2 * math.pi * k / sides))
            for k in range(sides)
        ]
        rings.append(ring + ring[:1])
    return {"type": "MultiPolygon", "coordinates": [[ring] for ring in rings]}
