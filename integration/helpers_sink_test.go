//go:build integration

package integration

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wneessen/go-mail"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"go.uber.org/goleak"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/telemetry"
)

// skNoTelemetry keeps the suite off the global OpenTelemetry providers.
var skNoTelemetry = telemetry.Options{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}

// skDialer opens the Sender's connections and watches them from the client
// side: how many were opened, whether each was closed, the round trips each
// waited for (a read after a write, as sender's own counter sees them) and
// the bytes read.
type skDialer struct {
	mu    sync.Mutex
	conns []*skConn
}

type skConn struct {
	net.Conn
	wrote      atomic.Bool
	roundTrips atomic.Int64
	read       atomic.Int64
	closed     atomic.Bool
}

func (c *skConn) Write(p []byte) (int, error) {
	c.wrote.Store(true)
	return c.Conn.Write(p)
}

func (c *skConn) Read(p []byte) (int, error) {
	if c.wrote.Swap(false) {
		c.roundTrips.Add(1)
	}
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func (c *skConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

func (d *skDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	c := &skConn{Conn: nc}
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return c, nil
}

// dials returns how many connections were opened.
func (d *skDialer) dials() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

// open returns how many connections are not closed yet.
func (d *skDialer) open() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, c := range d.conns {
		if !c.closed.Load() {
			n++
		}
	}
	return n
}

// roundTrips returns the round trips waited for so far, over all connections.
func (d *skDialer) roundTrips() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for _, c := range d.conns {
		n += c.roundTrips.Load()
	}
	return n
}

// bytesRead returns the bytes read so far, over all connections.
func (d *skDialer) bytesRead() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n int64
	for _, c := range d.conns {
		n += c.read.Load()
	}
	return n
}

// skVerdicts records the verdicts the retry loop saw, one per retry.
type skVerdicts struct {
	mu sync.Mutex
	vs []classify.Verdict
}

func (r *skVerdicts) hook(_ context.Context, _ int, v classify.Verdict, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.vs = append(r.vs, v)
}

func (r *skVerdicts) get() []classify.Verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]classify.Verdict(nil), r.vs...)
}

// skNewSender returns a Sender for addr ("127.0.0.1:port") without TLS or
// telemetry, dialing through d. Options.Retry.OnRetry, when set, is kept.
// The caller closes the Sender; a cleanup closes it too, in case the test
// stopped early.
func skNewSender(t *testing.T, addr string, d *skDialer, opts sender.Options, mailOpts ...mail.Option) *sender.Sender {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	opts.Host = host
	if opts.Port, err = strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	opts.MailOptions = append([]mail.Option{mail.WithTLSPolicy(mail.NoTLS)}, mailOpts...)
	opts.DialContext = d.DialContext
	opts.Telemetry = skNoTelemetry
	s, err := sender.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// skMsg returns a small message from alice to the recipients, subject
// subject, with a body of body (a short default when empty).
func skMsg(t testing.TB, subject, body string, to ...string) *mail.Msg {
	t.Helper()
	m := mail.NewMsg()
	if err := m.From("alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := m.To(to...); err != nil {
		t.Fatal(err)
	}
	m.Subject(subject)
	if body == "" {
		body = "Follow the link to reset your password.\r\n.\r\nA line with a dot."
	}
	m.SetBodyString(mail.TypeTextPlain, body)
	return m
}

// skMessageID returns the Message-ID of a captured message, without angle
// brackets, or "" when it has none.
func skMessageID(capture string) string {
	for _, line := range strings.Split(capture, "\n") {
		line = strings.TrimRight(line, "\r")
		if len(line) > len("Message-ID:") && strings.EqualFold(line[:len("Message-ID:")], "Message-ID:") {
			v := strings.TrimSpace(line[len("Message-ID:"):])
			return strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
		}
	}
	return ""
}

// skVerifyNoLeaks checks, when the test ends, that the test left no
// goroutine behind. Call it first, before starting any server: cleanups run
// last-in first-out, so this one runs after the servers were stopped (their
// process-watching goroutines and the keep-alive connections of their HTTP
// APIs end with them), and goroutines that existed before are ignored.
func skVerifyNoLeaks(t *testing.T) {
	t.Helper()
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}
