#!/usr/bin/env bash
# report-screenshots.sh [DB] - docs/report-html.png: the HTML report (`report --format html`)
# of the demo database, rendered by headless Chromium (tests/tools/html_render.py: no network,
# a throw-away profile), full page at 1280 pixels, then put in a palette with pngquant.
#
# DB defaults to the demo's (.run/demo/tlsprobe.db); without one, deploy/scripts/demo.sh runs
# first to make it. The window is the one the database covers (first probe to last), in
# TP_SCREENSHOT_BUCKETS buckets (default 15: 2 s each over the demo's 30 s at its 2 s
# interval), so the charts over time have points to show. Output directory: TP_SCREENSHOT_DIR
# (default docs/). The collector comes from TP_DEMO_BUILD_DIR (default build/), built if
# missing. Talks to nothing but 127.0.0.1 (the demo) and the files here.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"

BUILD=${TP_DEMO_BUILD_DIR:-$ROOT/build}
OUT=${TP_SCREENSHOT_DIR:-$ROOT/docs}
BUCKETS=${TP_SCREENSHOT_BUCKETS:-15}
MAX_BYTES=$((300 * 1024)) # what docs/ should carry for one picture
DB=${1:-$ROOT/.run/demo/tlsprobe.db}
[[ $BUCKETS =~ ^[1-9][0-9]*$ ]] || tp_die "TP_SCREENSHOT_BUCKETS must be a positive number"

tp_install_traps
"$ROOT/deploy/scripts/install-deps.sh"
if [ ! -f "$DB" ]; then
  [ $# -eq 0 ] || tp_die "no database at $DB"
  tp_say "no demo database yet: running deploy/scripts/demo.sh"
  TP_DEMO_BUILD_DIR=$BUILD "$ROOT/deploy/scripts/demo.sh" >/dev/null
fi
COLLECTOR=$BUILD/collector/tlsprobe-collector
if [ ! -x "$COLLECTOR" ]; then
  tp_say "building the collector into $BUILD"
  cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j"$(nproc)" --target tlsprobe-collector >/dev/null
fi

first=$(tp_sql "$DB" "SELECT min(started_unix_ns) / 1000000000 FROM results;")
last=$(tp_sql "$DB" "SELECT max(started_unix_ns) / 1000000000 + 1 FROM results;")
[ -n "$first" ] || tp_die "$DB holds no results"
since=$(date -u -d "@$first" +%Y-%m-%dT%H:%M:%SZ)
until=$(date -u -d "@$last" +%Y-%m-%dT%H:%M:%SZ)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsprobe-screenshots.XXXXXX")
tp_on_exit "rm -rf '$WORK'"
# --silent-after: the picture is of a past run; that its agent has stopped since is not news.
"$COLLECTOR" report --db "$DB" --since "$since" --until "$until" --buckets "$BUCKETS" \
  --silent-after 3650d --format html >"$WORK/report.html"
tp_say "report --format html: $(wc -c <"$WORK/report.html") bytes, window $since..$until"

python3 "$ROOT/tests/tools/html_render.py" --width 1280 --height 1000 \
  --screenshot "$WORK/full.png" "$WORK/report.html" >"$WORK/rendered.json" ||
  tp_die "Chromium could not render the report"
mkdir -p "$OUT"
# A report is a few flat colours and anti-aliased text: a 256-colour palette looks the same.
pngquant --force --strip --speed 1 --output "$OUT/report-html.png" "$WORK/full.png" ||
  tp_die "pngquant failed on $WORK/full.png"
size=$(wc -c <"$OUT/report-html.png")
tp_say "$OUT/report-html.png: $size bytes (from $(wc -c <"$WORK/full.png") before pngquant)"
[ "$size" -le $MAX_BYTES ] || tp_say "warning: larger than $MAX_BYTES bytes; consider fewer groups"
