#!/usr/bin/env bash
# Re-fetch the JavaScript/CSS that gridmap's maps load, into gridmap/static/vendor/.
#
# gridmap runs on intranets without internet, so every asset folium would take from a CDN is
# served by the app itself (gridmap/maps/assets.py rewrites the links). This script rebuilds
# gridmap/static/vendor/ from the npm registry (`npm pack`, no install, no build step) and from
# the files folium ships in its own package, then writes vendor/README.md.
#
# Usage:  PYTHON=/path/to/venv/bin/python scripts/vendor-assets.sh
#   PYTHON must be the interpreter gridmap runs with: folium's bundled heat-map scripts and its
#   licence are copied from that installation.
#
# To upgrade a library: change its version below, run the script, update the CDN URLs it replaces
# in ASSETS (gridmap/maps/assets.py) if folium changed them, run `pytest tests/test_assets.py`.
set -euo pipefail

# Versions. Same as folium 0.20 links, except where noted.
FOLIUM=0.20.0
LEAFLET=1.9.3
JQUERY=3.7.1
AWESOME_MARKERS=2.0.5      # folium links 2.0.2 (cdnjs); npm's 2.0.5 has the same JS and ships its LICENSE
BOOTSTRAP3=3.4.1           # only the Glyphicons part; folium links bootstrap 3.0.0's glyphicons CSS
FONTAWESOME=6.2.0
MARKERCLUSTER=1.5.3        # folium links 1.1.0; 1.5.x is the release line made for Leaflet 1.x
FULLSCREEN=3.0.0
MINIMAP=3.6.1
MEASURE=2.1.7
D3=3.5.5                   # branca colormap legends
TIMEDIMENSION=1.1.1
ISO8601=0.2.1
MOMENT=2.30.1              # folium links 2.18.1, which has published ReDoS advisories (fixed in 2.29.4)
VECTORGRID=1.3.0          # not a folium asset: gridmap's vector-tile cell layers (Leaflet >= 1.0.2, works with 1.9)
# Licences of what Leaflet.VectorGrid's bundled build carries (its package.json ranges, newest match;
# point-geometry@0.0.0 ships no licence file, its renamed successor @mapbox/point-geometry the same ISC text).
VECTORGRID_BUNDLED="pbf@3.3.0 ieee754@1.2.1 vector-tile@1.3.0 @mapbox/point-geometry@0.1.0 whatwg-fetch@2.0.4 topojson-client@2.1.0 geojson-vt@2.2.0"
APACHE_LICENSE_FROM=long@5.2.3  # ships the verbatim Apache-2.0 text (see iso8601-js-period below)

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/gridmap/static/vendor"
PYTHON=${PYTHON:-python3}

# The asset names and URLs localize_assets knows are folium's; check before fetching anything.
folium_version=$("$PYTHON" -c 'import folium; print(folium.__version__)') || {
    echo "$PYTHON cannot import folium: set PYTHON to the interpreter gridmap runs with." >&2
    exit 1
}
if [[ "$folium_version" != "$FOLIUM" ]]; then
    echo "folium is $folium_version under $PYTHON, this script is written for $FOLIUM:" >&2
    echo "check its asset URLs (folium.Map.default_js etc.) and update FOLIUM." >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$work/vendor"
mkdir -p "$out" "$work/tgz"

tar_opts=()
if tar --version 2>/dev/null | grep -q 'GNU tar'; then
    # Some npm tarballs carry pax headers GNU tar does not know; they are harmless.
    tar_opts+=(--warning=no-unknown-keyword)
fi

# fetch NPM_SPEC: unpack the package into a fresh directory and print that directory.
fetch() {
    local spec=$1 tgz dir
    tgz=$(npm pack --silent --pack-destination "$work/tgz" "$spec" | tail -n 1)
    [[ -n "$tgz" && -f "$work/tgz/$tgz" ]] || { echo "npm pack $spec failed" >&2; exit 1; }
    dir="$work/pkg/${tgz%.tgz}"
    mkdir -p "$dir"
    tar -xzf "$work/tgz/$tgz" -C "$dir" --strip-components=1 "${tar_opts[@]}"
    echo "$dir"
}

# put SRC DEST_UNDER_VENDOR: copy one file, creating directories.
put() {
    mkdir -p "$(dirname "$out/$2")"
    cp "$1" "$out/$2"
}

# expect FILE EXTENDED_REGEX WHAT: stop unless FILE has a line matching the pattern.
expect() {
    grep -Eq -- "$2" "$1" || { echo "$1: expected $3" >&2; exit 1; }
}

# --- Leaflet ------------------------------------------------------------------------------------
p=$(fetch "leaflet@$LEAFLET")
put "$p/dist/leaflet.js" leaflet/leaflet.js
put "$p/dist/leaflet.css" leaflet/leaflet.css
# leaflet.css names marker-icon.png; Leaflet's JS derives marker-icon-2x.png and
# marker-shadow.png from the same folder.
for f in layers.png layers-2x.png marker-icon.png marker-icon-2x.png marker-shadow.png; do
    put "$p/dist/images/$f" "leaflet/images/$f"
done
put "$p/LICENSE" leaflet/LICENSE

# --- jQuery (folium's popups, GeoJson(embed=False) and HeatMapWithTime use $) --------------------
p=$(fetch "jquery@$JQUERY")
put "$p/dist/jquery.min.js" jquery/jquery.min.js
put "$p/LICENSE.txt" jquery/LICENSE.txt

# --- Leaflet.awesome-markers (folium.Icon) -------------------------------------------------------
p=$(fetch "leaflet.awesome-markers@$AWESOME_MARKERS")
put "$p/dist/leaflet.awesome-markers.js" leaflet.awesome-markers/leaflet.awesome-markers.js
put "$p/dist/leaflet.awesome-markers.css" leaflet.awesome-markers/leaflet.awesome-markers.css
for f in markers-soft.png markers-soft@2x.png markers-shadow.png markers-shadow@2x.png; do
    put "$p/dist/images/$f" "leaflet.awesome-markers/images/$f"
done
put "$p/LICENSE" leaflet.awesome-markers/LICENSE

# --- Glyphicons Halflings (folium.Icon's default prefix), cut out of Bootstrap 3's CSS -----------
# Only the banner, the @font-face and the .glyphicon* rules, which in bootstrap.css run from the
# first @font-face up to the "* {" box-sizing rule; the rest of Bootstrap 3 would restyle the page.
p=$(fetch "bootstrap@$BOOTSTRAP3")
mkdir -p "$out/bootstrap3-glyphicons/css"
awk 'NR == 1, /^ \*\/$/ { print; next }
     /^@font-face/ { on = 1 }
     /^\* \{/ { on = 0 }
     on { print }' "$p/dist/css/bootstrap.css" >"$out/bootstrap3-glyphicons/css/bootstrap-glyphicons.css"
glyphicons_css="$out/bootstrap3-glyphicons/css/bootstrap-glyphicons.css"
expect "$glyphicons_css" 'font-family: "Glyphicons Halflings"' "the Glyphicons @font-face"
expect "$glyphicons_css" '^\.glyphicon-zoom-in:before' "the .glyphicon-* rules"
if grep -q 'box-sizing' "$glyphicons_css"; then
    echo "bootstrap $BOOTSTRAP3: glyphicons cut took more than the glyphicons" >&2
    exit 1
fi
for f in "$p"/dist/fonts/glyphicons-halflings-regular.*; do
    put "$f" "bootstrap3-glyphicons/fonts/$(basename "$f")"
done
put "$p/LICENSE" bootstrap3-glyphicons/LICENSE

# --- Font Awesome Free (folium.Icon(prefix="fa")) ------------------------------------------------
p=$(fetch "@fortawesome/fontawesome-free@$FONTAWESOME")
put "$p/css/all.min.css" fontawesome-free/css/all.min.css
for f in "$p"/webfonts/*; do
    put "$f" "fontawesome-free/webfonts/$(basename "$f")"
done
put "$p/LICENSE.txt" fontawesome-free/LICENSE.txt

# --- Leaflet.markercluster (MarkerCluster, FastMarkerCluster) ------------------------------------
p=$(fetch "leaflet.markercluster@$MARKERCLUSTER")
for f in leaflet.markercluster.js MarkerCluster.css MarkerCluster.Default.css; do
    put "$p/dist/$f" "leaflet.markercluster/$f"
done
put "$p/MIT-LICENCE.txt" leaflet.markercluster/MIT-LICENCE.txt

# --- leaflet.fullscreen (Fullscreen) -------------------------------------------------------------
p=$(fetch "leaflet.fullscreen@$FULLSCREEN")
for f in Control.FullScreen.js Control.FullScreen.css icon-fullscreen.svg LICENSE; do
    put "$p/$f" "leaflet.fullscreen/$f"
done

# --- Leaflet-MiniMap (MiniMap) -------------------------------------------------------------------
p=$(fetch "leaflet-minimap@$MINIMAP")
put "$p/dist/Control.MiniMap.min.js" leaflet-minimap/Control.MiniMap.min.js
put "$p/dist/Control.MiniMap.min.css" leaflet-minimap/Control.MiniMap.min.css
put "$p/dist/images/toggle.png" leaflet-minimap/images/toggle.png
put "$p/dist/images/toggle.svg" leaflet-minimap/images/toggle.svg
put "$p/LICENSE.txt" leaflet-minimap/LICENSE.txt

# --- leaflet-measure (MeasureControl) ------------------------------------------------------------
p=$(fetch "leaflet-measure@$MEASURE")
put "$p/dist/leaflet-measure.min.js" leaflet-measure/leaflet-measure.min.js
put "$p/dist/leaflet-measure.css" leaflet-measure/leaflet-measure.css
for f in "$p"/dist/images/*.png; do
    put "$f" "leaflet-measure/images/$(basename "$f")"
done
put "$p/LICENSE" leaflet-measure/LICENSE

# --- d3 v3 (branca colormap legends, e.g. on Choropleth) ----------------------------------------
p=$(fetch "d3@$D3")
put "$p/d3.min.js" d3/d3.min.js
put "$p/LICENSE" d3/LICENSE

# --- Leaflet.TimeDimension (HeatMapWithTime, TimestampedGeoJson) --------------------------------
p=$(fetch "leaflet-timedimension@$TIMEDIMENSION")
put "$p/dist/leaflet.timedimension.min.js" leaflet-timedimension/leaflet.timedimension.min.js
# Its control CSS takes the Glyphicons font from netdna.bootstrapcdn.com; point it at ours.
sed 's#//netdna\.bootstrapcdn\.com/bootstrap/3\.0\.0/fonts/#../bootstrap3-glyphicons/fonts/#g' \
    "$p/dist/leaflet.timedimension.control.css" \
    >"$out/leaflet-timedimension/leaflet.timedimension.control.css"
if grep -q 'netdna' "$out/leaflet-timedimension/leaflet.timedimension.control.css"; then
    echo "leaflet-timedimension $TIMEDIMENSION: CDN font URL left in control CSS" >&2
    exit 1
fi
put "$p/LICENSE" leaflet-timedimension/LICENSE

# --- iso8601-js-period (Leaflet.TimeDimension's dependency) -------------------------------------
# The package declares Apache-2.0 but ships no licence file; the licence text is taken verbatim
# from another npm package that ships it unmodified.
p=$(fetch "iso8601-js-period@$ISO8601")
put "$p/iso8601.js" iso8601-js-period/iso8601.js
p=$(fetch "$APACHE_LICENSE_FROM")
expect "$p/LICENSE" '^ +Apache License$' "the Apache License text"
expect "$p/LICENSE" 'Version 2\.0, January 2004' "the Apache License 2.0 text"
put "$p/LICENSE" iso8601-js-period/LICENSE
printf '%s\n' \
    'iso8601-js-period (https://github.com/mdartic/iso8601-js-period)' \
    'Copyright (c) Nezasa, 2012-2013' \
    'Licensed under the Apache License, Version 2.0 (see LICENSE), as stated in iso8601.js.' \
    >"$out/iso8601-js-period/NOTICE"

# --- Moment.js (TimestampedGeoJson) --------------------------------------------------------------
p=$(fetch "moment@$MOMENT")
put "$p/min/moment.min.js" moment/moment.min.js
put "$p/LICENSE" moment/LICENSE

# --- Leaflet.VectorGrid (gridmap's vector-tile cell layers; not linked by folium) ----------------
# The bundled build: Leaflet.VectorGrid with pbf, vector-tile, topojson-client and (for its GeoJSON
# slicer, which gridmap does not use) geojson-vt. The package ships no licence file: its licence
# (Beerware) is the "Legalese" section of its README; the bundled libraries' licences are copied
# from their own npm packages.
p=$(fetch "leaflet.vectorgrid@$VECTORGRID")
put "$p/dist/Leaflet.VectorGrid.bundled.min.js" leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js
expect "$p/README.md" 'THE BEER-WARE LICENSE' "the Beerware licence in README.md"
awk '/^## Legalese/ { on = 1; next } on { print }' "$p/README.md" >"$out/leaflet.vectorgrid/LICENSE"
expect "$out/leaflet.vectorgrid/LICENSE" 'THE BEER-WARE LICENSE' "the Beerware licence text"
for spec in $VECTORGRID_BUNDLED; do
    p=$(fetch "$spec")
    licence=$(find "$p" -maxdepth 1 -iname 'licen[cs]e*' | head -n 1)
    [[ -n "$licence" ]] || { echo "$spec ships no licence file" >&2; exit 1; }
    name=${spec%@*}
    name=${name#@}
    put "$licence" "leaflet.vectorgrid/bundled-licences/${name//\//-}-$(basename "$licence")"
done

# --- Files folium ships or generates (HeatMap, HeatMapWithTime, Icon(angle=...)) ----------------
folium_dir=$("$PYTHON" -c 'import folium, os; print(os.path.dirname(folium.__file__))')
for f in leaflet_heat.min.js pa7_hm.min.js pa7_leaflet_hm.min.js; do
    put "$folium_dir/templates/$f" "folium/$f"
done
folium_license=$("$PYTHON" - <<'EOF'
from importlib.metadata import distribution

dist = distribution("folium")
print(next(dist.locate_file(f) for f in dist.files if f.name.startswith("LICENSE")))
EOF
)
put "$folium_license" folium/LICENSE.txt
# folium links this stylesheet from GitHub but does not ship it: one rotate rule per degree,
# used by folium.Icon(angle=N) as the class fa-rotate-N. Same rules as folium's file.
{
    echo '/* Generated by scripts/vendor-assets.sh: the rules of folium/templates/leaflet.awesome.rotate.min.css. */'
    for deg in $(seq 1 360); do
        printf '.fa-rotate-%d{-ms-transform:rotate(%ddeg);-webkit-transform:rotate(%ddeg);transform:rotate(%ddeg)}\n' \
            "$deg" "$deg" "$deg" "$deg"
    done
} >"$out/folium/leaflet.awesome.rotate.css"

# --- README --------------------------------------------------------------------------------------
cat >"$out/README.md" <<EOF
# Vendored map assets

Written by \`scripts/vendor-assets.sh\`; do not edit by hand. The service runs on intranets
without internet, so every JavaScript/CSS file a folium map needs is served from here;
\`gridmap/maps/assets.py\` (\`localize_assets\`) rewrites folium's CDN links to these files.
Only the files pages link, and the images/fonts their CSS refers to, are kept.

| Folder | Library | Version | Source (npm) | Licence |
|---|---|---|---|---|
| \`leaflet/\` | Leaflet | $LEAFLET | \`leaflet@$LEAFLET\` | BSD-2-Clause (\`LICENSE\`) |
| \`jquery/\` | jQuery | $JQUERY | \`jquery@$JQUERY\` | MIT (\`LICENSE.txt\`) |
| \`leaflet.awesome-markers/\` | Leaflet.awesome-markers | $AWESOME_MARKERS | \`leaflet.awesome-markers@$AWESOME_MARKERS\` | MIT (\`LICENSE\`; package.json says ISC) |
| \`bootstrap3-glyphicons/\` | Glyphicons Halflings from Bootstrap 3 | $BOOTSTRAP3 | \`bootstrap@$BOOTSTRAP3\` (glyphicons rules of \`dist/css/bootstrap.css\`, \`dist/fonts/\`) | MIT (\`LICENSE\`) |
| \`fontawesome-free/\` | Font Awesome Free | $FONTAWESOME | \`@fortawesome/fontawesome-free@$FONTAWESOME\` | icons CC-BY-4.0, fonts OFL-1.1, code MIT (\`LICENSE.txt\`) |
| \`leaflet.markercluster/\` | Leaflet.markercluster | $MARKERCLUSTER | \`leaflet.markercluster@$MARKERCLUSTER\` | MIT (\`MIT-LICENCE.txt\`) |
| \`leaflet.fullscreen/\` | leaflet.fullscreen | $FULLSCREEN | \`leaflet.fullscreen@$FULLSCREEN\` | MIT (\`LICENSE\`) |
| \`leaflet-minimap/\` | Leaflet-MiniMap | $MINIMAP | \`leaflet-minimap@$MINIMAP\` | BSD-2-Clause (\`LICENSE.txt\`) |
| \`leaflet-measure/\` | leaflet-measure | $MEASURE | \`leaflet-measure@$MEASURE\` | MIT (\`LICENSE\`) |
| \`d3/\` | D3 | $D3 | \`d3@$D3\` | BSD-3-Clause (\`LICENSE\`) |
| \`leaflet-timedimension/\` | Leaflet.TimeDimension | $TIMEDIMENSION | \`leaflet-timedimension@$TIMEDIMENSION\` | MIT (\`LICENSE\`) |
| \`iso8601-js-period/\` | iso8601-js-period | $ISO8601 | \`iso8601-js-period@$ISO8601\` | Apache-2.0 (\`LICENSE\`, \`NOTICE\`) |
| \`moment/\` | Moment.js | $MOMENT | \`moment@$MOMENT\` | MIT (\`LICENSE\`) |
| \`leaflet.vectorgrid/\` | Leaflet.VectorGrid (bundled build) | $VECTORGRID | \`leaflet.vectorgrid@$VECTORGRID\` | Beerware (\`LICENSE\`, from its README); bundled libraries' licences in \`bundled-licences/\` |
| \`folium/\` | files from folium | $FOLIUM | the \`folium\` Python package (PyPI), not npm | MIT (\`LICENSE.txt\`) |

Notes:

- Versions are the ones folium $FOLIUM links, except: Leaflet.awesome-markers (folium: 2.0.2 on
  cdnjs; npm's 2.0.5 has the same JavaScript and ships its licence), Leaflet.markercluster
  (folium: 1.1.0; 1.5.x is the line made for Leaflet 1.x), Moment.js (folium: 2.18.1, which has
  published ReDoS advisories fixed in 2.29.4) and Bootstrap 3 (folium links the 3.0.0
  glyphicons stylesheet; 3.4.1 has the same font with more glyphs).
- \`bootstrap3-glyphicons/css/bootstrap-glyphicons.css\` is cut out of Bootstrap's
  \`dist/css/bootstrap.css\`: its banner, the Glyphicons \`@font-face\` and the \`.glyphicon*\` rules.
- \`leaflet-timedimension/leaflet.timedimension.control.css\` is patched: its Glyphicons
  \`@font-face\` pointed at \`//netdna.bootstrapcdn.com/bootstrap/3.0.0/fonts/\`, now at
  \`../bootstrap3-glyphicons/fonts/\`.
- \`iso8601-js-period\` ships no licence file; \`LICENSE\` is the Apache-2.0 text (copied from
  \`$APACHE_LICENSE_FROM\`, which ships it verbatim) and \`NOTICE\` gives the copyright line of
  \`iso8601.js\`.
- \`folium/leaflet_heat.min.js\` (Leaflet.heat with simpleheat, (c) 2014 Vladimir Agafonkin,
  BSD-2-Clause), \`folium/pa7_hm.min.js\` (heatmap.js, (c) Patrick Wied, MIT) and
  \`folium/pa7_leaflet_hm.min.js\` (its Leaflet overlay, MIT) are copied from folium's package;
  their upstream copyright headers are kept in the files. \`folium/leaflet.awesome.rotate.css\`
  is generated with the same rules as folium's \`leaflet.awesome.rotate.min.css\`, which folium
  links from GitHub but does not ship.
- \`leaflet.vectorgrid/\` is not a folium asset: gridmap's map pages link it themselves when a
  cell layer is drawn from vector tiles. Its bundled build carries pbf, ieee754, vector-tile,
  point-geometry, topojson-client, whatwg-fetch and geojson-vt (used only by its GeoJSON slicer);
  their licence files (\`$VECTORGRID_BUNDLED\`) are in \`bundled-licences/\`. It calls
  \`L.DomEvent.fakeStop\`, which Leaflet 1.8 removed: \`gridmap/static/map-ui.js\` puts it back
  before making a tile layer.
- Not kept: Bootstrap 5 (folium's templates use none of it) and source maps (\`leaflet.js\` and
  \`leaflet.markercluster.js\` name one; browsers ask for it only with developer tools open).
EOF

rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$out" "$DEST"
echo "Vendored into $DEST ($(du -sh "$DEST" | cut -f1))"
