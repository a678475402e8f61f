#!/bin/bash
# Sharded `lczerolens batch` as a Slurm job array: array task k of N analyses shard k/N of INPUT into
# OUTDIR/shard-k. Submit it, then the merge once every task has succeeded:
#
#   jid=$(sbatch --parsable deploy/slurm-array.sh games.pgn out)
#   sbatch --dependency=afterok:$jid --wrap "lczerolens merge out/shard-* -o out/merged --force"
#
# N is the size of --array, which must run 0..N-1 without gaps (a %limit suffix is fine). A requeued or
# rerun task resumes its shard from its last commit.
#SBATCH --job-name=lczerolens
#SBATCH --array=0-7
#SBATCH --gres=gpu:1
#SBATCH --cpus-per-task=4
#SBATCH --time=08:00:00
#SBATCH --requeue
#SBATCH --output=%x-%A_%a.log
set -euo pipefail

input=${1:?usage: sbatch deploy/slurm-array.sh INPUT OUTDIR}
out=${2:?usage: sbatch deploy/slurm-array.sh INPUT OUTDIR}
model=${MODEL:-maia-1100.onnx}

lczerolens batch "$input" --model "$model" --device cuda --threads "${SLURM_CPUS_PER_TASK:-4}" \
  --lens activation --pattern '^block5/conv2/relu$' \
  --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}" \
  -o "$out/shard-${SLURM_ARRAY_TASK_ID}" --resume
