package clientlimit

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrEvicted is the cause a slot's context ends with when the slot goes to
// a client holding fewer.
var ErrEvicted = errors.New("the slot went to a client holding fewer slots")

// Shares is a pool of slots (live streams, REST streams, scrapes in flight)
// shared max-min fairly by client, as nginx's limit_conn and HAProxy's
// per-source tables share a server, but without a fixed slice per client:
//
//   - a client takes a free slot while there is one, so that a lone client
//     may use the whole pool;
//   - when none is free, a client holding fewer than the largest holder
//     less one takes the oldest slot of that holder, whose context ends
//     with ErrEvicted;
//   - otherwise every client holds its fair share already, and the client
//     is refused.
//
// So a client holding less than its fair share can always take a slot, and
// an attacker's addresses together keep at most what as many honest clients
// would. An evicted holder's own work may run on for a moment after its
// context ends, until it sees that; Slot.Stop makes that moment short for
// an HTTP reply blocked on a client that does not read.
type Shares struct {
	size      int
	proxies   Proxies
	evictions atomic.Int64
	refusals  atomic.Int64
	slowCuts  atomic.Int64

	mu   sync.Mutex
	free int
	held map[netip.Prefix][]*Slot // each client's slots, oldest first
}

// Slot is one slot held.
type Slot struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	// evicted ends with the eviction only, not with the request.
	evicted     context.Context
	markEvicted context.CancelFunc
	client      netip.Prefix
	s           *Shares
	gone        bool // released, or handed to another client; guarded by s.mu
}

// NewShares returns a pool of size slots, believing the X-Forwarded-For
// header of the peers in proxies.
func NewShares(size int, proxies Proxies) *Shares {
	size = max(size, 1)
	return &Shares{size: size, proxies: proxies, free: size, held: make(map[netip.Prefix][]*Slot)}
}

// Size is the number of slots.
func (s *Shares) Size() int { return s.size }

// Evictions counts the slots handed from one client to another.
func (s *Shares) Evictions() int64 { return s.evictions.Load() }

// Refusals counts the requests refused because every client held its share.
func (s *Shares) Refusals() int64 { return s.refusals.Load() }

// SlowReaderCuts counts the readers cut by the pool's Meters.
func (s *Shares) SlowReaderCuts() int64 { return s.slowCuts.Load() }

// Meter is m.Meter() for a stream holding one of the pool's slots, its
// cuts counted in SlowReaderCuts.
func (s *Shares) Meter(m MinRate) *Meter {
	meter := m.Meter()
	meter.onCut = func() { s.slowCuts.Add(1) }
	return meter
}

// Acquire takes a slot for r's client, or reports false when that client
// holds its fair share already. The slot's context is r's, ended also when
// the slot is evicted. Each slot must be released.
func (s *Shares) Acquire(r *http.Request) (*Slot, bool) {
	client := s.proxies.Client(r)
	ctx, cancel := context.WithCancelCause(r.Context())
	evicted, markEvicted := context.WithCancel(context.Background())
	slot := &Slot{ctx: ctx, cancel: cancel, evicted: evicted, markEvicted: markEvicted, client: client, s: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free == 0 && !s.evictFor(client) {
		s.refusals.Add(1)
		cancel(nil)
		markEvicted()
		return nil, false
	}
	s.free--
	s.held[client] = append(s.held[client], slot)
	return slot, true
}

// evictFor frees the oldest slot of the client holding the most, if that
// client holds at least two more than client does.
func (s *Shares) evictFor(client netip.Prefix) bool {
	var most netip.Prefix
	for c, slots := range s.held {
		if len(slots) > len(s.held[most]) || len(slots) == len(s.held[most]) && c.Addr().Less(most.Addr()) {
			most = c
		}
	}
	if len(s.held[most]) < len(s.held[client])+2 {
		return false
	}
	victim := s.held[most][0]
	s.remove(victim)
	victim.markEvicted()
	victim.cancel(ErrEvicted)
	s.evictions.Add(1)
	return true
}

// remove takes slot out of its client's list and returns it to the pool.
func (s *Shares) remove(slot *Slot) {
	slot.gone = true
	s.free++
	slots := s.held[slot.client]
	for i, held := range slots {
		if held == slot {
			slots = append(slots[:i:i], slots[i+1:]...)
			break
		}
	}
	// Deleted when empty, so that the map holds only clients with slots.
	if len(slots) == 0 {
		delete(s.held, slot.client)
	} else {
		s.held[slot.client] = slots
	}
}

// Context is the slot's context: the request's, ended also by eviction
// (context.Cause is then ErrEvicted).
func (slot *Slot) Context() context.Context { return slot.ctx }

// Evicted reports whether the slot went to another client.
func (slot *Slot) Evicted() bool { return slot.evicted.Err() != nil }

// Release returns the slot to the pool, once; a slot that was evicted is
// back in the pool already.
func (slot *Slot) Release() {
	slot.s.mu.Lock()
	if !slot.gone {
		slot.s.remove(slot)
	}
	slot.s.mu.Unlock()
	slot.cancel(nil)
}

// Stop makes a reply blocked on its client give up when the slot is
// evicted: it moves w's write deadline to the past. A handler that sets
// write deadlines of its own checks Evicted after each, so that it does not
// move this one back. The returned func undoes the arrangement; call it
// before Release.
func (slot *Slot) Stop(w http.ResponseWriter) (undo func() bool) {
	rc := http.NewResponseController(w)
	return context.AfterFunc(slot.evicted, func() { _ = rc.SetWriteDeadline(time.Unix(1, 0)) })
}

// Register counts the pool's evictions, refusals and slow-reader cuts in
// reg, as grpcplay_slots_evicted_total, grpcplay_slots_refused_total and
// grpcplay_slots_slow_reader_cuts_total labelled slots=name; a nil reg counts nothing. A pool registered again under the
// same name (a server restarted on the same registry) is left counting in
// the first one's series.
func (s *Shares) Register(reg *prometheus.Registry, name string) {
	if reg == nil {
		return
	}
	labels := prometheus.Labels{"slots": name}
	_ = reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "grpcplay_slots_evicted_total",
		Help:        "Slots (live streams, REST streams, scrapes) handed to a client holding fewer, which ended the holder's request.",
		ConstLabels: labels,
	}, func() float64 { return float64(s.Evictions()) }))
	_ = reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "grpcplay_slots_refused_total",
		Help:        "Requests refused a slot because every client held its fair share.",
		ConstLabels: labels,
	}, func() float64 { return float64(s.Refusals()) }))
	_ = reg.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name:        "grpcplay_slots_slow_reader_cuts_total",
		Help:        "Streams cut because their reader took its bytes slower than the floor.",
		ConstLabels: labels,
	}, func() float64 { return float64(s.SlowReaderCuts()) }))
}
