// Package reliability holds grpcplay's fault and bad-input suite: sustained
// load, a rolling restart, a backend killed mid-stream, clients that vanish,
// and malformed or oversized input. It has no code of its own, only tests,
// and they run the real thing: the backend and frontend in-process on
// loopback ports, and the grpcplay binary as subprocesses where a signal or
// a kill -9 must hit a real process. docs/RELIABILITY.md lists every fault
// and the test that shows what happens.
package reliability
