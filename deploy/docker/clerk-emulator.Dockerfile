# The Clerk Backend API emulator, for the compose stack and demos only: its
# control API (/_emulator) is unauthenticated. Built by build.sh.
FROM scratch
COPY rootfs/ /
COPY clerk-emulator /clerk-emulator
USER 65532:65532
# Listen on all interfaces inside the container (the binary's default is
# 127.0.0.1, unreachable from other containers).
ENV CLERK_EMULATOR_ADDR=0.0.0.0:8090
EXPOSE 8090
ENTRYPOINT ["/clerk-emulator"]
