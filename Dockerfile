# syntax=docker/dockerfile:1
#
# One image for the four services: `agora serve gateway|users|products|carts`
# (what compose.yml runs), `agora run` (all in one process, the default), and
# `agora health URL` (the healthcheck). Stages:
#   chef     the Rust toolchain with cargo-chef;
#   planner  the recipe: the manifests and lock file, nothing else;
#   builder  the dependencies, built from the recipe in a layer that is reused
#            until a manifest or the lock file changes, then the agora binary;
#   runtime  Debian slim, the binary and the SQL migrations, a non-root user.

FROM lukemathwalker/cargo-chef:0.1.77-rust-1.95.0-bookworm AS chef
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# The bundled librdkafka (rdkafka) is built from C and C++ sources: the base has
# gcc, g++ and make; python3 (its build scripts), pkg-config and zlib1g-dev (it
# links the system's libz) are made sure of here. Package versions follow the
# pinned base image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 pkg-config zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --locked --recipe-path recipe.json -p agora --bin agora
# The whole context (less .dockerignore): the manifest also names tests/,
# benches/ and the workspace member tools/load, so they must be there.
COPY . .
RUN cargo build --release --locked -p agora --bin agora

FROM debian:12.12-slim AS runtime
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 agora \
    && useradd --system --uid 10001 --gid agora --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin agora
COPY --from=builder /app/target/release/agora /usr/local/bin/agora
# The binary embeds its migrations and runs them at start-up; these copies are
# for operators who apply or review them by hand.
COPY adapters/postgres/migrations /usr/share/agora/migrations/postgres
COPY adapters/mysql/migrations /usr/share/agora/migrations/mysql
# `agora run` (the default command) is reachable from outside the container;
# compose.yml sets each service's own listen address.
ENV AGORA_GATEWAY__LISTEN=0.0.0.0:3000
# Numeric, so that a runtime can tell it is not root (runAsNonRoot).
USER 10001:10001
EXPOSE 3000 3001 3002 3003
ENTRYPOINT ["agora"]
CMD ["run"]
