"""A small geo Lambda handler: buffer the points it is sent and return them as GeoJSON."""

import json

import geopandas
import shapely


def handler(event, context=None):
    points = geopandas.GeoSeries(shapely.points(event.get("coordinates", [[0, 0]])), crs="EPSG:4326")
    buffered = points.to_crs("EPSG:3857").buffer(event.get("metres", 100)).to_crs("EPSG:4326")
    return {"statusCode": 200, "body": json.dumps(json.loads(buffered.to_json()))}


if __name__ == "__main__":
    print(handler({"coordinates": [[13.4, 52.5]], "metres": 50})["statusCode"])
