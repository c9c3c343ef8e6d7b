package clientlimit

import (
	"fmt"
	"time"
)

// MinRate drops a stream's reader that takes its bytes slower than Rate.
//
// A stream writes as fast as its reader reads: once the socket buffers are
// full, each write waits on the reader. Only that waiting counts: a stream
// whose source is slow (a loaded backend) waits on nobody and is never
// dropped for it. The bytes written over Window of waiting must be at least
// Rate × Window; and no one write may wait longer than Stall, which also
// catches a reader that takes nothing at all, without waiting for a Window
// to pass. With Linux's loopback buffers a write that waits wakes only once
// about a third of the buffer has drained, so the bytes written between two
// checks follow what the reader took, not the size of one write.
type MinRate struct {
	Rate   int           // bytes a second (default 32 KiB/s)
	Window time.Duration // of waiting on the reader (default 10s)
	Stall  time.Duration // the longest one write may wait (default 10s)
}

// DefaultMinRate is the floor of the live view's and the REST face's
// streams: 32 KiB/s, 256 kbit/s, which a phone on a poor mobile link still
// reads, while holding every slot costs an attacker that much per slot: the
// live view's 100 and the REST face's 128 slots together take 7.3 MB/s
// (58 Mbit/s), from as many addresses as the fair shares demand.
var DefaultMinRate = MinRate{Rate: 32 << 10, Window: 10 * time.Second, Stall: 10 * time.Second}

// WithDefaults fills the zero fields from DefaultMinRate.
func (m MinRate) WithDefaults() MinRate {
	if m.Rate <= 0 {
		m.Rate = DefaultMinRate.Rate
	}
	if m.Window <= 0 {
		m.Window = DefaultMinRate.Window
	}
	if m.Stall <= 0 {
		m.Stall = DefaultMinRate.Stall
	}
	return m
}

// Meter applies a MinRate to one stream. It is not safe for concurrent use.
type Meter struct {
	floor  MinRate
	bytes  int64
	waited time.Duration
	onCut  func()
}

// Meter starts measuring one stream.
func (m MinRate) Meter() *Meter { return &Meter{floor: m.WithDefaults()} }

// Deadline is the write deadline of a write starting at now.
func (m *Meter) Deadline(now time.Time) time.Time { return now.Add(m.floor.Stall) }

// Wrote records that n bytes were written in took, and returns an error
// once the reader has proved slower than the floor.
func (m *Meter) Wrote(n int, took time.Duration) error {
	m.bytes += int64(n)
	m.waited += took
	if m.waited < m.floor.Window {
		return nil
	}
	floor := int64(m.floor.Rate) * int64(m.waited) / int64(time.Second)
	if m.bytes < floor {
		if m.onCut != nil {
			m.onCut()
		}
		return fmt.Errorf("the client read %d bytes in %v, under the floor of %d bytes a second", m.bytes, m.waited.Round(time.Millisecond), m.floor.Rate)
	}
	m.bytes, m.waited = 0, 0
	return nil
}
