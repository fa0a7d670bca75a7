# syntax=docker/dockerfile:1
#
# The creditrecon image: one static binary on distroless, run as a non-root user.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     -t ghcr.io/runpod/creditrecon:VERSION .
#
# Multi-arch: docker buildx build --platform linux/amd64,linux/arm64 ... (the builder
# cross-compiles natively; nothing runs under emulation).

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src

# Modules first, so this layer is reused until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
# CGO_ENABLED=0: a static binary that needs no libc in the final image.
# -tags timetzdata: the time zone database is embedded, so CREDITRECON_TIMEZONE never depends
#   on the image's /usr/share/zoneinfo.
# -trimpath, -s -w: no build paths or debug symbols; a smaller, reproducible binary.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -tags timetzdata \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/creditrecon ./cmd/creditrecon

# distroless/static: CA certificates (S3, and DATABASE_URL with sslmode=verify-full), a passwd
# entry for nonroot (65532), no shell and no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.source="https://github.com/runpod/creditrecon" \
      org.opencontainers.image.description="creditrecon: nightly referral and template credit reconciliation"
COPY --from=build /out/creditrecon /creditrecon
# Numeric, so Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 65532:65532
ENTRYPOINT ["/creditrecon"]
