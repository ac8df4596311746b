# syntax=docker/dockerfile:1
#
# pullprintd in a container: a multi-stage build (Rust toolchain → slim Debian runtime).
#
#   docker build -t pullprintd .
#   docker run --rm pullprintd --version
#
# With a binary built beforehand (`cargo build --release --locked`; a Debian 13 or older glibc host),
# skip the Rust stage: `docker build --build-arg BINARY=prebuilt -t pullprintd .` copies
# target/release/pullprintd instead. The runtime stage is the same either way.
#
# Configuration comes entirely from the environment (PULLPRINTD__SECTION__KEY) and secret files
# (PULLPRINTD__GRAPH__CLIENT_SECRET_FILE=/run/secrets/client-secret); the baked-in
# /etc/pullprintd/pullprintd.toml is empty (deploy/container.toml). deploy/compose.yaml is a complete
# branch-office example. The store lives on the volume /var/lib/pullprintd.
#
# Health: `pullprintd healthcheck` GETs /readyz. It is a sub-command of the binary itself rather than
# curl: the slim image has no curl, and installing it would add curl, libcurl and their TLS and
# compression libraries (several MB, and their CVEs) to probe one local URL.

# Where the binary comes from: `build` (compiled below) or `prebuilt` (target/release/pullprintd).
ARG BINARY=build

# ---- build ------------------------------------------------------------------------------------------
FROM rust:1-trixie AS build
# aws-lc-sys (the crypto of rustls and jsonwebtoken) builds with the C compiler the image has; CMake is
# its fallback on targets without a prepared build, so it is installed to keep the build portable.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# --locked: build exactly the dependency versions in Cargo.lock, never newer ones.
# Cache mounts keep the registry and target between builds (BuildKit); the binary is copied out of the
# cached target directory, which does not persist into the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin pullprintd \
    && install -D -m 0755 target/release/pullprintd /out/pullprintd

# ---- prebuilt ---------------------------------------------------------------------------------------
FROM scratch AS prebuilt
# `--build-arg PREBUILT_DIR=debug` takes target/debug/pullprintd (the deploy test's debug build).
ARG PREBUILT_DIR=release
COPY target/${PREBUILT_DIR}/pullprintd /out/pullprintd

FROM ${BINARY} AS binary

# ---- runtime ----------------------------------------------------------------------------------------
FROM debian:trixie-slim AS runtime
# ca-certificates only: rustls verifies Microsoft's TLS certificates against the system roots.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A dedicated unprivileged user with a fixed uid, so volume ownership is predictable across hosts.
RUN groupadd --system --gid 10001 pullprintd \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/pullprintd \
       --no-create-home --shell /usr/sbin/nologin pullprintd \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/pullprintd \
    && install -d -m 0755 /etc/pullprintd
COPY --from=binary /out/pullprintd /usr/local/bin/pullprintd
COPY deploy/container.toml /etc/pullprintd/pullprintd.toml
# The fully commented example, for reference: docker run --rm --entrypoint cat IMAGE /usr/share/doc/pullprintd/pullprintd.toml
COPY config/pullprintd.toml /usr/share/doc/pullprintd/pullprintd.toml

ENV PULLPRINTD__STORE__PATH=/var/lib/pullprintd/state.db \
    PULLPRINTD__API__LISTEN=0.0.0.0:8080 \
    PULLPRINTD__LOG__FORMAT=json
VOLUME ["/var/lib/pullprintd"]
EXPOSE 8080
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["pullprintd", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"]
# SIGTERM (docker stop) starts the daemon's bounded drain; exit code 78 means "fix the configuration".
STOPSIGNAL SIGTERM
ENTRYPOINT ["pullprintd"]
CMD ["run", "--config", "/etc/pullprintd/pullprintd.toml"]
