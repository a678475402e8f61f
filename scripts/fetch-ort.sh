#!/usr/bin/env bash
# Fetches the ONNX Runtime shared library from the npm package onnxruntime-node (the only registry that
# ships a linux x64 build here), checks its sha256 and installs it to third_party/onnxruntime/.
# Idempotent: a library already in place with the right checksum is left alone.
set -euo pipefail
version="${ORT_VERSION:-1.29.0}"
want="${ORT_SHA256:-89688f5cf51c7e31befbb7b9101bc027799009b18d1baa9a5b1146a72e69538d}"
dest_dir="${1:-third_party/onnxruntime}"
dest="$dest_dir/libonnxruntime.so"
member="package/bin/napi-v6/linux/x64/libonnxruntime.so.1"

if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want" ]; then
  echo "ort: $dest is in place (onnxruntime $version)"
  exit 0
fi
command -v npm >/dev/null || { echo "ort: npm is needed to fetch onnxruntime-node; install Node.js/npm" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "ort: fetching onnxruntime-node@$version with npm pack"
(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
tar -xzf "$tmp"/onnxruntime-node-"$version".tgz -C "$tmp" "$member"
got=$(sha256sum "$tmp/$member" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "ort: sha256 mismatch for $member: got $got, want $want" >&2
  exit 1
fi
mkdir -p "$dest_dir"
cp "$tmp/$member" "$dest.tmp"
mv "$dest.tmp" "$dest"
echo "ort: installed $dest (onnxruntime $version, sha256 ok)"
