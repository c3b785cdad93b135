# hotfix-lane webhook server.
#
#   docker build -t hotfix-lane .
#   docker run -p 8080:8080 -v hotfix-lane-data:/data \
#     -e HOTFIX_LANE_GITHUB_WEBHOOK_SECRET=change-me hotfix-lane
#
# SQLite lives in the /data volume; set HOTFIX_LANE_DATABASE_URL=postgres://… for replicas.
# Probes: GET /healthz (liveness) and GET /readyz (readiness) on port 8080; the image has no
# HTTP client, so probe from the orchestrator rather than with a HEALTHCHECK.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
# The registry and target caches survive between builds (BuildKit), so a source edit does not
# download or rebuild the dependencies.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/hotfix-lane /usr/local/bin/hotfix-lane

FROM debian:${DEBIAN_RELEASE}-slim
# git: backports fetch and push through it. Versions follow Debian's security updates: rebuild
# the image to pick them up.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 hotfix-lane \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --shell /usr/sbin/nologin hotfix-lane \
    && mkdir -p /data \
    && chown 10001:10001 /data
COPY --from=build /usr/local/bin/hotfix-lane /usr/local/bin/hotfix-lane

ENV HOTFIX_LANE_LISTEN=0.0.0.0:8080 \
    HOTFIX_LANE_DATABASE_URL=sqlite:///data/hotfix-lane.db \
    HOTFIX_LANE_MIRROR_DIR=/data/mirrors \
    HOTFIX_LANE_LOG_FORMAT=json
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["hotfix-lane"]
CMD ["serve"]
