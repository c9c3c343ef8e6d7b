# One image for every role: `grpcplay serve` by default, or `backend` /
# `frontend` as docker-compose.yml and deploy/k8s run it.
#
#   docker build -t grpcplay .
#   docker run --rm -p 5000:5000 grpcplay      # the page on http://localhost:5000
#   docker image prune --force --filter label=dev.grpcplay.stage=build
#
# Every RUN is in exec form, so the builder image needs no shell: where
# golang:1.26 cannot be pulled, scripts/builder-image makes a shell-less one
# from the host's Go toolchain, and the build names it:
#   docker build --build-arg GO_IMAGE=grpcplay-go:local -t grpcplay .
ARG GO_IMAGE=golang:1.26

FROM ${GO_IMAGE} AS build
# The classic builder keeps this stage as an untagged image (its layer
# cache); the label lets `docker image prune` find it and nothing else.
LABEL dev.grpcplay.stage="build"
WORKDIR /src
# A static binary runs on scratch: no libc, no loader.
ENV CGO_ENABLED=0
# Modules change less often than the code: keep them in their own layer.
COPY go.mod go.sum ./
RUN ["go", "mod", "download"]
COPY . .
# Compiling is most of the build; the version only changes the link. This
# layer compiles every package into the build cache, so that a build of the
# same code with another VERSION (a release, the Docker tests' own) reuses
# it and only links again.
ENV GOFLAGS=-trimpath
RUN ["go", "build", "-o", "/out/", "./cmd/grpcplay"]
# ENV substitutes build args where exec-form RUN cannot; cmd/go reads quoted
# values in GOFLAGS, so -ldflags keeps its spaces.
ARG VERSION=dev
ENV GOFLAGS="'-trimpath' '-ldflags=-s -w -X=github.com/grpcplay/grpcplay/internal/version.Version=${VERSION}'"
RUN ["go", "build", "-o", "/out/", "./cmd/grpcplay"]

FROM scratch
ARG VERSION=dev
LABEL org.opencontainers.image.title="grpcplay" \
      org.opencontainers.image.description="gRPC microservices example: backend, web frontend and CLI in one binary" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/grpcplay/grpcplay"
COPY --from=build /out/grpcplay /grpcplay
# The "nonroot" user of distroless images; numeric, so that Kubernetes can
# verify runAsNonRoot without an /etc/passwd.
USER 65532:65532
EXPOSE 50051 5000 8080 9464
# With no flags the check covers what `serve` listens on: gRPC health on
# localhost:50051 and HTTP /readyz on localhost:5000. A backend-only or
# frontend-only container narrows it (see docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/grpcplay", "healthcheck"]
ENTRYPOINT ["/grpcplay"]
# serve listens on localhost, which inside a container no published port
# reaches: the page binds every interface of the container instead. gRPC,
# REST and metrics stay on the container's loopback, and so do /debug and the
# /compare bench, which are not for whoever can reach a published port.
CMD ["serve", "--http-addr=:5000", "--debug-page=false", "--compare-page=false"]
