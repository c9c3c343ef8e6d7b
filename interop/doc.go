// Package interop holds no code, only tests: they prove that grpcplay speaks
// the same wire protocol as the blog post's own Python code, in both
// directions. The post's client, server and wrapper live in
// testdata/python; their gRPC stubs are generated from api/api.proto at test
// time, the way the post generates them, so nothing generated is committed.
//
// The tests need a Python 3 that can import grpc and grpc_tools (on Debian:
// apt-get install python3-grpcio python3-grpc-tools). Without one they skip,
// unless CI=true, where they fail. GRPCPLAY_PYTHON names the interpreter to
// try first.
package interop
