//go:build integration

package integration

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/wneessen/go-mail"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/postwise/postwise/internal/testservers"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
	"github.com/postwise/postwise/telemetry"
)

// The round trip of the slow link: half of it on each direction.
const linkRTT = 10 * time.Millisecond

// slowLink is a sendertest server behind Toxiproxy with linkRTT of latency:
// a relay in another region, as far as the client can tell.
type slowLink struct {
	srv  *sendertest.Server
	host string
	port int
}

func newSlowLink(tb testing.TB) *slowLink {
	tb.Helper()
	srv := sendertest.NewServer(sendertest.Options{})
	tb.Cleanup(srv.Close)
	tp := testservers.StartToxiproxy(tb)
	proxy := tp.NewProxy(tb, "slow-link", srv.Addr)
	proxy.Latency(tb, "upstream", linkRTT/2, 0)
	proxy.Latency(tb, "downstream", linkRTT/2, 0)
	host, port, err := net.SplitHostPort(proxy.Listen)
	if err != nil {
		tb.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	return &slowLink{srv: srv, host: host, port: p}
}

func ltMessage(tb testing.TB, i int) *mail.Msg {
	m := mail.NewMsg()
	if err := m.From("alerts@example.com"); err != nil {
		tb.Fatal(err)
	}
	if err := m.To(fmt.Sprintf("oncall%d@example.com", i)); err != nil {
		tb.Fatal(err)
	}
	m.Subject("Disk almost full")
	m.SetBodyString(mail.TypeTextPlain, "The disk of db-1 is 95% full.")
	return m
}

var ltNoTelemetry = telemetry.Options{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}

func (l *slowLink) sender(tb testing.TB, conns int, pipelining bool) *sender.Sender {
	tb.Helper()
	s, err := sender.New(sender.Options{
		Host: l.host, Port: l.port, MaxConnections: conns, DisablePipelining: !pipelining,
		MailOptions: []mail.Option{mail.WithTLSPolicy(mail.NoTLS)}, Telemetry: ltNoTelemetry,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func (l *slowLink) gomail(tb testing.TB) *mail.Client {
	tb.Helper()
	c, err := mail.NewClient(l.host, mail.WithPort(l.port), mail.WithTLSPolicy(mail.NoTLS))
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// ltClients are the ways to send one message after another over one
// connection (or, for DialAndSend, one connection per message).
func ltClients(tb testing.TB, l *slowLink) map[string]func(i int) error {
	postwise := l.sender(tb, 1, true)
	sequential := l.sender(tb, 1, false)
	kept := l.gomail(tb)
	if err := kept.DialWithContext(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { kept.Close() })
	dialing := l.gomail(tb)
	return map[string]func(int) error{
		"postwise": func(i int) error {
			_, err := postwise.Send(context.Background(), ltMessage(tb, i))
			return err
		},
		"postwise-no-pipelining": func(i int) error {
			_, err := sequential.Send(context.Background(), ltMessage(tb, i))
			return err
		},
		"go-mail-kept-connection": func(i int) error { return kept.Send(ltMessage(tb, i)) },
		"go-mail-DialAndSend":     func(i int) error { return dialing.DialAndSend(ltMessage(tb, i)) },
	}
}

// TestThroughputOverSlowLink holds the claim of the README: over a 10 ms
// round trip, one connection, postwise sends at least 3× as many messages
// per second as go-mail's Client.Send on a kept connection.
func TestThroughputOverSlowLink(t *testing.T) {
	l := newSlowLink(t)
	clients := ltClients(t, l)
	const n = 25
	rate := map[string]float64{}
	for _, name := range []string{"postwise", "postwise-no-pipelining", "go-mail-kept-connection", "go-mail-DialAndSend"} {
		send := clients[name]
		if err := send(-1); err != nil { // the connection is open before timing
			t.Fatalf("%s: %v", name, err)
		}
		start := time.Now()
		for i := range n {
			if err := send(i); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		rate[name] = n / time.Since(start).Seconds()
		t.Logf("%-24s %6.1f msgs/s  %5.1f ms/msg  (%s round trip)", name, rate[name], 1000/rate[name], linkRTT)
	}
	if ratio := rate["postwise"] / rate["go-mail-kept-connection"]; ratio < 3 {
		t.Errorf("postwise is %.2f× go-mail Client.Send over a %s link, want at least 3×", ratio, linkRTT)
	} else {
		t.Logf("postwise / go-mail Client.Send = %.2f×", ratio)
	}
	if got := len(l.srv.Messages()); got != 4*(n+1) {
		t.Errorf("server has %d messages, want %d", got, 4*(n+1))
	}
}

// BenchmarkSlowLink sends one message after another over one connection
// with a 10 ms round trip.
func BenchmarkSlowLink(b *testing.B) {
	l := newSlowLink(b)
	clients := ltClients(b, l)
	for _, name := range []string{"postwise", "postwise-no-pipelining", "go-mail-kept-connection", "go-mail-DialAndSend"} {
		send := clients[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			if err := send(-1); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				if err := send(i); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// BenchmarkSlowLinkPool sends from as many goroutines as the pool has
// connections, over the 10 ms link.
func BenchmarkSlowLinkPool(b *testing.B) {
	l := newSlowLink(b)
	for _, conns := range []int{1, 2, 4, 8, 16} {
		b.Run(fmt.Sprintf("connections=%d", conns), func(b *testing.B) {
			s := l.sender(b, conns, true)
			var wg sync.WaitGroup
			for range conns { // open the connections before timing
				wg.Go(func() {
					if _, err := s.Send(context.Background(), ltMessage(b, -1)); err != nil {
						b.Error(err)
					}
				})
			}
			wg.Wait()
			b.ResetTimer()
			work := make(chan int)
			for range conns {
				wg.Go(func() {
					for i := range work {
						if _, err := s.Send(context.Background(), ltMessage(b, i)); err != nil {
							b.Error(err)
						}
					}
				})
			}
			for i := range b.N {
				work <- i
			}
			close(work)
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
