//go:build integration

package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/smtp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wneessen/go-mail"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/postwise/postwise/internal/testservers"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/telemetry"
)

// mpNoTelemetry keeps the Mailpit tests off the global providers.
var mpNoTelemetry = telemetry.Options{TracerProvider: tracenoop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}

// mpSender returns a Sender for Mailpit's SMTP listener, without TLS or
// telemetry, whose connections count the writes that pipeline MAIL with
// RCPT. The test closes it; a Cleanup closes it again in case it failed
// first.
func mpSender(t *testing.T, m *testservers.Mailpit, opts sender.Options) (*sender.Sender, *mpWrites) {
	t.Helper()
	host, port, err := net.SplitHostPort(m.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	opts.Host = host
	if opts.Port, err = strconv.Atoi(port); err != nil {
		t.Fatal(err)
	}
	opts.MailOptions = append([]mail.Option{mail.WithTLSPolicy(mail.NoTLS)}, opts.MailOptions...)
	opts.Telemetry = mpNoTelemetry
	if opts.CommandTimeout == 0 {
		// Mailpit answers at once; a hang is a bug to see in seconds.
		opts.CommandTimeout = 10 * time.Second
	}
	w := &mpWrites{}
	opts.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		w.dials.Add(1)
		return &mpConn{Conn: c, w: w}, nil
	}
	s, err := sender.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, w
}

// mpWrites counts what the Sender's connections wrote.
type mpWrites struct {
	dials     atomic.Int64
	pipelined atomic.Int64 // writes that carried MAIL and RCPT together
}

type mpConn struct {
	net.Conn
	w *mpWrites
}

func (c *mpConn) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("MAIL FROM:")) && bytes.Contains(p, []byte("RCPT TO:")) {
		c.w.pipelined.Add(1)
	}
	return c.Conn.Write(p)
}

// mpMessage is message i of a run, to one recipient of its own.
func mpMessage(t testing.TB, run string, i int) *mail.Msg {
	t.Helper()
	m := mail.NewMsg()
	if err := m.From("notifications@example.test"); err != nil {
		t.Fatal(err)
	}
	if err := m.To(fmt.Sprintf("user%d@example.test", i)); err != nil {
		t.Fatal(err)
	}
	m.Subject(fmt.Sprintf("%s %d", run, i))
	m.SetBodyString(mail.TypeTextPlain, "Follow the link to reset your password.\r\n.\r\nA line with a dot.")
	return m
}

// mpExtensions returns the EHLO extensions Mailpit advertises, keyword to
// parameters.
func mpExtensions(t *testing.T, m *testservers.Mailpit) map[string]string {
	t.Helper()
	c, err := smtp.Dial(m.SMTPAddr)
	if err != nil {
		t.Fatalf("dial Mailpit: %v", err)
	}
	defer c.Close()
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	ext := map[string]string{}
	for _, k := range []string{"PIPELINING", "8BITMIME", "SMTPUTF8", "SIZE", "ENHANCEDSTATUSCODES", "STARTTLS", "AUTH"} {
		if ok, param := c.Extension(k); ok {
			ext[k] = param
		}
	}
	if err := c.Quit(); err != nil {
		t.Errorf("QUIT: %v", err)
	}
	return ext
}
