package reliability_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/grpcplay/grpcplay/api"
)

// The attacks of a client that means harm on the gRPC port, each against a
// real `grpcplay serve` with the canary probing all faces meanwhile. The
// bounds asserted are those docs/RELIABILITY.md computes.

// Per-stream bounds measured on grpcplay's defaults (docs/RELIABILITY.md,
// "What one hostile client can hold"): a stalled getStream holds at most
// maxQueuedItems items queued, about 85 KB; a stream whose headers are the
// 8 KiB limit and whose request never comes, about 30 KB.
const (
	stalledStreamBytes = 128 << 10 // the bound tested, with room for noise
	headerStreamBytes  = 64 << 10
	baseSlack          = 40 << 20 // the runtime's own growth while it works
)

// started is how many calls of method the backend has started, from its
// /metrics.
func (p *serveProc) started(t *testing.T, method string) int {
	t.Helper()
	resp, err := http.Get(p.metrics + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`grpc_server_started_total\{[^}]*grpc_method="` + method + `"[^}]*\} (\d+)`)
	total := 0
	for _, m := range re.FindAllStringSubmatch(string(body), -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total
}

// settledRSS waits until the resident set stops growing (three reads in a
// row within 1 MB, 100 ms apart: the server has queued all it will) and
// returns it.
func (p *serveProc) settledRSS(t *testing.T) int64 {
	t.Helper()
	prev := p.status(t, "VmRSS")
	stable := 0
	eventually(t, 20*time.Second, "resident set settles", func() bool {
		cur := p.status(t, "VmRSS")
		if cur-prev < 1<<20 {
			stable++
		} else {
			stable = 0
		}
		prev = cur
		return stable >= 3
	})
	return prev
}

// TestHostileStalledStreams opens as many getStream(10,000,000) calls as
// the server allows on each connection and never reads: no WINDOW_UPDATE,
// so the server may send 64 KiB a connection and must hold the rest. It is
// the worst case of docs/RELIABILITY.md scaled to conns of the 128
// connections allowed: memory is per stream, so it scales linearly.
func TestHostileStalledStreams(t *testing.T) {
	const conns, streams = 8, 128
	p := startServe(t)
	c := startCanary(t, p)
	c.waitAfter(t, time.Now(), 2)
	base := p.status(t, "VmHWM")
	before := p.started(t, "getStream")
	for range conns {
		rc := dialRaw(t, p.grpc)
		for range streams {
			id := rc.open(grpcHeaders(api.Api_GetStream_FullMethodName), false)
			if id == 0 || !rc.request(id, getStreamRequest(10_000_000)) {
				t.Fatal("the server closed the connection of a client that only reads slowly")
			}
		}
	}
	eventually(t, 20*time.Second, "every stalled stream started", func() bool {
		return p.started(t, "getStream")-before >= conns*streams
	})
	rss := p.settledRSS(t)
	c.waitAfter(t, time.Now(), 3)
	peak := p.status(t, "VmHWM")
	perStream := (peak - base) / (conns * streams)
	t.Logf("%d stalled streams: peak RSS %d MB (from %d MB), now %d MB: %d KB a stream",
		conns*streams, peak>>20, base>>20, rss>>20, perStream>>10)
	if limit := base + conns*streams*stalledStreamBytes + baseSlack; peak > limit {
		t.Errorf("peak RSS %d MB over the bound %d MB", peak>>20, limit>>20)
	}
	c.assertAllSucceeded(t)
}

// bombHeaders are a call's headers plus one 4,000-byte binary header
// repeated: HPACK sends the repeats as an index of a byte or two each, so
// the whole block is a few KB on the wire and 16 MB decoded.
func bombHeaders(method string, repeats int) []hpack.HeaderField {
	fields := grpcHeaders(method)
	bomb := hpack.HeaderField{Name: "x-bomb-bin", Value: strings.Repeat("A", 4000)}
	for range repeats {
		fields = append(fields, bomb)
	}
	return fields
}

// TestHostileMetadataBomb sends, on many connections and streams, header
// blocks of a few KB that decode to 16 MB each. The server must refuse each
// at its 8 KiB header-list limit, holding no more than the limit a stream.
func TestHostileMetadataBomb(t *testing.T) {
	const conns, streams, repeats = 8, 128, 4000
	p := startServe(t)
	c := startCanary(t, p)
	c.waitAfter(t, time.Now(), 2)
	base := p.status(t, "VmHWM")
	sent := 0
	for range conns {
		rc := dialRaw(t, p.grpc)
		answered := 0
		for range streams {
			if rc.open(bombHeaders(api.Api_GetStream_FullMethodName, repeats), false) == 0 {
				break
			}
			sent++
		}
		// Each stream is answered (reset, or trailers with an error) or the
		// whole connection is closed: nothing is left waiting.
		deadline := time.After(20 * time.Second)
		for answered < streams {
			select {
			case <-rc.resets:
			case <-rc.trailers:
			case <-rc.closed:
				answered = streams
				continue
			case <-deadline:
				t.Fatalf("%d of %d bomb streams answered within 20s", answered, streams)
			}
			answered++
		}
	}
	c.waitAfter(t, time.Now(), 3)
	peak := p.status(t, "VmHWM")
	t.Logf("%d bomb streams of %d MB decoded each: peak RSS %d MB (from %d MB)", sent, repeats*4042>>20, peak>>20, base>>20)
	if limit := base + conns*streams*headerStreamBytes + baseSlack; peak > limit {
		t.Errorf("peak RSS %d MB over the bound %d MB", peak>>20, limit>>20)
	}
	c.assertAllSucceeded(t)
}

var _ = fmt.Sprintf
var _ = context.Background
