package telemetry_test

import (
	"context"
	"testing"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/postwise/postwise/telemetry"
)

// discard is a span exporter that drops everything, so the benchmark
// measures the instrumentation and the SDK, not an exporter.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }

// fakeSend is the telemetry of one successful single-recipient send: two
// spans, seven events, six replies counted, two durations and a recipient.
func fakeSend(tel *telemetry.Telemetry, info telemetry.SendInfo) {
	ctx, send := tel.StartSend(context.Background(), info)
	_, a := send.StartAttempt(ctx, 1)
	greet(a)
	a.Reply(ok250RCPT, "2.1.5 OK")
	a.Recipient("alice@example.com", ok250RCPT)
	deliver(a)
	a.End(telemetry.AttemptOutcome{Verdict: ok250END, Accepted: 1})
	send.End(telemetry.SendOutcome{Verdict: ok250END, Attempts: 1, Accepted: 1})
}

// BenchmarkSend compares the cost of the telemetry of one send: off, on
// no-op providers (the default before a program installs an SDK), and on the
// SDK with a batch span processor and a metric reader.
func BenchmarkSend(b *testing.B) {
	info := withRecipients("alice@example.com")
	b.Run("off", func(b *testing.B) {
		b.ReportAllocs()
		tel := telemetry.Noop()
		for b.Loop() {
			fakeSend(tel, info)
		}
	})
	b.Run("noop-providers", func(b *testing.B) {
		b.ReportAllocs()
		tel := telemetry.New(telemetry.Options{
			TracerProvider: tracenoop.NewTracerProvider(),
			MeterProvider:  metricnoop.NewMeterProvider(),
		})
		for b.Loop() {
			fakeSend(tel, info)
		}
	})
	b.Run("sdk-batch", func(b *testing.B) {
		b.ReportAllocs()
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discard{}))
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		b.Cleanup(func() {
			_ = tp.Shutdown(context.Background())
			_ = mp.Shutdown(context.Background())
		})
		tel := telemetry.New(telemetry.Options{TracerProvider: tp, MeterProvider: mp})
		for b.Loop() {
			fakeSend(tel, info)
		}
	})
}
