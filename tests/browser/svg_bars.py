#!/usr/bin/python3
"""Parses an SVG chart of copgen bench --svg as XML (standard library) and prints, as JSON,
its bars per panel: for each <g class="panel" data-metric="..."> the values (data-value)
and rows (data-row) of its <rect class="bar copgen"> and <rect class="bar reference">.
A file that is not well-formed XML fails with exit code 3.

    svg_bars.py CHART.svg
"""
import json
import sys
import xml.etree.ElementTree as ET

SVG = "{http://www.w3.org/2000/svg}"


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        root = ET.parse(sys.argv[1]).getroot()
    except ET.ParseError as e:
        print("svg_bars: %s: not well-formed XML: %s" % (sys.argv[1], e), file=sys.stderr)
        return 3
    out = {"root": root.tag, "width": root.get("width"), "height": root.get("height"), "panels": {},
           "texts": [t.text or "" for t in root.iter(SVG + "text")]}
    for g in root.iter(SVG + "g"):
        if g.get("class") != "panel":
            continue
        panel = {"copgen": [], "reference": [], "copgen_rows": [], "reference_rows": []}
        for r in g.iter(SVG + "rect"):
            cls = (r.get("class") or "").split()
            if not cls or cls[0] != "bar":
                continue
            for series in ("copgen", "reference"):
                if series in cls:
                    panel[series].append(float(r.get("data-value")))
                    panel[series + "_rows"].append(int(r.get("data-row")))
        out["panels"][g.get("data-metric")] = panel
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
