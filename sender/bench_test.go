package sender_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wneessen/go-mail"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
	"github.com/postwise/postwise/telemetry"
)

// benchMsg is the message every variant sends, to the given recipients.
// Message-ID and Date are fixed up front: go-mail and the Sender would
// otherwise add them on the first send, and every variant must put the same
// bytes on the wire.
func benchMsg(tb testing.TB, to ...string) *mail.Msg {
	tb.Helper()
	if len(to) == 0 {
		to = []string{"bob@example.com"}
	}
	m := newMsg(tb, to...)
	m.SetMessageIDWithValue("bench.0001@postwise.example")
	m.SetDateWithValue(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	return m
}

// newBenchSender returns a Sender for srv without TLS, closed when the
// benchmark or test ends. Telemetry is off unless opts sets it.
func newBenchSender(tb testing.TB, srv *sendertest.Server, opts sender.Options) *sender.Sender {
	tb.Helper()
	opts.Host, opts.Port = srv.Host(), srv.Port()
	opts.MailOptions = append([]mail.Option{mail.WithTLSPolicy(mail.NoTLS)}, opts.MailOptions...)
	if opts.Telemetry == (telemetry.Options{}) {
		opts.Telemetry = noTelemetry
	}
	s, err := sender.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// newGoMailClient returns a go-mail client for srv without TLS, as most
// services configure it; extra options come last.
func newGoMailClient(tb testing.TB, srv *sendertest.Server, extra ...mail.Option) *mail.Client {
	tb.Helper()
	opts := append([]mail.Option{mail.WithPort(srv.Port()), mail.WithTLSPolicy(mail.NoTLS)}, extra...)
	c, err := mail.NewClient(srv.Host(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// reportRate adds messages per second to the benchmark's line.
func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// benchSequential times send, called b.N times after one untimed call that
// opens the connection (for the variants that keep one).
func benchSequential(b *testing.B, send func() error) {
	b.Helper()
	if err := send(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := send(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRate(b)
}

// BenchmarkSend compares the Sender with go-mail on the same loopback
// server, each sending the same one-recipient message (issue 4): the Sender
// on one kept connection, go-mail's Client.Send on a kept connection (NOOP
// before and RSET after every message), and go-mail's DialAndSend, a new
// connection per message, which is what most services do. The parallel
// variants run as many goroutines as connections. The Sender keeps its
// defaults otherwise, so it opens a new connection every
// DefaultMaxMessagesPerConnection messages. The server runs in the same
// process: B/op and allocs/op include its share, the same for every variant.
func BenchmarkSend(b *testing.B) {
	ctx := context.Background()
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()

	b.Run("postwise", func(b *testing.B) {
		s := newBenchSender(b, srv, sender.Options{MaxConnections: 1})
		msg := benchMsg(b)
		benchSequential(b, func() error { _, err := s.Send(ctx, msg); return err })
	})
	b.Run("go-mail-kept-connection", func(b *testing.B) {
		c := newGoMailClient(b, srv)
		if err := c.DialWithContext(ctx); err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		msg := benchMsg(b)
		benchSequential(b, func() error { return c.Send(msg) })
	})
	b.Run("go-mail-DialAndSend", func(b *testing.B) {
		c := newGoMailClient(b, srv)
		msg := benchMsg(b)
		benchSequential(b, func() error { return c.DialAndSend(msg) })
	})

	// RunParallel starts parallelism×GOMAXPROCS goroutines; aim for four
	// (the Sender's default pool) and give each variant one connection
	// per goroutine.
	parallelism := max(1, 4/runtime.GOMAXPROCS(0))
	conns := parallelism * runtime.GOMAXPROCS(0)

	b.Run(fmt.Sprintf("postwise-parallel-%d", conns), func(b *testing.B) {
		s := newBenchSender(b, srv, sender.Options{MaxConnections: conns})
		msg := benchMsg(b)
		if _, err := s.Send(ctx, msg); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetParallelism(parallelism)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			// A *mail.Msg is not safe for concurrent use: one per goroutine.
			msg := benchMsg(b)
			for pb.Next() {
				if _, err := s.Send(ctx, msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		reportRate(b)
	})
	b.Run(fmt.Sprintf("go-mail-kept-connection-parallel-%d", conns), func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			// go-mail's Client is not safe to share: one client, one kept
			// connection, per goroutine. The dial is timed, once per
			// goroutine, as the Sender's pool dials inside its sends.
			c := newGoMailClient(b, srv)
			if err := c.DialWithContext(ctx); err != nil {
				b.Error(err)
				return
			}
			defer c.Close()
			msg := benchMsg(b)
			for pb.Next() {
				if err := c.Send(msg); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		reportRate(b)
	})
}

// BenchmarkTelemetryOverhead measures what the Sender's telemetry costs
// (issue 5: within 5%): the same sends with no-op providers and with the
// SDK, a batch span processor exporting to nowhere and a metric reader.
// The sdk-traces and sdk-metrics variants put the SDK on one side only, to
// show which one the cost comes from. On loopback a send costs a few dozen
// microseconds of CPU, client and server together, so the telemetry's own
// CPU shows in full; the slow-server variants add the millisecond a real
// server takes to queue a message (its fsync before the 250), as a relay
// in the same data centre would.
func BenchmarkTelemetryOverhead(b *testing.B) {
	ctx := context.Background()
	noopTP, noopMP := tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider()
	sdkTP := func(b *testing.B) trace.TracerProvider {
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		// Cleanups run last in first out: the Sender closes before the
		// provider shuts down.
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		return tp
	}
	sdkMP := func(b *testing.B) metric.MeterProvider {
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		return mp
	}
	run := func(b *testing.B, srv *sendertest.Server, tp trace.TracerProvider, mp metric.MeterProvider) {
		s := newBenchSender(b, srv, sender.Options{MaxConnections: 1, Telemetry: telemetry.Options{TracerProvider: tp, MeterProvider: mp}})
		msg := benchMsg(b)
		benchSequential(b, func() error { _, err := s.Send(ctx, msg); return err })
	}

	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()
	b.Run("noop", func(b *testing.B) { run(b, srv, noopTP, noopMP) })
	b.Run("sdk", func(b *testing.B) { run(b, srv, sdkTP(b), sdkMP(b)) })
	b.Run("sdk-traces", func(b *testing.B) { run(b, srv, sdkTP(b), noopMP) })
	b.Run("sdk-metrics", func(b *testing.B) { run(b, srv, noopTP, sdkMP(b)) })

	slow := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "DATA-END", Do: sendertest.Delay(time.Millisecond, sendertest.Default())},
	}})
	defer slow.Close()
	b.Run("slow-server-noop", func(b *testing.B) { run(b, slow, noopTP, noopMP) })
	b.Run("slow-server-sdk", func(b *testing.B) { run(b, slow, sdkTP(b), sdkMP(b)) })
}

// tripCounter counts round trips on the connections it wraps: each time
// the client reads after it wrote, it waits for the server once. Opening
// the TCP connection counts one (the handshake), and a new connection
// starts as if it had written, so the wait for the greeting counts one too.
type tripCounter struct{ n atomic.Int64 }

func (tc *tripCounter) wrap(nc net.Conn) net.Conn {
	tc.n.Add(1)
	c := &tripConn{Conn: nc, n: &tc.n}
	c.wrote.Store(true)
	return c
}

// dial is a DialContext for the Sender and go-mail that counts.
func (tc *tripCounter) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return tc.wrap(nc), nil
}

// delta returns how many round trips f cost.
func (tc *tripCounter) delta(f func()) int {
	before := tc.n.Load()
	f()
	return int(tc.n.Load() - before)
}

// tripConn is one counted connection. The Sender and go-mail use a
// connection from one goroutine at a time; the atomics keep the count
// right should a Close or SetDeadline from another goroutine interleave.
type tripConn struct {
	net.Conn
	wrote atomic.Bool
	n     *atomic.Int64
}

func (c *tripConn) Write(p []byte) (int, error) {
	c.wrote.Store(true)
	return c.Conn.Write(p)
}

func (c *tripConn) Read(p []byte) (int, error) {
	if c.wrote.Swap(false) {
		c.n.Add(1)
	}
	return c.Conn.Read(p)
}

// TestRoundTrips counts the round trips of one message on each client,
// which is what bounds the rate against a distant server: at 20 ms per
// round trip, 2 round trips are 40 ms a message and 7 are 140 ms.
func TestRoundTrips(t *testing.T) {
	ctx := context.Background()
	srv := sendertest.NewServer(sendertest.Options{}) // advertises PIPELINING
	defer srv.Close()

	// The table for the README: a row per client, a column per number of
	// recipients.
	type row struct {
		client, waits string
		trips         map[int]int
	}
	var rows []*row
	check := func(client string, rcpts, got, want int, waits string) {
		t.Helper()
		if got != want {
			t.Errorf("%s, %d recipient(s): %d round trips, want %d (%s)", client, rcpts, got, want, waits)
		}
		i := slices.IndexFunc(rows, func(r *row) bool { return r.client == client })
		if i < 0 {
			rows = append(rows, &row{client: client, waits: waits, trips: map[int]int{}})
			i = len(rows) - 1
		}
		rows[i].trips[rcpts] = got
	}
	to := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("rcpt%d@example.com", i+1))
		}
		return out
	}

	for _, n := range []int{1, 5} {
		// The Sender with PIPELINING: MAIL, every RCPT and DATA in one
		// write, their replies in one read (1); then the body and the
		// final dot, and its reply (2). Nothing before or after.
		{
			var tc tripCounter
			s := newBenchSender(t, srv, sender.Options{MaxConnections: 1, DialContext: tc.dial})
			msg := benchMsg(t, to(n)...)
			send := func() {
				if _, err := s.Send(ctx, msg); err != nil {
					t.Fatal(err)
				}
			}
			// A new connection: TCP (1), greeting (1), EHLO (1), then
			// the transaction (2). QUIT waits for Close.
			check("postwise, first message on a new connection", n, tc.delta(send), 5, "TCP, greeting, EHLO, MAIL+RCPTs+DATA, body+dot")
			check("postwise, kept connection, PIPELINING", n, tc.delta(send), 2, "MAIL+RCPTs+DATA, body+dot")
			check("postwise, Close", n, tc.delta(func() { s.Close() }), 1, "QUIT")
		}
		// Without PIPELINING each command waits for its reply: MAIL, each
		// RCPT, DATA, then the body and dot.
		{
			var tc tripCounter
			s := newBenchSender(t, srv, sender.Options{MaxConnections: 1, DialContext: tc.dial, DisablePipelining: true})
			msg := benchMsg(t, to(n)...)
			send := func() {
				if _, err := s.Send(ctx, msg); err != nil {
					t.Fatal(err)
				}
			}
			send()
			check("postwise, kept connection, DisablePipelining", n, tc.delta(send), 3+n, "MAIL, each RCPT, DATA, body+dot")
		}
		// go-mail's Client.Send on a kept connection, one command at a time
		// (go-mail does not pipeline): NOOP to check the connection, MAIL,
		// each RCPT, DATA, body+dot, then its reset after every message,
		// which checks the connection again first: NOOP, RSET.
		{
			var tc tripCounter
			c := newGoMailClient(t, srv, mail.WithDialContextFunc(tc.dial))
			if err := c.DialWithContext(ctx); err != nil {
				t.Fatal(err)
			}
			msg := benchMsg(t, to(n)...)
			send := func() {
				if err := c.Send(msg); err != nil {
					t.Fatal(err)
				}
			}
			send()
			check("go-mail Client.Send, kept connection", n, tc.delta(send), 6+n, "NOOP, MAIL, each RCPT, DATA, body+dot, NOOP, RSET")
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		}
		// go-mail's DialAndSend, everything counted: TCP, greeting, EHLO,
		// then what Send does (6+n), and QUIT.
		{
			var tc tripCounter
			c := newGoMailClient(t, srv, mail.WithDialContextFunc(tc.dial))
			msg := benchMsg(t, to(n)...)
			got := tc.delta(func() {
				if err := c.DialAndSend(msg); err != nil {
					t.Fatal(err)
				}
			})
			check("go-mail DialAndSend", n, got, 10+n, "TCP, greeting, EHLO, NOOP, MAIL, each RCPT, DATA, body+dot, NOOP, RSET, QUIT")
		}
	}

	var b strings.Builder
	b.WriteString("\n| client | 1 recipient | 5 recipients | what waits for the server |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", r.client, r.trips[1], r.trips[5], r.waits)
	}
	t.Log(b.String())
}
