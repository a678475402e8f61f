#!/usr/bin/env bash
# Sharded `lczerolens batch` on one big machine: N processes (default: one per core, each with one ONNX
# Runtime thread), shard k into OUTDIR/shard-k, then the merge into OUTDIR/merged.
#
#   deploy/xargs.sh INPUT OUTDIR [N]
#
# MODEL names the lc0 network (.onnx); empty runs the built-in demo network. Rerunning after an
# interruption resumes every shard. OUTDIR must not hold shards of a run with another N.
set -euo pipefail

input=${1:?usage: deploy/xargs.sh INPUT OUTDIR [N]}
out=${2:?usage: deploy/xargs.sh INPUT OUTDIR [N]}
n=${3:-$(nproc)}
model=${MODEL:-}

seq 0 $((n - 1)) | xargs -P "$n" -I{} \
  lczerolens batch "$input" --model "$model" --threads 1 --lens activation --quiet --resume \
    --shard "{}/$n" -o "$out/shard-{}"
lczerolens merge "$out"/shard-* -o "$out/merged" --force
