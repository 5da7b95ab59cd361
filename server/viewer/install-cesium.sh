#!/usr/bin/env bash
# Install CesiumJS's built files for the viewer, offline-friendly and idempotent:
#   1. npm ci in server/viewer (exact versions from package-lock.json; .npmrc: ignore-scripts),
#   2. copy node_modules/cesium/Build/Cesium to server/static/vendor/cesium (or to $1).
# A stamp file (the sha256 of package-lock.json) in the target makes a second run a no-op.
# The copy goes to a temporary folder first and is renamed into place, so a server never sees
# half a CesiumJS.
set -euo pipefail

viewer_dir="$(cd "$(dirname "$(readlink -f "$0")")" && pwd)"
target="${1:-$viewer_dir/../static/vendor/cesium}"
mkdir -p "$(dirname "$target")"
target="$(cd "$(dirname "$target")" && pwd)/$(basename "$target")"
stamp="$target/.installed-from"
want="$(sha256sum "$viewer_dir/package-lock.json" | cut -d' ' -f1)"

if [[ -f "$target/Cesium.js" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  # make compares Cesium.js with package.json: keep it newer so that make stops asking
  if [[ "$viewer_dir/package.json" -nt "$target/Cesium.js" || "$viewer_dir/package-lock.json" -nt "$target/Cesium.js" ]]; then
    touch "$target/Cesium.js"
  fi
  echo "CesiumJS already installed in $target"
  exit 0
fi

command -v npm >/dev/null || { echo "install-cesium: npm not found (Node.js 20.19 or newer is needed)" >&2; exit 1; }

wanted_version="$(sed -n 's/^ *"cesium": *"\([^"]*\)".*/\1/p' "$viewer_dir/package.json" | head -n1)"
installed_version=""
if [[ -f "$viewer_dir/node_modules/cesium/package.json" ]]; then
  installed_version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$viewer_dir/node_modules/cesium/package.json" | head -n1)"
fi
if [[ "$installed_version" != "$wanted_version" || ! -f "$viewer_dir/node_modules/cesium/Build/Cesium/Cesium.js" ]]; then
  echo "install-cesium: npm ci in $viewer_dir (cesium $wanted_version)"
  npm ci --prefix "$viewer_dir" --no-audit --no-fund
fi

build="$viewer_dir/node_modules/cesium/Build/Cesium"
[[ -f "$build/Cesium.js" ]] || { echo "install-cesium: $build/Cesium.js is missing after npm ci" >&2; exit 1; }

tmp="$(mktemp -d "$(dirname "$target")/.cesium-tmp-XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cp -R "$build/." "$tmp/"
echo "$want" > "$tmp/.installed-from"
chmod 755 "$tmp"
old=""
if [[ -e "$target" ]]; then
  old="$(dirname "$target")/.cesium-old-$$"
  mv "$target" "$old"
fi
mv "$tmp" "$target"
trap - EXIT
[[ -n "$old" ]] && rm -rf "$old"
echo "CesiumJS $wanted_version installed in $target"
