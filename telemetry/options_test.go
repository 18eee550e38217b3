package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/telemetry"
)

// Not parallel: it replaces the global providers, and restores them.
func TestGlobalProviderFallback(t *testing.T) {
	prevTP, prevMP := otel.GetTracerProvider(), otel.GetMeterProvider()
	t.Cleanup(func() {
		otel.SetTracerProvider(prevTP)
		otel.SetMeterProvider(prevMP)
	})
	r := newRig(t, telemetry.Options{})
	otel.SetTracerProvider(r.tp)
	otel.SetMeterProvider(r.mp)

	tel := telemetry.New(telemetry.Options{}) // both providers nil
	ctx, send := tel.StartSend(context.Background(), server)
	_, a := send.StartAttempt(ctx, 1)
	a.Reply(ok220, "ready")
	a.End(telemetry.AttemptOutcome{Verdict: ok220})
	send.End(telemetry.SendOutcome{Verdict: ok220, Attempts: 1})

	if got := len(r.spans.Ended()); got != 2 {
		t.Errorf("global tracer provider recorded %d spans, want 2", got)
	}
	if got := len(r.collect(t).Metrics); got != 3 {
		t.Errorf("global meter provider has %d metrics, want 3 (replies and the two durations)", got)
	}
}

// Not parallel: it replaces the global error handler, and restores it.
func TestInstrumentErrorsGoToOtelHandle(t *testing.T) {
	var (
		mu   sync.Mutex
		errs []error
	)
	prev := otel.GetErrorHandler()
	t.Cleanup(func() { otel.SetErrorHandler(prev) })
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}))

	tel := telemetry.New(telemetry.Options{MeterProvider: failingMeterProvider{}, TracerProvider: sdktrace.NewTracerProvider()})
	if tel == nil {
		t.Fatal("New returned nil")
	}
	// Usable all the same.
	ctx, send := tel.StartSend(context.Background(), server)
	_, a := send.StartAttempt(ctx, 1)
	a.Reply(ok220, "ready")
	a.End(telemetry.AttemptOutcome{Verdict: ok220})
	send.Retry(1, ok220, time.Second)
	send.End(telemetry.SendOutcome{Verdict: ok220, Attempts: 1, Accepted: 1})

	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 5 {
		t.Errorf("otel.Handle got %d errors, want one per instrument (5): %v", len(errs), errs)
	}
}

var errInstrument = errors.New("instrument refused")

type failingMeterProvider struct{ metricnoop.MeterProvider }

func (failingMeterProvider) Meter(string, ...metric.MeterOption) metric.Meter { return failingMeter{} }

type failingMeter struct{ metricnoop.Meter }

func (failingMeter) Int64Counter(string, ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	return nil, errInstrument
}

func (failingMeter) Float64Histogram(string, ...metric.Float64HistogramOption) (metric.Float64Histogram, error) {
	return nil, errInstrument
}

// Not parallel: AllocsPerRun.
func TestNoopAndNil(t *testing.T) {
	for name, tel := range map[string]*telemetry.Telemetry{
		"nil":  nil,
		"Noop": telemetry.Noop(),
		"zero": {},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.WithValue(context.Background(), struct{}{}, 1)
			info := withRecipients("alice@example.com")
			run := func() {
				sctx, send := tel.StartSend(ctx, info)
				if sctx != ctx || send != nil {
					t.Fatalf("StartSend = %v, %v; want the same context and a nil *Send", sctx, send)
				}
				actx, a := send.StartAttempt(sctx, 1)
				if actx != ctx || a != nil {
					t.Fatalf("StartAttempt = %v, %v; want the same context and a nil *Attempt", actx, a)
				}
				a.Reply(ok220, "ready")
				a.Recipient("alice@example.com", ok250RCPT)
				a.End(telemetry.AttemptOutcome{Verdict: ok250END})
				send.Retry(1, ok220, time.Second)
				send.End(telemetry.SendOutcome{Verdict: ok250END})
			}
			if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
				t.Errorf("a send on a disabled Telemetry allocates %v times, want 0", allocs)
			}
		})
	}
}

func TestEndRecordsOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{})
	ctx, send := r.tel.StartSend(context.Background(), server)
	_, a := send.StartAttempt(ctx, 1)
	a.End(telemetry.AttemptOutcome{Verdict: ok250END})
	a.End(telemetry.AttemptOutcome{Err: errors.New("late"), Verdict: ok250END})
	send.End(telemetry.SendOutcome{Verdict: ok250END, Attempts: 1, Accepted: 1})
	send.End(telemetry.SendOutcome{Err: errors.New("late"), Verdict: ok250END, Attempts: 1, Accepted: 1})

	checkMetrics(t, r,
		attemptDuration(hpoint(1, addr, port)),
		sendDuration(hpoint(1, addr, port)),
		recipients(point(1, addr, port, telemetry.RecipientOutcomeKey.String("accepted"))),
	)
	for _, s := range r.spans.Ended() {
		if s.Status().Code != 0 {
			t.Errorf("%s: status %v after a second End, want the first End's Unset", s.Name(), s.Status())
		}
	}
}

// everything renders all that was exported: span names, statuses,
// attributes and events, and the metrics.
func everything(t *testing.T, r *rig) string {
	return dump(r.spans.Ended()) + fmt.Sprintf("%+v", r.collect(t))
}

// privateSend is a send whose replies and errors quote personal data, and
// whose AUTH exchange carries a SCRAM server challenge.
func privateSend(tel *telemetry.Telemetry) {
	ctx, send := tel.StartSend(context.Background(), withRecipients("alice@example.com"))
	_, a := send.StartAttempt(ctx, 1)
	a.Reply(ok220, "mx.example.com ESMTP")
	a.Reply(reply(334, "", classify.CmdAUTH), "cj1meXtvK2hEbnBTVGhpcw==,s=QSXCR+Q6sek8bf92,i=4096")
	a.Reply(reply(235, "2.7.0", classify.CmdAUTH), "2.7.0 Authentication successful")
	refused := reply(550, "5.1.1", classify.CmdRCPT)
	err := errors.New("smtp RCPT: 550 5.1.1 <alice@example.com>: Alice Liddell no longer works here")
	a.Reply(refused, "5.1.1 <alice@example.com>: Alice Liddell no longer works here")
	a.Recipient("alice@example.com", refused)
	a.End(telemetry.AttemptOutcome{Err: err, Verdict: refused, Rejected: 1})
	send.End(telemetry.SendOutcome{Err: err, Verdict: refused, Attempts: 1, Rejected: 1})
}

func TestPrivateDataOffByDefault(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{})
	privateSend(r.tel)
	all := everything(t, r)
	for _, secret := range []string{"alice@", "Liddell", "s=QSXCR", "Authentication successful", string(telemetry.ReplyTextKey), string(telemetry.RecipientAddressKey), string(telemetry.RecipientsAddressesKey)} {
		if strings.Contains(all, secret) {
			t.Errorf("%q was recorded with the default options:\n%s", secret, all)
		}
	}
}

func TestPrivateDataOptIn(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{RecordReplyText: true, RecordRecipients: true})
	privateSend(r.tel)
	all := everything(t, r)
	for _, want := range []string{
		`smtp.reply.text="5.1.1 <alice@example.com>: Alice Liddell no longer works here"`,
		`smtp.recipient.address="alice@example.com"`,
		`smtp.recipients.addresses=["alice@example.com"]`,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("opted in, but %s is missing:\n%s", want, all)
		}
	}
	// The SASL challenge stays out even when text is opted in; and error
	// values, status descriptions and metrics never carry the text.
	if strings.Contains(all, "s=QSXCR") {
		t.Errorf("the AUTH challenge was recorded:\n%s", all)
	}
	if m := fmt.Sprintf("%+v", r.collect(t)); strings.Contains(m, "alice@") || strings.Contains(m, "Liddell") {
		t.Errorf("personal data reached a metric: %s", m)
	}
	for _, s := range r.spans.Ended() {
		if strings.Contains(s.Status().Description, "Liddell") {
			t.Errorf("%s status description quotes the server: %q", s.Name(), s.Status().Description)
		}
	}
}

func TestRecipientOutcome(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v    classify.Verdict
		want string
	}{
		{reply(250, "2.1.5", classify.CmdRCPT), telemetry.OutcomeAccepted},
		{reply(251, "", classify.CmdRCPT), telemetry.OutcomeAccepted},
		{reply(550, "5.1.1", classify.CmdRCPT), telemetry.OutcomeRejected},
		{reply(450, "4.2.1", classify.CmdRCPT), telemetry.OutcomeDeferred},
		{reply(451, "4.7.1", classify.CmdRCPT), telemetry.OutcomeDeferred},
		{reply(452, "4.5.3", classify.CmdRCPT), telemetry.OutcomeDeferred}, // too many recipients: send the rest now
		{reply(552, "5.5.3", classify.CmdRCPT), telemetry.OutcomeDeferred}, // the same, said with a 5xx
		{reply(554, "5.7.1", classify.CmdDataEnd), telemetry.OutcomeRejected},
		{reply(421, "4.4.2", classify.CmdRCPT), telemetry.OutcomeDeferred},
		{classify.Verdict{Class: classify.Success}, telemetry.OutcomeAccepted},
		{classify.Verdict{Class: classify.Transient}, telemetry.OutcomeDeferred},
		{classify.Verdict{}, telemetry.OutcomeRejected},
	} {
		t.Run(tc.v.String(), func(t *testing.T) {
			if got := telemetry.RecipientOutcome(tc.v); got != tc.want {
				t.Errorf("RecipientOutcome(%v) = %s, want %s", tc.v, got, tc.want)
			}
		})
	}
}

type typedError struct{}

func (typedError) Error() string     { return "typed" }
func (typedError) ErrorType() string { return "quota" }

type plainError struct{}

func (plainError) Error() string { return "plain" }

func TestErrorType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  error
		v    classify.Verdict
		want string
	}{
		{"reason", errors.New("x"), reply(451, "4.7.1", classify.CmdRCPT), "greylisted"},
		{"code without reason", errors.New("x"), classify.Verdict{Class: classify.Permanent, Code: 599}, "599"},
		{"ErrorType method", fmt.Errorf("send: %w", typedError{}), classify.Verdict{}, "quota"},
		{"type name", fmt.Errorf("send: %w", plainError{}), classify.Verdict{}, "github.com/postwise/postwise/telemetry_test.plainError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, telemetry.Options{})
			ctx, send := r.tel.StartSend(context.Background(), server)
			_, a := send.StartAttempt(ctx, 1)
			a.End(telemetry.AttemptOutcome{Err: tc.err, Verdict: tc.v})
			for _, kv := range r.spans.Ended()[0].Attributes() {
				if kv.Key == semconv.ErrorTypeKey {
					if got := kv.Value.AsString(); got != tc.want {
						t.Errorf("error.type %q, want %q", got, tc.want)
					}
					return
				}
			}
			t.Errorf("no error.type")
		})
	}
}

func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{RecordReplyText: true, RecordRecipients: true})
	const n = 16
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			ctx, send := r.tel.StartSend(context.Background(), withRecipients("alice@example.com"))
			_, a := send.StartAttempt(ctx, 1)
			// Replies and recipients may arrive from several goroutines
			// (pipelined RCPTs): the same Attempt is shared.
			var inner sync.WaitGroup
			for range 4 {
				inner.Go(func() {
					a.Reply(ok250RCPT, "ok")
					a.Recipient("alice@example.com", ok250RCPT)
				})
			}
			inner.Wait()
			a.End(telemetry.AttemptOutcome{Verdict: ok250END, Accepted: 1})
			send.End(telemetry.SendOutcome{Verdict: ok250END, Attempts: 1, Accepted: 1})
		})
	}
	wg.Wait()
	if got := len(r.spans.Ended()); got != 2*n {
		t.Errorf("%d spans, want %d", got, 2*n)
	}
	checkMetrics(t, r,
		replies(point(4*n, addr, port, telemetry.ReplyCodeKey.Int(250), telemetry.ReplyClassKey.String("success"), telemetry.CommandKey.String("RCPT"))),
		attemptDuration(hpoint(n, addr, port)),
		sendDuration(hpoint(n, addr, port)),
		recipients(point(n, addr, port, telemetry.RecipientOutcomeKey.String("accepted"))),
	)
}

func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{})
	ctx, send := r.tel.StartSend(context.Background(), server)
	_, a := send.StartAttempt(ctx, 1)
	a.End(telemetry.AttemptOutcome{})
	send.End(telemetry.SendOutcome{})
	want := map[string]string{
		telemetry.AttemptDurationMetric: "[0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 120]",
		telemetry.SendDurationMetric:    "[0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 120 300 600 1800 3600]",
	}
	for _, m := range r.collect(t).Metrics {
		if w, ok := want[m.Name]; ok {
			if got := fmt.Sprint(m.Data.(metricdata.Histogram[float64]).DataPoints[0].Bounds); got != w {
				t.Errorf("%s bounds %s, want %s", m.Name, got, w)
			}
		}
	}
}

// The recorder and the SDK must not be needed for a Telemetry on a
// provider that samples nothing: spans are not recording, metrics still are.
func TestUnsampledSpansStillMeasure(t *testing.T) {
	t.Parallel()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()), sdktrace.WithSpanProcessor(sr))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	r := &rig{spans: sr, tp: tp, reader: reader, mp: mp, tel: telemetry.New(telemetry.Options{TracerProvider: tp, MeterProvider: mp})}
	partialSend(r.tel)
	if got := len(sr.Ended()); got != 0 {
		t.Errorf("%d spans recorded with NeverSample", got)
	}
	if got := len(r.collect(t).Metrics); got != 4 {
		t.Errorf("%d metrics, want 4", got)
	}
}

func TestNoVerdictNoReplyAttributes(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{})
	ctx, send := r.tel.StartSend(context.Background(), telemetry.SendInfo{})
	_, a := send.StartAttempt(ctx, 1)
	a.End(telemetry.AttemptOutcome{})
	send.End(telemetry.SendOutcome{})
	checkSpans(t, r, `
		smtp.attempt client parent=smtp.send status=Unset
		  smtp.attempt=1
		  smtp.recipients.accepted=0
		  smtp.recipients.deferred=0
		  smtp.recipients.rejected=0
		smtp.send internal parent=none status=Unset
		  smtp.attempts=0
		  smtp.recipients.accepted=0
		  smtp.recipients.count=0
		  smtp.recipients.deferred=0
		  smtp.recipients.rejected=0
	`)
	checkMetrics(t, r, attemptDuration(hpoint(1)), sendDuration(hpoint(1)))
}
