// Package repocheck holds no code: its tests check the repository itself,
// so that go test ./... (and so CI) fails when
//
//   - a tracked file speaks of anything a reader of the repository cannot
//     see: the issue tracker, code review, version control's history, or
//     paths outside the repository (words_test.go);
//   - a hand-written Go function is longer than maxFuncLines
//     (funclen_test.go);
//   - a program that imports only client/ links grpc-gateway or server
//     code, or inherits a tool's module (weight_test.go);
//   - an RPC of api.Api lacks a REST rule, a client method or a backend
//     test of its own (rpc_test.go).
package repocheck
