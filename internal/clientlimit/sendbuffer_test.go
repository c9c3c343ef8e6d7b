package clientlimit_test

import (
	"context"
	"net"
	"syscall"
	"testing"

	"github.com/grpcplay/grpcplay/internal/clientlimit"
)

func TestBoundSendBuffer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	client, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	conn, err := lis.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	clientlimit.BoundSendBuffer(context.Background(), conn)
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var getErr error
	if err := raw.Control(func(fd uintptr) {
		size, getErr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	}); err != nil || getErr != nil {
		t.Fatal(err, getErr)
	}
	// Linux doubles what it is asked for.
	if size != 2*clientlimit.SendBuffer {
		t.Fatalf("SO_SNDBUF = %d, want %d", size, 2*clientlimit.SendBuffer)
	}
}
