package sender

import (
	"context"
	"sync"
	"time"
)

// pool holds up to max connections to one server, idle ones in LIFO order
// so that the most recently used (the most likely alive) is reused first
// and the others age out. It is safe for concurrent use.
type pool struct {
	s     *Sender
	slots chan struct{} // one token per connection that may exist

	mu     sync.Mutex
	idle   []*conn
	closed bool
}

func newPool(s *Sender, max int) *pool {
	return &pool{s: s, slots: make(chan struct{}, max)}
}

// get returns a connection: an idle one that is still fit, or a new one.
// It waits for a free slot while max connections are in use.
func (p *pool) get(ctx context.Context) (*conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		c := p.popIdle()
		if c == nil {
			break
		}
		idle := p.s.now().Sub(c.lastUsed)
		if idle >= p.s.opts.IdleTimeout {
			c.quit()
			continue
		}
		if idle >= p.s.opts.CheckAfterIdle && !p.s.alive(ctx, c) {
			c.raw.Close()
			continue
		}
		return c, nil
	}
	c, err := p.s.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return c, nil
}

func (p *pool) popIdle() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		return nil
	}
	c := p.idle[len(p.idle)-1]
	p.idle = p.idle[:len(p.idle)-1]
	return c
}

// put returns c to the pool. A connection that is broken, has carried its
// share of messages, or comes back after Close is closed instead.
func (p *pool) put(c *conn, healthy bool) {
	defer func() { <-p.slots }()
	if !healthy {
		c.raw.Close()
		return
	}
	c.lastUsed = p.s.now()
	c.raw.SetDeadline(time.Time{})
	p.mu.Lock()
	if p.closed || c.messages >= p.s.opts.MaxMessagesPerConnection {
		p.mu.Unlock()
		c.quit()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// reap closes the connections idle for IdleTimeout or longer.
func (p *pool) reap() {
	now := p.s.now()
	p.mu.Lock()
	var stale []*conn
	kept := p.idle[:0]
	for _, c := range p.idle {
		if now.Sub(c.lastUsed) >= p.s.opts.IdleTimeout {
			stale = append(stale, c)
		} else {
			kept = append(kept, c)
		}
	}
	clear(p.idle[len(kept):])
	p.idle = kept
	p.mu.Unlock()
	for _, c := range stale {
		c.quit()
	}
}

// close QUITs the idle connections; connections in use are closed when
// they come back.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range idle {
		wg.Go(c.quit)
	}
	wg.Wait()
}
