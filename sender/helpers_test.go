package sender_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wneessen/go-mail"
	"go.uber.org/goleak"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/retry/retrytest"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
	"github.com/postwise/postwise/telemetry"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace/noop"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// noTelemetry keeps tests off the global providers.
var noTelemetry = telemetry.Options{TracerProvider: noop.NewTracerProvider(), MeterProvider: metricnoop.NewMeterProvider()}

// retries records the verdicts the retry loop saw.
type retries struct {
	mu       sync.Mutex
	verdicts []classify.Verdict
	delays   []time.Duration
}

func (r *retries) hook(_ context.Context, _ int, v classify.Verdict, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verdicts = append(r.verdicts, v)
	r.delays = append(r.delays, d)
}

func (r *retries) get() []classify.Verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]classify.Verdict(nil), r.verdicts...)
}

// newSender returns a Sender for srv without TLS or AUTH, retrying on a
// fake clock, and closes it when the test ends.
func newSender(t *testing.T, srv *sendertest.Server, opts sender.Options, mailOpts ...mail.Option) (*sender.Sender, *retries) {
	t.Helper()
	rec := &retries{}
	opts.Host, opts.Port = srv.Host(), srv.Port()
	if len(mailOpts) == 0 {
		mailOpts = []mail.Option{mail.WithTLSPolicy(mail.NoTLS)}
	}
	opts.MailOptions = append(mailOpts, opts.MailOptions...)
	if opts.Retry.Clock == nil {
		opts.Retry.Clock = retrytest.NewClock()
	}
	if opts.Retry.MaxElapsedTime == 0 {
		opts.Retry.MaxElapsedTime = time.Hour
	}
	opts.Retry.OnRetry = rec.hook
	if opts.Telemetry == (telemetry.Options{}) {
		opts.Telemetry = noTelemetry
	}
	s, err := sender.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, rec
}

func newMsg(t testing.TB, to ...string) *mail.Msg {
	t.Helper()
	m := mail.NewMsg()
	if err := m.From("alice@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := m.To(to...); err != nil {
		t.Fatal(err)
	}
	m.Subject("Your password reset")
	m.SetBodyString(mail.TypeTextPlain, "Follow the link to reset your password.\r\n.\r\nA line with a dot.")
	return m
}

// verbs returns the verbs the server received on connection conn.
func verbs(srv *sendertest.Server, conn int) string {
	var out []string
	for _, c := range srv.Commands() {
		if c.Conn == conn && c.Verb != "" {
			out = append(out, c.Verb)
		}
	}
	return strings.Join(out, " ")
}

var _ = retry.Policy{}
