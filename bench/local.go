package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"time"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/gateway"
)

// Local is a backend and its REST face serving in this process on loopback
// ports, the default target of a run.
type Local struct {
	GRPCAddr string // host:port of the gRPC backend
	RESTURL  string // base URL of the REST face, HTTP/1.1 as served
	// RESTH2URL is the same REST face's routes on a listener that speaks
	// h2c (HTTP/2 without TLS) besides HTTP/1.1.
	RESTH2URL string
	// RESTTLSURL is the same routes over HTTPS (HTTP/1.1), with a throwaway
	// certificate, CertPEM, made for the run.
	RESTTLSURL string
	CertPEM    []byte
	// PlainURL is the bench's own REST face of the same Service: net/http
	// and encoding/json, without grpc-gateway (see plainREST).
	PlainURL string

	// counter counts the Service's calls, every face's.
	counter *countingService

	grpc      *backend.Server
	grpcDone  chan error
	rest      *gateway.Server
	restDone  chan error
	h2c       *http.Server
	h2cDone   chan error
	https     *http.Server
	tlsDone   chan error
	plain     *http.Server
	plainDone chan error
}

// StartLocal serves the production backend and REST face on 127.0.0.1:0,
// both calling the same service implementation, as `grpcplay serve` does,
// and the bench's plain REST face of it. svc nil is backend.NewService
// with the default limits.
func StartLocal(svc api.ApiServer) (*Local, error) { return startLocal("127.0.0.1", svc) }

func startLocal(host string, svc api.ApiServer) (*Local, error) {
	if svc == nil {
		svc = backend.NewService(backend.DefaultLimits)
	}
	counter := newCountingService(svc)
	cert, certPEM, err := selfSigned()
	if err != nil {
		return nil, err
	}
	var lis [5]net.Listener
	for i := range lis {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			for _, open := range lis[:i] {
				open.Close()
			}
			return nil, err
		}
		lis[i] = l
	}
	grpcLis, restLis, h2cLis, tlsLis, plainLis := lis[0], lis[1], lis[2], lis[3], lis[4]
	// The servers' limits on calls in flight protect a shared server; here
	// they would hold back or turn away the bench's own workers, which all
	// share one gRPC connection.
	grpcSrv := backend.NewFor(backend.Config{MaxConcurrentStreams: MaxConcurrency,
		MaxStreamingCallsPerConn: MaxConcurrency, MaxStreamingCalls: MaxConcurrency}, counter)
	restCfg := gateway.Config{MaxInFlight: MaxConcurrency, MaxStreams: MaxConcurrency}
	l := &Local{
		GRPCAddr:  grpcLis.Addr().String(),
		RESTURL:   "http://" + restLis.Addr().String(),
		grpc:      grpcSrv,
		grpcDone:  make(chan error, 1),
		rest:      gateway.New(restCfg, grpcSrv.Service()),
		restDone:  make(chan error, 1),
		h2cDone:   make(chan error, 1),
		tlsDone:   make(chan error, 1),
		counter:   counter,
		PlainURL:  "http://" + plainLis.Addr().String(),
		plainDone: make(chan error, 1),
	}
	l.RESTH2URL = "http://" + h2cLis.Addr().String()
	l.h2c = h2cServer(l.rest.Handler())
	go func() { l.grpcDone <- l.grpc.Serve(grpcLis) }()
	go func() { l.restDone <- l.rest.Serve(restLis) }()
	go func() { l.h2cDone <- serveHTTP(l.h2c, h2cLis) }()
	l.RESTTLSURL, l.CertPEM = "https://"+tlsLis.Addr().String(), certPEM
	l.https = h2cServer(l.rest.Handler())
	l.https.Protocols = nil
	// HTTP/1.1 only: the post's REST, over TLS.
	l.https.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	// A case's end cuts handshakes in flight, which net/http would log
	// as errors; the client counts every failed call already.
	l.https.ErrorLog = log.New(io.Discard, "", 0)
	tlsLis = tls.NewListener(tlsLis, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13})
	go func() { l.tlsDone <- serveHTTP(l.https, tlsLis) }()
	// HTTP/1.1 as net/http serves it by default, with the gateway's limits.
	l.plain = &http.Server{Handler: newPlainREST(restCfg, grpcSrv.Service()), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() { l.plainDone <- serveHTTP(l.plain, plainLis) }()
	return l, nil
}

// codecNote and limitsNote say, in every report, where the faces of the
// servers the bench starts differ in codec and admission limits.
const (
	codecNote = "gRPC: vtprotobuf's MarshalVT/UnmarshalVT on the server and the client; " +
		"rest-proto and rest-h2-proto: the same, the gateway encoding with MarshalVT and the client decoding with UnmarshalVT; " +
		"JSON: protojson in the gateway, encoding/json in rest-plain and in every REST client"
	limitsNote = "every face admits 1000 calls at once (gRPC per connection, REST per server); " +
		"the REST faces, gateway and plain alike, also let getAll make at most 1,000,000 items at once, " +
		"which holds back getAll(100,000) beyond 10 concurrent calls; gRPC has no such budget"
)

// h2cServer serves the gateway's routes over HTTP/1.1 and h2c. The
// gateway's own server speaks HTTP/1.1 only, as a REST face behind a proxy
// usually does; this one exists for the bench's rest-h2 cases, with the
// same kind of timeouts.
func h2cServer(h http.Handler) *http.Server {
	s := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       2 * time.Minute,
		Protocols:         new(http.Protocols),
	}
	s.Protocols.SetHTTP1(true)
	s.Protocols.SetUnencryptedHTTP2(true)
	return s
}

func serveHTTP(s *http.Server, lis net.Listener) error {
	if err := s.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Close stops both servers; calls still in flight are cut off after a
// moment, since a run only closes when its cases are over.
func (l *Local) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// The gateway's Shutdown ends its streams, those on h2c too.
	errs := []error{l.rest.Shutdown(ctx), l.h2c.Shutdown(ctx), l.https.Shutdown(ctx), l.plain.Shutdown(ctx)}
	l.grpc.Shutdown(ctx)
	errs = append(errs, <-l.restDone, <-l.h2cDone, <-l.tlsDone, <-l.plainDone, <-l.grpcDone)
	return errors.Join(errs...)
}
