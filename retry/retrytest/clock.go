// Package retrytest provides a fake retry.Clock, so that tests of code
// that retries are exact, run in parallel and never sleep for real.
package retrytest

import (
	"context"
	"sync"
	"time"
)

// Clock is a fake retry.Clock. Time moves only when the clock is told to:
// by Advance, or, on an automatic clock, by each Sleep. It records every
// Sleep. A Clock is safe for concurrent use.
type Clock struct {
	mu        sync.Mutex
	now       time.Time
	auto      bool
	sleeps    []time.Duration
	sleepers  []*sleeper
	deadlines []*deadline
	waiting   chan struct{} // closed and replaced when a Sleep begins
}

type sleeper struct {
	until time.Time
	done  chan struct{}
}

type deadline struct {
	at     time.Time
	cancel context.CancelCauseFunc
	cause  error
}

// Epoch is the time a new Clock starts at.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewClock returns an automatic clock: each Sleep advances time by its
// duration and returns at once. Time is shared: when concurrent calls of
// retry.Do share a clock, one's Sleep moves the others' attempt timeouts
// closer too.
func NewClock() *Clock {
	return &Clock{now: Epoch, auto: true, waiting: make(chan struct{})}
}

// NewManualClock returns a clock whose Sleeps wait until Advance moves
// time past their end, or their context ends.
func NewManualClock() *Clock {
	return &Clock{now: Epoch, waiting: make(chan struct{})}
}

// Now returns the clock's current time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep records d and waits for it on the clock: at once on an automatic
// clock, until Advance on a manual one. It returns ctx.Err() if ctx ends
// first.
func (c *Clock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	if c.auto {
		c.advanceLocked(d)
		c.mu.Unlock()
		return nil
	}
	s := &sleeper{until: c.now.Add(d), done: make(chan struct{})}
	c.sleepers = append(c.sleepers, s)
	close(c.waiting)
	c.waiting = make(chan struct{})
	c.mu.Unlock()

	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		for i, other := range c.sleepers {
			if other == s {
				c.sleepers = append(c.sleepers[:i], c.sleepers[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
		return ctx.Err()
	}
}

// WithTimeout returns a copy of ctx canceled with cause once the clock
// reaches now+d.
func (c *Clock) WithTimeout(ctx context.Context, d time.Duration, cause error) (context.Context, context.CancelFunc) {
	cctx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	dl := &deadline{at: c.now.Add(d), cancel: cancel, cause: cause}
	if d <= 0 {
		cancel(cause)
	} else {
		c.deadlines = append(c.deadlines, dl)
	}
	c.mu.Unlock()
	return cctx, func() {
		cancel(context.Canceled)
		c.mu.Lock()
		for i, other := range c.deadlines {
			if other == dl {
				c.deadlines = append(c.deadlines[:i], c.deadlines[i+1:]...)
				break
			}
		}
		c.mu.Unlock()
	}
}

// Advance moves the clock forward by d, waking the Sleeps and ending the
// timeouts that are due.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked(d)
}

func (c *Clock) advanceLocked(d time.Duration) {
	c.now = c.now.Add(d)
	kept := c.sleepers[:0]
	for _, s := range c.sleepers {
		if !s.until.After(c.now) {
			close(s.done)
		} else {
			kept = append(kept, s)
		}
	}
	c.sleepers = kept
	keptDeadlines := c.deadlines[:0]
	for _, dl := range c.deadlines {
		if !dl.at.After(c.now) {
			dl.cancel(dl.cause)
		} else {
			keptDeadlines = append(keptDeadlines, dl)
		}
	}
	c.deadlines = keptDeadlines
}

// Sleeps returns the durations of every Sleep so far, in order.
func (c *Clock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// WaitForSleep blocks until some goroutine is in Sleep on this manual
// clock, or ctx ends; it reports whether one is.
func (c *Clock) WaitForSleep(ctx context.Context) bool {
	for {
		c.mu.Lock()
		n, ch := len(c.sleepers), c.waiting
		c.mu.Unlock()
		if n > 0 {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}
