#!/usr/bin/env python3
"""Writes N Sentinel-2-like STAC items (~4 KB, 15 assets) as NDJSON to stdout.

Deterministic for a given N and --seed, so runs are comparable. Shapes follow
Sentinel-2 L2A items on the Planetary Computer: a tile footprint polygon, eo/
proj/sat properties, 15 band and metadata assets with roles and projection info.
"""
import argparse
import json
import random
import sys
from datetime import datetime, timedelta, timezone

BANDS = [("B01", 60), ("B02", 10), ("B03", 10), ("B04", 10), ("B05", 20), ("B06", 20), ("B07", 20),
         ("B08", 10), ("B8A", 20), ("B09", 60), ("B11", 20), ("B12", 20)]
EXTRA = ["AOT", "SCL", "visual"]


def item(i, rng, collection):
    lon = -180 + (i * 0.37) % 355
    lat = -60 + (i * 0.11) % 130
    d = 0.9 + rng.random() * 0.1
    t = datetime(2020, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=i * 7)
    tile = f"{(i % 60) + 1:02d}{'CDEFGHJKLMNPQRSTUVWX'[i % 20]}{'ABCDEFGH'[i % 8]}{'ABCDEFGH'[(i // 8) % 8]}"
    iid = f"S2B_MSIL2A_{t:%Y%m%dT%H%M%S}_R{i % 143:03d}_T{tile}_{i:08d}"
    base = f"https://sentinel2l2a01.blob.core.windows.net/l2/{tile}/{t:%Y/%m/%d}"
    assets = {}
    for name, res in BANDS:
        assets[name] = {
            "href": f"{base}/R{res}m/{name}.tif",
            "type": "image/tiff; application=geotiff; profile=cloud-optimized",
            "title": f"Band {name} - {res}m",
            "roles": ["data"],
            "gsd": float(res),
        }
    for name in EXTRA:
        assets[name] = {"href": f"{base}/{name}.tif", "type": "image/tiff; application=geotiff", "roles": ["data"], "title": name}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [
            "https://stac-extensions.github.io/eo/v1.0.0/schema.json",
            "https://stac-extensions.github.io/projection/v1.0.0/schema.json",
            "https://stac-extensions.github.io/sat/v1.0.0/schema.json",
        ],
        "id": iid,
        "collection": collection,
        "bbox": [lon, lat, lon + d, lat + d],
        "geometry": {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat], [lon + d, lat + d], [lon, lat + d], [lon, lat]]]},
        "properties": {
            "datetime": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "platform": "Sentinel-2B",
            "constellation": "Sentinel 2",
            "instruments": ["msi"],
            "eo:cloud_cover": round(rng.random() * 100, 6),
            "proj:epsg": 32600 + (i % 60) + 1,
            "sat:orbit_state": "descending",
            "sat:relative_orbit": i % 143,
            "s2:mgrs_tile": tile,
            "s2:processing_baseline": "05.00",
        },
        "links": [
            {"rel": "collection", "href": f"https://planetarycomputer.microsoft.com/api/stac/v1/collections/{collection}", "type": "application/json"},
            {"rel": "parent", "href": f"https://planetarycomputer.microsoft.com/api/stac/v1/collections/{collection}", "type": "application/json"},
            {"rel": "root", "href": "https://planetarycomputer.microsoft.com/api/stac/v1/", "type": "application/json"},
            {"rel": "self", "href": f"https://planetarycomputer.microsoft.com/api/stac/v1/collections/{collection}/items/{iid}", "type": "application/geo+json"},
        ],
        "assets": assets,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("n", type=int)
    ap.add_argument("--collection", default="sentinel-2-l2a")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    out = sys.stdout
    for i in range(a.n):
        out.write(json.dumps(item(i, rng, a.collection), separators=(",", ":")))
        out.write("\n")


if __name__ == "__main__":
    main()
