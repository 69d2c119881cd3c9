# nats-server at the version in go.mod, built from the module cache by
# build.sh: the same thing as the official image (which is FROM scratch
# too), without a registry. Configure it with a file, e.g.
#   docker run -v $PWD/deploy/nats:/etc/nats:ro clerkjobs/nats-server --config /etc/nats/server.conf
FROM scratch
COPY rootfs/ /
COPY nats-server /nats-server
# JetStream's store_dir in deploy/nats/*.conf. It belongs to 65532 in the
# image, so that a named volume mounted here starts out writable by it.
COPY --chown=65532:65532 data/ /data/
USER 65532:65532
VOLUME /data
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
