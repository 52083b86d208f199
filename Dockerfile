# syntax=docker/dockerfile:1
#
# Builds one command of this module into a small non-root image.
#   docker build -t work365-upgrade/worker .                          # ./worker (default)
#   docker build --build-arg PKG=./devstack -t work365-upgrade/devstack .
# The binary is always /usr/local/bin/app (the image's entrypoint).

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Never let the go command fetch another toolchain; build with the image's Go.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG PKG=./worker
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/app "${PKG}"

# debian-slim rather than distroless so that the compose healthcheck has curl.
FROM debian:12.11-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 work365 \
 && useradd --system --uid 10001 --gid work365 --home-dir /var/lib/work365 --shell /usr/sbin/nologin work365 \
 && mkdir -p /var/lib/work365/packages /etc/work365 \
 && chown -R work365:work365 /var/lib/work365
COPY --from=build /out/app /usr/local/bin/app
USER 10001:10001
WORKDIR /var/lib/work365
# Health (/healthz) and Prometheus metrics (/metrics).
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/app"]
