package clientlimit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/grpcplay/grpcplay/internal/clientlimit"
)

func requestFrom(addr string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = addr + ":1000"
	return r
}

func TestALoneClientMayTakeEverySlot(t *testing.T) {
	s := clientlimit.NewShares(3, nil)
	a := requestFrom("127.0.0.2")
	for i := range 3 {
		if _, ok := s.Acquire(a); !ok {
			t.Fatalf("slot %d of 3 refused to the only client", i+1)
		}
	}
	if _, ok := s.Acquire(a); ok {
		t.Fatal("a client holding every slot took one more")
	}
	if got := s.Refusals(); got != 1 {
		t.Errorf("Refusals = %d, want 1", got)
	}
}

func TestANewcomerTakesTheOldestSlotOfTheLargestHolder(t *testing.T) {
	s := clientlimit.NewShares(4, nil)
	var held []*clientlimit.Slot
	for range 3 {
		slot, _ := s.Acquire(requestFrom("127.0.0.2"))
		held = append(held, slot)
	}
	b1, _ := s.Acquire(requestFrom("127.0.0.3"))
	b2, ok := s.Acquire(requestFrom("127.0.0.3"))
	if !ok {
		t.Fatal("a client holding 1 of 4 was refused while another held 3")
	}
	if !held[0].Evicted() || context.Cause(held[0].Context()) != clientlimit.ErrEvicted {
		t.Fatalf("the largest holder's oldest slot was not evicted: cause %v", context.Cause(held[0].Context()))
	}
	for _, slot := range append(held[1:], b1, b2) {
		if slot.Context().Err() != nil {
			t.Errorf("a slot that was not evicted ended: %v", context.Cause(slot.Context()))
		}
	}
	// Two each: neither may take from the other.
	if _, ok := s.Acquire(requestFrom("127.0.0.2")); ok {
		t.Fatal("a client at its fair share took a slot")
	}
	// Released after its eviction, the slot is not given back twice.
	held[0].Release()
	if _, ok := s.Acquire(requestFrom("127.0.0.3")); ok {
		t.Fatal("an evicted slot's release freed a slot it no longer held")
	}
	held[1].Release()
	held[1].Release()
	if _, ok := s.Acquire(requestFrom("127.0.0.3")); !ok {
		t.Fatal("a released slot was not given back")
	}
	if got := s.Evictions(); got != 1 {
		t.Errorf("Evictions = %d, want 1", got)
	}
}

// However clients come and go, a client is refused only when no client
// holds two more slots than it does, and the pool never gives more than its
// size.
func TestSharesAreMaxMinFair(t *testing.T) {
	const size = 10
	rng := rand.New(rand.NewPCG(1, 2))
	s := clientlimit.NewShares(size, nil)
	held := map[string][]*clientlimit.Slot{}
	count := func(client string) int {
		n := 0
		for _, slot := range held[client] {
			if !slot.Evicted() {
				n++
			}
		}
		return n
	}
	for step := range 5000 {
		client := fmt.Sprintf("127.0.0.%d", 1+rng.IntN(6))
		if slots := held[client]; len(slots) > 0 && rng.IntN(3) == 0 {
			i := rng.IntN(len(slots))
			slots[i].Release()
			held[client] = append(slots[:i], slots[i+1:]...)
			continue
		}
		slot, ok := s.Acquire(requestFrom(client))
		if ok {
			held[client] = append(held[client], slot)
		}
		total := 0
		for c := range held {
			total += count(c)
			if !ok && count(c) >= count(client)+2 {
				t.Fatalf("step %d: %s was refused holding %d while %s held %d", step, client, count(client), c, count(c))
			}
		}
		if total > size {
			t.Fatalf("step %d: %d slots held of %d", step, total, size)
		}
		if !ok && total < size {
			t.Fatalf("step %d: %s refused with %d of %d slots held", step, client, total, size)
		}
	}
}

func TestAForwardedClientIsItsOwn(t *testing.T) {
	proxy := clientlimit.Proxies{netip.MustParsePrefix("127.0.0.5/32")}
	s := clientlimit.NewShares(2, proxy)
	for _, xff := range []string{"10.0.0.1", "10.0.0.2"} {
		r := requestFrom("127.0.0.5")
		r.Header.Set("X-Forwarded-For", xff)
		if _, ok := s.Acquire(r); !ok {
			t.Fatalf("client %s behind the proxy was refused", xff)
		}
	}
	r := requestFrom("127.0.0.5")
	r.Header.Set("X-Forwarded-For", "10.0.0.1")
	if _, ok := s.Acquire(r); ok {
		t.Fatal("a client behind the proxy at its share took a slot")
	}
}
