#!/bin/sh
# Regenerate signatures/registry-snapshot.toml, the registry snapshot bundled
# into the binary, from the saved registry pages in signatures/tools/data/.
#
# It runs the same code as `shadowmcp signatures update` on saved pages, and
# leaves out every host the curated files (servers.toml, platforms.toml)
# already attribute, so curated entries always win.
#
# Usage: signatures/tools/make-registry-snapshot.sh [SAVED_PAGES.json ...]
#   default input: signatures/tools/data/registry-excerpt.json
# To snapshot the whole registry on a machine with network access, save its
# pages first (one JSON array of page objects), e.g.:
#   shadowmcp signatures update --dry-run    # checks that the registry answers
#   cursor=; while :; do curl -sf "https://registry.modelcontextprotocol.io/v0.1/servers?limit=100${cursor:+&cursor=$cursor}" ...; done
# and pass the saved file here. Rebuild afterwards (the file is embedded).
set -eu
cd "$(dirname "$0")/../.."
[ "$#" -gt 0 ] || set -- signatures/tools/data/registry-excerpt.json
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT INT TERM
args=""
for f in "$@"; do args="$args --source $f"; done
# shellcheck disable=SC2086 # word splitting of $args is intended
cargo run --quiet --bin shadowmcp -- signatures update \
    --signatures signatures --exclude-known --allow-shrink \
    $args --output "$out"
cp "$out/registry.toml" signatures/registry-snapshot.toml
echo "wrote signatures/registry-snapshot.toml"
