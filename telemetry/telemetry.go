package telemetry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName is the instrumentation scope of every tracer and meter this
// package creates.
const ScopeName = "github.com/postwise/postwise/telemetry"

// Options configures a Telemetry. The zero Options traces and measures with
// the global providers and records no personal data.
type Options struct {
	// TracerProvider makes the spans. Nil: the provider of the span in the
	// context given to StartSend when that span is valid, else
	// otel.GetTracerProvider() at the time of the call (as otelhttp does).
	TracerProvider trace.TracerProvider
	// MeterProvider makes the instruments. Nil: otel.GetMeterProvider() at
	// the time of New (until a program sets one, the global provider
	// forwards to the first provider set later).
	MeterProvider metric.MeterProvider

	// RecordReplyText adds the server's reply text to each smtp.reply
	// event. Off by default: bounces quote addresses and names. Success
	// and intermediate replies have no event, so the text of AUTH
	// challenges (334), which for SCRAM carries data derived from the
	// credentials, is never recorded.
	RecordReplyText bool
	// RecordRecipients adds recipient addresses to the send span and to
	// each smtp.recipient event. Off by default: addresses are personal
	// data. Metrics never carry them, whatever this says.
	RecordRecipients bool
}

// Telemetry makes the spans and metrics of sends. It is safe for concurrent
// use; make one and share it. A nil *Telemetry and the zero Telemetry record
// nothing, and so do the *Send and *Attempt they return (nil).
type Telemetry struct {
	on               bool
	tracer           trace.Tracer // nil: resolved per send from the context or the global provider
	recordReplyText  bool
	recordRecipients bool

	sendDuration    metric.Float64Histogram
	attemptDuration metric.Float64Histogram
	replies         metric.Int64Counter
	retries         metric.Int64Counter
	recipients      metric.Int64Counter

	replySets setCache
}

var noop = &Telemetry{}

// Noop returns a Telemetry that records nothing and allocates nothing:
// StartSend returns the context it was given and a nil *Send, whose methods
// all do nothing.
func Noop() *Telemetry { return noop }

// Histogram bucket boundaries, in seconds. An attempt is one SMTP
// conversation (milliseconds to a minute); a send spans retries, which can
// wait out greylisting for many minutes.
var (
	attemptBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120}
	sendBuckets    = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
)

// New returns a Telemetry configured by opts. It never fails: an error
// creating an instrument goes to otel.Handle, and that instrument records
// nothing.
func New(opts Options) *Telemetry {
	t := &Telemetry{
		on:               true,
		recordReplyText:  opts.RecordReplyText,
		recordRecipients: opts.RecordRecipients,
	}
	if opts.TracerProvider != nil {
		t.tracer = newTracer(opts.TracerProvider)
	}
	mp := opts.MeterProvider
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	nm := metricnoop.Meter{}
	var err error

	if t.sendDuration, err = m.Float64Histogram(SendDurationMetric,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of sends, from the first attempt to the outcome, retry waits included."),
		metric.WithExplicitBucketBoundaries(sendBuckets...),
	); err != nil {
		otel.Handle(err)
		t.sendDuration, _ = nm.Float64Histogram(SendDurationMetric)
	}
	if t.attemptDuration, err = m.Float64Histogram(AttemptDurationMetric,
		metric.WithUnit("s"),
		metric.WithDescription("Duration of send attempts: one SMTP conversation each."),
		metric.WithExplicitBucketBoundaries(attemptBuckets...),
	); err != nil {
		otel.Handle(err)
		t.attemptDuration, _ = nm.Float64Histogram(AttemptDurationMetric)
	}
	if t.replies, err = m.Int64Counter(RepliesMetric,
		metric.WithUnit("{reply}"),
		metric.WithDescription("Replies read from SMTP servers, by code, class and command."),
	); err != nil {
		otel.Handle(err)
		t.replies, _ = nm.Int64Counter(RepliesMetric)
	}
	if t.retries, err = m.Int64Counter(RetriesMetric,
		metric.WithUnit("{retry}"),
		metric.WithDescription("Retries decided, by the reason, class and command of the reply that caused them."),
	); err != nil {
		otel.Handle(err)
		t.retries, _ = nm.Int64Counter(RetriesMetric)
	}
	if t.recipients, err = m.Int64Counter(RecipientsMetric,
		metric.WithUnit("{recipient}"),
		metric.WithDescription("Recipients of finished sends, by final outcome."),
	); err != nil {
		otel.Handle(err)
		t.recipients, _ = nm.Int64Counter(RecipientsMetric)
	}
	return t
}

func newTracer(tp trace.TracerProvider) trace.Tracer {
	return tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
}

// tracerFor is the tracer of one send: the configured one, else that of the
// span in ctx, else the global one, looked up now so that a provider set
// after New is used.
func (t *Telemetry) tracerFor(ctx context.Context) trace.Tracer {
	if t.tracer != nil {
		return t.tracer
	}
	if span := trace.SpanFromContext(ctx); span.SpanContext().IsValid() {
		return newTracer(span.TracerProvider())
	}
	return newTracer(otel.GetTracerProvider())
}
