#!/usr/bin/env bash
# Smoke test of the whole stack: builds the images, starts the compose stack
# under a project name of its own (so it never touches a stack you run),
# runs smokecheck inside the stack's network, stops a worker to check that
# it drains and exits cleanly, and always tears everything down, volumes
# included. Run by hand or in CI with Docker:
#
#   deploy/compose/smoke.sh
#
# Environment: SKIP_BUILD=1 reuses images built before; KEEP=1 leaves the
# stack up for a look (then: docker-compose -p <project> down -v); JOBS=n
# revoke jobs (default 20). Exit status 0 when every check passed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export TAG=${TAG:-dev}
project=clerkjobs-smoke-$$
started=$(date +%s)

if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
elif command -v docker-compose >/dev/null; then
	compose=(docker-compose)
else
	echo "smoke.sh: neither 'docker compose' nor docker-compose is installed" >&2
	exit 1
fi
compose+=(-p "$project" -f "$here/docker-compose.yml")

# Fresh passwords for this run: letters and digits, starting with a letter
# (see deploy/nats/accounts.conf).
pw() { printf 'p%s' "$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"; }
for u in WORKER SVC_A SVC_B OPS; do
	export "CLERKJOBS_${u}_PASSWORD=$(pw)"
done
# Free host ports, so that a stack already running on 4222/8090 is no
# obstacle.
export NATS_PORT=127.0.0.1: EMULATOR_PORT=127.0.0.1:

tmp=$(mktemp -d "${TMPDIR:-/tmp}/clerkjobs-smoke.XXXXXX")
status=1
cleanup() {
	if [ "$status" != 0 ]; then
		echo "--- logs (last 40 lines per service) ---"
		"${compose[@]}" logs --no-color --tail=40 || true
	fi
	if [ "${KEEP:-}" = 1 ]; then
		echo "KEEP=1: stack $project left running; remove it with: ${compose[*]} down -v"
	else
		"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
	echo "smoke.sh: $([ "$status" = 0 ] && echo PASSED || echo FAILED) in $(($(date +%s) - started))s"
}
trap cleanup EXIT

if [ "${SKIP_BUILD:-}" != 1 ]; then
	"$root/deploy/docker/build.sh"
fi
# smokecheck runs in the publish image (CA bundle, non-root user), bind
# mounted: no extra image.
(cd "$root" && CGO_ENABLED=0 GOOS=linux go build -o "$tmp/smokecheck" ./deploy/compose/smokecheck)
chmod 0755 "$tmp" "$tmp/smokecheck"
# The workers' password file, the compose secret, as deploy/README.md's
# recipe makes it: this run's own, not one beside docker-compose.yml.
mkdir -m 700 "$tmp/secrets"
printf '%s\n' "$CLERKJOBS_WORKER_PASSWORD" >"$tmp/secrets/nats-worker-password"
chmod 644 "$tmp/secrets/nats-worker-password"
export SECRETS_DIR=$tmp/secrets

echo "starting stack $project"
"${compose[@]}" up -d
# The workers read their password from the file: docker inspect shows none.
for w in worker-1 worker-2; do
	env=$(docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$("${compose[@]}" ps -q "$w")")
	# Matched in bash: as grep's argument it would show in ps.
	if [[ $env == *"$CLERKJOBS_WORKER_PASSWORD"* ]]; then
		echo "$w: its environment holds its NATS password (want NATS_PASSWORD_FILE)" >&2
		exit 1
	fi
done
network=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$("${compose[@]}" ps -q nats-1)" | awk '{print $1}')

docker run --rm --network "$network" \
	-e CLERKJOBS_SVC_A_PASSWORD -e CLERKJOBS_SVC_B_PASSWORD -e CLERKJOBS_OPS_PASSWORD \
	-v "$tmp/smokecheck:/smokecheck:ro" --entrypoint /smokecheck \
	"clerkjobs/publish:$TAG" --jobs "${JOBS:-20}"

# A stopped worker drains and exits 0 well within its grace period.
t0=$(date +%s)
"${compose[@]}" stop worker-1 >/dev/null 2>&1
code=$(docker inspect -f '{{.State.ExitCode}}' "$("${compose[@]}" ps -q worker-1)")
if [ "$code" != 0 ]; then
	echo "worker-1 exited with status $code after SIGTERM, want 0" >&2
	exit 1
fi
echo "worker-1 stopped cleanly (exit 0) in $(($(date +%s) - t0))s"
status=0
