# The clerkjobs worker: one static binary on an empty base. Built by
# build.sh, which prepares the context (the binary, rootfs/ with the CA
# bundle and a passwd entry for uid 65532); nothing is pulled.
FROM scratch
COPY rootfs/ /
COPY worker /worker
# Non-root. No shell, no package manager: nothing to exec into.
USER 65532:65532
# /metrics, /healthz, /readyz (--metrics-addr, default :9090).
EXPOSE 9090
# Logs as JSON; set NATS_URL (else it starts an embedded server meant for a
# laptop, with its files under a data dir this image cannot write) and
# CLERK_SECRET_KEY or CLERK_SECRET_KEY_FILE (else the Clerk emulator).
ENV WORKER_LOG_FORMAT=json
ENTRYPOINT ["/worker"]
