# The publish command line: submit jobs, work the dead-letter queue, show
# the status. Built by build.sh; see worker.Dockerfile.
#   docker run --rm -e NATS_URL=... -e NATS_USER=... -e NATS_PASSWORD=... clerkjobs/publish status
FROM scratch
COPY rootfs/ /
COPY publish /publish
USER 65532:65532
ENTRYPOINT ["/publish"]
