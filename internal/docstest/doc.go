// Package docstest checks the README and docs/ against the code: it runs
// their shell examples in a copy of the repository and compares what they
// print with what the text shows, resolves every relative link, and checks
// the statements of docs/benchmarks.md and the README against the committed
// docs/bench-loopback.json.
// docs/testing.md describes the conventions a block follows.
package docstest
