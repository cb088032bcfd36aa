# HugeSync's container image: built in Rust's image, run from a small Debian
# one with what the binary needs at run time (CA certificates for TLS to the
# stores; the OpenSSH client, which the SFTP store runs).
#
#   docker build -t registry.example.com/hugesync:0.1.0 .     # or podman / buildah bud
#   docker push registry.example.com/hugesync:0.1.0
#
# deploy/ names the image in its Kubernetes, Slurm and AWS Batch recipes.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The manifest declares benches and examples, so cargo reads them too.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
COPY examples ./examples
# Without .git (see .dockerignore) `hugesync --version` says "commit
# unknown"; pass the commit as a label instead (`--label commit=…`).
RUN cargo build --release --locked --bin hugesync \
    && strip target/release/hugesync

FROM debian:bookworm-slim
# Debian's current packages of the release, security fixes included, rather
# than versions pinned here that the archive drops.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates openssh-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 hugesync
COPY --from=build /src/target/release/hugesync /usr/local/bin/hugesync
USER 10001
WORKDIR /home/hugesync
ENTRYPOINT ["hugesync"]
CMD ["--help"]
