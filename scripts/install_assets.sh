#!/usr/bin/env bash
# Install the web map's front-end libraries from the npm registry and copy their
# dist files into gis_api/static/vendor/ (git-ignored), so the product serves every
# JS/CSS file itself and works on an intranet with no internet.
# Idempotent: returns at once when the vendor copy matches web/package.json.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
web="$root/web"
vendor="$root/gis_api/static/vendor"
stamp="$vendor/.installed"
want="$(sha256sum "$web/package.json" "$0" | sha256sum | cut -c1-16)"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -f "$vendor/leaflet/leaflet.js" \
      && -f "$vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js" \
      && -f "$vendor/swagger-ui/swagger-ui-bundle.js" && -f "$vendor/leaflet-geoman/leaflet-geoman.js" \
      && -f "$vendor/maplibre-gl/maplibre-gl.js" \
      && -f "$vendor/leaflet-control-geocoder/Control.Geocoder.js" ]]; then
  echo "web assets: up to date ($vendor)"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "web assets: npm not found; install Node.js and npm (Debian: apt-get install -y nodejs npm)" >&2
  exit 1
fi

echo "web assets: npm install in $web"
(cd "$web" && npm install --no-audit --no-fund --loglevel=error)

rm -rf "$vendor"
mkdir -p "$vendor/leaflet" "$vendor/leaflet.vectorgrid"
cp -r "$web/node_modules/leaflet/dist/." "$vendor/leaflet/"
cp "$web/node_modules/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js" "$vendor/leaflet.vectorgrid/"
cp "$web/node_modules/leaflet.vectorgrid/LICENSE" "$vendor/leaflet.vectorgrid/LICENSE" 2>/dev/null || true
cp "$web/node_modules/leaflet/LICENSE" "$vendor/leaflet/LICENSE" 2>/dev/null || true
# the API docs page (/docs) uses Swagger UI from here, not from a CDN
mkdir -p "$vendor/swagger-ui"
cp "$web/node_modules/swagger-ui-dist/swagger-ui-bundle.js" "$web/node_modules/swagger-ui-dist/swagger-ui.css" \
   "$web/node_modules/swagger-ui-dist/favicon-32x32.png" "$vendor/swagger-ui/"
# the grid editor (issue 11) drags shared vertices with Leaflet-Geoman (MIT)
mkdir -p "$vendor/leaflet-geoman"
cp "$web/node_modules/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.js" \
   "$web/node_modules/@geoman-io/leaflet-geoman-free/dist/leaflet-geoman.css" "$vendor/leaflet-geoman/"
cp "$web/node_modules/@geoman-io/leaflet-geoman-free/LICENSE" "$vendor/leaflet-geoman/LICENSE" 2>/dev/null || true
# the MapLibre GL JS page (/static/maplibre.html, issue 16)
mkdir -p "$vendor/maplibre-gl"
cp "$web/node_modules/maplibre-gl/dist/maplibre-gl.js" "$web/node_modules/maplibre-gl/dist/maplibre-gl.css" \
   "$web/node_modules/maplibre-gl/LICENSE.txt" "$vendor/maplibre-gl/"
# Leaflet Control Geocoder on the Nominatim-compatible endpoints (/static/geocoder.html, issue 16)
mkdir -p "$vendor/leaflet-control-geocoder"
cp "$web/node_modules/leaflet-control-geocoder/dist/Control.Geocoder.js" \
   "$web/node_modules/leaflet-control-geocoder/dist/Control.Geocoder.css" \
   "$web/node_modules/leaflet-control-geocoder/LICENSE" "$vendor/leaflet-control-geocoder/"
echo "$want" > "$stamp"
echo "web assets: installed into $vendor"
