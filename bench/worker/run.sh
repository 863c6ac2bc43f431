#!/usr/bin/env bash
# bench/worker/run.sh [N] [OUTDIR]: variants per second on N (default 6) generated 12 MP
# JPEGs, three variants each (2048, 1024 and 256 px boxes, WebP Q80, metadata stripped), for
#   - the worker's builder (thumbbench: thumb_build over the same blocked reader the worker
#     uses, file-backed instead of S3; 2 images at a time, 1 libvips thread each),
#   - vipsthumbnail (one run per variant, 2 at a time: same sizes, same format),
#   - ImageMagick convert -thumbnail (one run per variant, 2 at a time),
# in the same run; plus the builder's peak RSS on a 50 MP JPEG. Wall and CPU seconds are
# reported (CPU is the steadier figure on a shared machine). Needs a built worker (BUILD).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
BUILD=${BUILD:-build}
N=${1:-6}
OUT=${2:-$(mktemp -d /tmp/pixplane-bench-worker.XXXXXX)}
mkdir -p "$OUT/in" "$OUT/vt" "$OUT/im" "$OUT/tb"
TB="$BUILD/bench/worker/thumbbench"

for o in thumb rsrc config; do
  [[ -f "$BUILD/services/worker/$o.o" ]] || { echo "run.sh: build the worker first (make)" >&2; exit 1; }
done
mkdir -p "$(dirname "$TB")"
cc -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE -Icommon \
  -Iservices/worker -I/usr/include/postgresql $(pkg-config --cflags vips) -o "$TB" \
  bench/worker/thumbbench.c "$BUILD"/services/worker/{thumb,rsrc,config}.o "$BUILD/libpixcommon.a" \
  $(pkg-config --libs vips) -lcjson -lcurl -lssl -lcrypto -lpthread -lm

echo "generating $N 12 MP JPEGs and one 50 MP JPEG in $OUT/in" >&2
for i in $(seq 1 "$N"); do
  f="$OUT/in/img12mp_$i.jpg"
  [[ -s "$f" ]] && continue
  convert -size 1000x750 plasma:fractal -depth 8 "$OUT/in/p.png"
  vips resize "$OUT/in/p.png" "$OUT/in/big.tif" 4
  convert "$OUT/in/big.tif" -attenuate 0.25 +noise Gaussian -quality 90 -sampling-factor 2x2 "$f"
  rm -f "$OUT/in/p.png" "$OUT/in/big.tif"
done
if [[ ! -s "$OUT/in/img50mp.jpg" ]]; then
  convert -size 1000x750 plasma:fractal -depth 8 "$OUT/in/p.png"
  vips resize "$OUT/in/p.png" "$OUT/in/big.v" 8.66
  vips crop "$OUT/in/big.v" "$OUT/in/img50mp.jpg[Q=90]" 0 0 8660 5775
  rm -f "$OUT/in/p.png" "$OUT/in/big.v"
fi
imgs=("$OUT"/in/img12mp_*.jpg)
nvar=$((${#imgs[@]} * 3))

# one "tool size input" line per variant
jobs() {
  for f in "${imgs[@]}"; do for s in 2048 1024 256; do echo "$s $f"; done; done
}

measure() { # name command...
  local name=$1; shift
  /usr/bin/time -o "$OUT/time" -f "%e %U %S %M" "$@" >/dev/null 2>&1
  read -r wall user sys maxkb < "$OUT/time"
  awk -v n="$name" -v w="$wall" -v u="$user" -v s="$sys" -v v="$nvar" -v m="$maxkb" 'BEGIN {
    printf "%-14s %3d variants  wall %6.2fs  %6.2f variants/s  cpu %6.2fs  %6.1f ms cpu/variant  maxrss %5.1f MB\n",
      n, v, w, v / w, u + s, 1000 * (u + s) / v, m / 1024 }'
}

vt_one() { vipsthumbnail "$2" -s "$1" -o "$OUT/vt/%s_$1.webp[Q=80,effort=$EFFORT,strip]"; }
im_one() { convert "$2" -thumbnail "$1x$1" -quality 80 -strip "$OUT/im/$(basename "$2")_$1.webp"; }
export -f vt_one im_one
export OUT

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)  cores: $(nproc)"
export EFFORT=4
measure worker env "$TB" -t 2 -c 1 -e 4 "${imgs[@]}"
measure vipsthumbnail bash -c 'xargs -P 2 -L 1 bash -c '"'"'vt_one "$0" "$1"'"'"'' < <(jobs)
measure convert bash -c 'xargs -P 2 -L 1 bash -c '"'"'im_one "$0" "$1"'"'"'' < <(jobs)
echo "with WebP effort 2 (PIXPLANE_WEBP_EFFORT=2) for both libvips tools:"
export EFFORT=2
measure worker-e2 env "$TB" -t 2 -c 1 -e 2 "${imgs[@]}"
measure vipsthumb-e2 bash -c 'xargs -P 2 -L 1 bash -c '"'"'vt_one "$0" "$1"'"'"'' < <(jobs)
echo "peak RSS of the builder on one 50 MP JPEG (8660x5775), whole process:"
/usr/bin/time -f "  %e s wall, %M KB max RSS" "$TB" -t 1 -c 1 "$OUT/in/img50mp.jpg" 2>&1 | tail -2
echo "outputs in $OUT"
