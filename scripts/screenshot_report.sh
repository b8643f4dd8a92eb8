#!/usr/bin/env bash
# Render a run's report.html with headless Chromium into a PNG screenshot.
#
#   scripts/screenshot_report.sh RUN_DIR OUT.png [WIDTH HEIGHT]
#
# WIDTH x HEIGHT is the window size in CSS pixels (default 1200 x 3000). Needs chromium
# (Debian: apt-get install chromium). Network access is disabled as far as Chromium lets
# us; the report is self-contained, so nothing needs fetching.
set -euo pipefail

if [ "$#" -lt 2 ] || [ "$#" -gt 4 ]; then
    echo "usage: $0 RUN_DIR OUT.png [WIDTH HEIGHT]" >&2
    exit 2
fi
run_dir=$1
out=$2
width=${3:-1200}
height=${4:-3000}
report="$run_dir/report.html"
if [ ! -f "$report" ]; then
    echo "error: $report not found; is $run_dir a run directory?" >&2
    exit 2
fi
browser=""
for candidate in chromium chromium-browser google-chrome; do
    if command -v "$candidate" >/dev/null 2>&1; then
        browser=$candidate
        break
    fi
done
if [ -z "$browser" ]; then
    echo "error: chromium not found; install it (apt-get install chromium)" >&2
    exit 2
fi
report_abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --screenshot="$out_abs" \
    --window-size="$width,$height" "file://$report_abs" >/dev/null 2>&1 || true
if [ ! -s "$out_abs" ]; then
    echo "error: chromium wrote no screenshot to $out_abs" >&2
    exit 1
fi
echo "$out_abs"
