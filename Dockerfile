# rates container image: build on Debian bookworm-slim, run on bookworm-slim with only the
# runtime libraries. Build: `make image` (tags VERSION and the git commit), or
#   docker build --build-arg VERSION=$(cat VERSION) --build-arg COMMIT=$(make -s print-commit) -t rates .
# Targets: runtime (default, last stage), init (runtime libs + psql: loads the dump once, migrates),
# dev (toolchain + inotifywait: rebuilds and restarts on source change; compose profile dev).
ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      gcc libc6-dev make pkg-config binutils \
      libmicrohttpd-dev libpq-dev libyajl-dev libcurl4-openssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Makefile VERSION ./
COPY mk/ mk/
COPY tools/ tools/
COPY db/migrations/ db/migrations/
COPY api/ api/
COPY src/ src/
ARG VERSION=0.0.0
ARG COMMIT=unknown
# Builds ratesd (migrations compiled in) and rates-load when the tree has it; strips both.
RUN make -j"$(nproc)" BUILD=/out VERSION="$VERSION" COMMIT="$COMMIT" all \
 && if make -n BUILD=/out /out/rates-load >/dev/null 2>&1; then \
      make -j"$(nproc)" BUILD=/out VERSION="$VERSION" COMMIT="$COMMIT" /out/rates-load; fi \
 && mkdir -p /out/bin && for b in ratesd rates-load; do \
      if [ -f "/out/$b" ]; then strip -o "/out/bin/$b" "/out/$b"; fi; done

FROM build AS dev
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends inotify-tools curl \
 && rm -rf /var/lib/apt/lists/*
COPY deploy/docker/dev-watch.sh /usr/local/bin/dev-watch
ENV RATES_LISTEN=0.0.0.0:3000
CMD ["/usr/local/bin/dev-watch"]

FROM ${BASE_IMAGE} AS runtime-base
# Runtime libraries only (no compiler, no headers); curl for the HEALTHCHECK (libcurl is a
# runtime dependency of ratesd anyway, so it costs a few hundred kB).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libpq5 libyajl2 libcurl4 zlib1g curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /usr/share/doc/* /usr/share/man/* \
 && groupadd --system --gid 10001 rates \
 && useradd --system --uid 10001 --gid rates --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin rates
COPY --from=build /out/bin/ /usr/local/bin/
ENV RATES_LISTEN=0.0.0.0:3000 \
    RATES_LOG_FORMAT=json

# One-shot init (compose `init`): psql loads the dump once, then `ratesd migrate`.
FROM runtime-base AS init
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/*
COPY deploy/docker/init.sh /usr/local/bin/rates-init
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/rates-init"]
CMD []

# The runtime image: the default target (last stage).
FROM runtime-base AS runtime
ARG VERSION=0.0.0
ARG COMMIT=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="ratesd" \
      org.opencontainers.image.description="Freight rates HTTP service" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="debian:bookworm-slim" \
      org.opencontainers.image.licenses="proprietary"
USER 10001:10001
EXPOSE 3000
# ratesd is PID 1 (exec form, no shell): it takes SIGTERM itself and drains.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null "http://127.0.0.1:${RATES_LISTEN##*:}/healthz" || exit 1
ENTRYPOINT ["/usr/local/bin/ratesd"]
CMD ["serve"]
