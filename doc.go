// Package grpcplay is an example of microservices that talk gRPC: a backend,
// a web frontend, a client library and their deployment, in one Go module
// and one binary, cmd/grpcplay.
//
// It starts from the blog post "Playing with gRPC and Python" on gonzalo123's
// blog (https://gonzalo123.com/2021/09/13/playing-with-grpc-and-python/; its
// code is https://github.com/gonzalo123/grpc). Wherever a comment here says
// "the post", it means that article and its code: the proto of service
// api.Api (sayHello, getAll and the server-streaming getStream), a thin
// client, a web page calling the backend over one long-lived connection,
// settings from BACKEND_HOST and BACKEND_PORT, and the claim that between
// services gRPC beats REST/JSON. grpcplay stays wire-compatible with that
// proto: the post's Python client works against this backend, and this
// frontend against the post's Python server.
//
// The packages:
//
//   - api: the post's proto, its generated code and the codec.
//   - backend: the gRPC server of api.Api, with health and reflection.
//   - client: the Go client, with a deadline on every call.
//   - frontend: the web page, calling the backend through client.
//   - gateway: the backend's REST/JSON face (grpc-gateway).
//   - bench: gRPC against REST/JSON under load.
//   - internal/cli: the grpcplay command and its subcommands.
//   - internal/telemetry, internal/tlsconfig, internal/version: logs,
//     metrics, traces, TLS files and the build's version.
//   - internal/testkit: what the tests share (waiting, HTTP, clients).
//   - internal/repocheck: checks of the repository itself, run by go test.
//   - interop, reliability, deploy: tests against the post's Python code,
//     against clients that mean harm, and of the Docker and Kubernetes files.
package grpcplay
