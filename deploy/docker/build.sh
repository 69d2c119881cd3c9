#!/usr/bin/env bash
# Builds the clerkjobs images with no registry at all: static binaries from
# this checkout (CGO_ENABLED=0 go build), the CA bundle of this machine, and
# Dockerfiles FROM scratch, so no base image is ever pulled.
#
#   deploy/docker/build.sh                 # all four images
#   deploy/docker/build.sh worker publish  # some of them
#
# Images: worker, publish, clerk-emulator, nats-server (the version in
# go.mod). They are tagged $REPO/<image>:$TAG (default clerkjobs/<image>:dev).
# The binaries are built for the Docker engine's architecture; set GOARCH to
# override. Needs: go, docker, a CA bundle at $CA_BUNDLE (Debian's
# ca-certificates package puts it at /etc/ssl/certs/ca-certificates.crt).
set -euo pipefail

REPO=${REPO:-clerkjobs}
TAG=${TAG:-dev}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

all=(worker publish clerk-emulator nats-server)
images=("$@")
[ ${#images[@]} -gt 0 ] || images=("${all[@]}")

die() { echo "build.sh: $*" >&2; exit 1; }
command -v go >/dev/null || die "go is not on PATH"
command -v docker >/dev/null || die "docker is not on PATH"
[ -s "$CA_BUNDLE" ] || die "no CA bundle at $CA_BUNDLE (apt-get install ca-certificates, or set CA_BUNDLE)"

if [ -z "${GOARCH:-}" ]; then
	case "$(docker info --format '{{.Architecture}}')" in
	x86_64 | amd64) GOARCH=amd64 ;;
	aarch64 | arm64) GOARCH=arm64 ;;
	*) GOARCH=$(go env GOARCH) ;;
	esac
fi
export CGO_ENABLED=0 GOOS=linux GOARCH

ctx=$(mktemp -d "${TMPDIR:-/tmp}/clerkjobs-images.XXXXXX")
trap 'rm -rf "$ctx"' EXIT

# What every image holds besides its binary: the CA bundle (Clerk's API and
# TLS to NATS are verified against it) and a passwd/group entry, so that the
# non-root user 65532 has a name.
rootfs="$ctx/rootfs"
mkdir -p "$rootfs/etc/ssl/certs"
cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$rootfs/etc/group"

revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
cd "$root"
for img in "${images[@]}"; do
	case "$img" in
	worker | publish | clerk-emulator) pkg=./cmd/$img ;;
	nats-server) pkg=github.com/nats-io/nats-server/v2 ;;
	*) die "unknown image $img (want: ${all[*]})" ;;
	esac
	dir="$ctx/$img"
	mkdir -p "$dir"
	# nats-server's JetStream directory, owned by 65532 in the image.
	[ "$img" != nats-server ] || mkdir "$dir/data"
	cp -a "$rootfs" "$dir/rootfs"
	cp "$here/$img.Dockerfile" "$dir/Dockerfile"
	start=$(date +%s)
	go build -trimpath -ldflags='-s -w' -o "$dir/$img" "$pkg"
	# The engine's classic builder is enough (FROM scratch, COPY); its
	# deprecation notice is shown only when the build fails.
	if ! docker build --quiet --label "org.opencontainers.image.revision=$revision" \
		-t "$REPO/$img:$TAG" "$dir" >"$ctx/build.log" 2>&1; then
		cat "$ctx/build.log" >&2
		die "docker build of $img failed"
	fi
	echo "built $REPO/$img:$TAG ($(du -h "$dir/$img" | cut -f1) binary, $(($(date +%s) - start))s)"
done
