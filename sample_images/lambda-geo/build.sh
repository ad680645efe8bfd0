#!/usr/bin/env bash
# Build the realistic before/after pair on this machine and save each image two ways:
#   out/before-docker.tar, out/after-docker.tar          (`docker save`)
#   out/before-oci-gzip.tar, out/after-oci-gzip.tar      (`skopeo copy` to a gzip OCI archive)
# Needs: a running Docker engine, debootstrap, skopeo, http access to deb.debian.org and PyPI for
# `pip download` (done on the host: HTTPS inside `docker build` is not assumed to work).
# The base image is made locally: debootstrap bookworm (minbase) + docker import.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
base="layerscope/bookworm-base:latest"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
cd "$here"

if ! docker image inspect "$base" >/dev/null 2>&1; then
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  echo "debootstrap bookworm into $root" >&2
  debootstrap --variant=minbase bookworm "$root" "$mirror" >/dev/null
  tar -C "$root" -c . | docker import - "$base" >/dev/null
fi

mkdir -p wheels out
cp requirements.txt wheels/requirements.txt
python3 -m pip download -q --only-binary=:all: --python-version 3.11 --platform manylinux2014_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 --implementation cp \
  -d wheels -r requirements.txt

for which in before after; do
  docker build -q --build-arg BASE="$base" -f "Dockerfile.$which" -t "layerscope/lambda-geo:$which" . >/dev/null
  docker save -o "out/$which-docker.tar" "layerscope/lambda-geo:$which"
  rm -f "out/$which-oci-gzip.tar"
  skopeo copy -q --dest-compress --dest-compress-format gzip \
    "docker-daemon:layerscope/lambda-geo:$which" "oci-archive:out/$which-oci-gzip.tar:$which"
done
ls -l out >&2
