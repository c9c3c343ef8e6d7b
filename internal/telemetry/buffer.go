package telemetry

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Buffered log output: one line per call at info would otherwise be one
// write system call per call, which on a busy server costs more than the
// call's own logging work. Lines are collected and written together, at
// most flushDelay late; a warning or an error is written at once, with
// everything before it, so that what explains a failure is never held back.
const (
	flushDelay    = 100 * time.Millisecond
	flushAtLength = 64 << 10
)

// BufferedWriter batches writes to w. It is safe for concurrent use. Close
// it to write what is left; writes after Close go straight to w.
//
// A flush writes to w outside mu, the lock every log line takes, so that
// handlers logging while a 64 KiB write goes out are not parked behind it;
// writeMu keeps the flushes in order and lends the written buffer back as
// the next one.
type BufferedWriter struct {
	mu      sync.Mutex // guards buf, pending and closed
	buf     []byte
	timer   *time.Timer
	pending bool
	closed  bool

	writeMu sync.Mutex // guards w and spare; taken while mu is held
	w       io.Writer
	spare   []byte
}

// NewBufferedWriter returns a BufferedWriter that writes to w.
func NewBufferedWriter(w io.Writer) *BufferedWriter {
	b := &BufferedWriter{w: w}
	b.timer = time.AfterFunc(time.Hour, func() { _ = b.Flush() })
	b.timer.Stop()
	return b
}

// Write buffers p, and writes the buffer once it is large or old enough.
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	if b.closed {
		b.writeMu.Lock()
		b.mu.Unlock()
		defer b.writeMu.Unlock()
		return b.w.Write(p)
	}
	b.buf = append(b.buf, p...)
	if len(b.buf) >= flushAtLength {
		return len(p), b.flushAndUnlock()
	}
	if !b.pending {
		b.pending = true
		b.timer.Reset(flushDelay)
	}
	b.mu.Unlock()
	return len(p), nil
}

// Flush writes what is buffered now.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	return b.flushAndUnlock()
}

// flushAndUnlock writes the buffer out and releases mu, which the caller
// holds, before the write.
func (b *BufferedWriter) flushAndUnlock() error {
	b.pending = false
	b.timer.Stop()
	if len(b.buf) == 0 {
		b.mu.Unlock()
		return nil
	}
	b.writeMu.Lock()
	out := b.buf
	b.buf, b.spare = b.spare[:0], nil
	b.mu.Unlock()
	defer b.writeMu.Unlock()
	_, err := b.w.Write(out)
	b.spare = out[:0]
	return err
}

// Close writes what is buffered; later writes are not buffered.
func (b *BufferedWriter) Close() error {
	b.mu.Lock()
	b.closed = true
	return b.flushAndUnlock()
}

// flushOnWarn writes a buffered log out at once after a record at warn or
// above.
type flushOnWarn struct {
	slog.Handler
	out *BufferedWriter
}

func (h flushOnWarn) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		if ferr := h.out.Flush(); err == nil {
			err = ferr
		}
	}
	return err
}

func (h flushOnWarn) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushOnWarn{Handler: h.Handler.WithAttrs(attrs), out: h.out}
}

func (h flushOnWarn) WithGroup(name string) slog.Handler {
	return flushOnWarn{Handler: h.Handler.WithGroup(name), out: h.out}
}
