"""Lambda entry point: validate the request and hand it to the geometry helpers."""

import json

from utils import buffer_points, parse_points


def handler(event, context=None):
    points = parse_points(event.get("coordinates", []))
    if not points:
        return {"statusCode": 400, "body": json.dumps({"error": "no coordinates"})}
    return {"statusCode": 200, "body": json.dumps(buffer_points(points, event.get("metres", 100)))}
