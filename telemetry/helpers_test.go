package telemetry_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/telemetry"
)

// rig is a Telemetry wired to an in-memory span recorder and a manual
// metric reader.
type rig struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
	tel    *telemetry.Telemetry
}

// newRig makes a rig; opts' providers are filled in unless fill is false
// for that provider.
func newRig(t testing.TB, opts telemetry.Options) *rig {
	t.Helper()
	r := &rig{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		_ = r.tp.Shutdown(context.Background())
		_ = r.mp.Shutdown(context.Background())
	})
	if opts.TracerProvider == nil {
		opts.TracerProvider = r.tp
	}
	if opts.MeterProvider == nil {
		opts.MeterProvider = r.mp
	}
	r.tel = telemetry.New(opts)
	return r
}

func (r *rig) collect(t testing.TB) metricdata.ScopeMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name == telemetry.ScopeName {
			return sm
		}
	}
	return metricdata.ScopeMetrics{}
}

// reply is the verdict on a reply, as the sender would classify it.
func reply(code int, enhanced, command string) classify.Verdict {
	return classify.ClassifyReply(classify.Reply{Code: code, Enhanced: enhanced, Command: command})
}

// dump renders ended spans in the order they ended, one block each: name,
// kind, parent (by name, among the recorded spans), status, then the
// attributes sorted by key and the events in order. Strings are quoted,
// doubles marked, so types show.
func dump(spans []sdktrace.ReadOnlySpan) string {
	names := map[trace.SpanID]string{}
	for _, s := range spans {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	var b strings.Builder
	for _, s := range spans {
		parent := "none"
		if p := s.Parent(); p.IsValid() {
			parent = names[p.SpanID()]
			if parent == "" {
				parent = "unrecorded"
			}
		}
		fmt.Fprintf(&b, "%s %s parent=%s status=%s", s.Name(), s.SpanKind(), parent, s.Status().Code)
		if d := s.Status().Description; d != "" {
			fmt.Fprintf(&b, " %q", d)
		}
		b.WriteByte('\n')
		for _, kv := range sorted(s.Attributes()) {
			fmt.Fprintf(&b, "  %s\n", kvString(kv))
		}
		for _, e := range s.Events() {
			fmt.Fprintf(&b, "  event %s", e.Name)
			for _, kv := range sorted(e.Attributes) {
				fmt.Fprintf(&b, " %s", kvString(kv))
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func sorted(kvs []attribute.KeyValue) []attribute.KeyValue {
	kvs = slices.Clone(kvs)
	slices.SortFunc(kvs, func(a, b attribute.KeyValue) int { return strings.Compare(string(a.Key), string(b.Key)) })
	return kvs
}

func kvString(kv attribute.KeyValue) string {
	switch kv.Value.Type() {
	case attribute.STRING:
		return string(kv.Key) + "=" + strconv.Quote(kv.Value.AsString())
	case attribute.FLOAT64:
		return string(kv.Key) + "=" + strconv.FormatFloat(kv.Value.AsFloat64(), 'g', -1, 64) + "(double)"
	case attribute.STRINGSLICE:
		q := make([]string, 0, len(kv.Value.AsStringSlice()))
		for _, s := range kv.Value.AsStringSlice() {
			q = append(q, strconv.Quote(s))
		}
		return string(kv.Key) + "=[" + strings.Join(q, " ") + "]"
	}
	return string(kv.Key) + "=" + kv.Value.Emit()
}

// checkSpans compares the ended spans with want, a dump with a leading
// newline and tab indentation for readability in the test source.
func checkSpans(t *testing.T, r *rig, want string) {
	t.Helper()
	want = strings.TrimPrefix(strings.ReplaceAll(want, "\t", ""), "\n")
	if got := dump(r.spans.Ended()); got != want {
		t.Errorf("spans:\n%s\nwant:\n%s", got, want)
	}
}

// Expected metrics, built from the instruments' fixed names, units and
// descriptions.

func set(kvs ...attribute.KeyValue) attribute.Set { return attribute.NewSet(kvs...) }

func counter(name, unit, desc string, points ...metricdata.DataPoint[int64]) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Unit: unit, Description: desc, Data: metricdata.Sum[int64]{
		Temporality: metricdata.CumulativeTemporality, IsMonotonic: true, DataPoints: points,
	}}
}

func point(n int64, kvs ...attribute.KeyValue) metricdata.DataPoint[int64] {
	return metricdata.DataPoint[int64]{Attributes: set(kvs...), Value: n}
}

func histogram(name, desc string, points ...metricdata.HistogramDataPoint[float64]) metricdata.Metrics {
	return metricdata.Metrics{Name: name, Unit: "s", Description: desc, Data: metricdata.Histogram[float64]{
		Temporality: metricdata.CumulativeTemporality, DataPoints: points,
	}}
}

func hpoint(count uint64, kvs ...attribute.KeyValue) metricdata.HistogramDataPoint[float64] {
	return metricdata.HistogramDataPoint[float64]{Attributes: set(kvs...), Count: count}
}

func replies(points ...metricdata.DataPoint[int64]) metricdata.Metrics {
	return counter(telemetry.RepliesMetric, "{reply}", "Replies read from SMTP servers, by code, class and command.", points...)
}

func retries(points ...metricdata.DataPoint[int64]) metricdata.Metrics {
	return counter(telemetry.RetriesMetric, "{retry}", "Retries decided, by the reason, class and command of the reply that caused them.", points...)
}

func recipients(points ...metricdata.DataPoint[int64]) metricdata.Metrics {
	return counter(telemetry.RecipientsMetric, "{recipient}", "Recipients of finished sends, by final outcome.", points...)
}

func sendDuration(points ...metricdata.HistogramDataPoint[float64]) metricdata.Metrics {
	return histogram(telemetry.SendDurationMetric, "Duration of sends, from the first attempt to the outcome, retry waits included.", points...)
}

func attemptDuration(points ...metricdata.HistogramDataPoint[float64]) metricdata.Metrics {
	return histogram(telemetry.AttemptDurationMetric, "Duration of send attempts: one SMTP conversation each.", points...)
}

// checkMetrics asserts the scope's metrics are exactly want: the same
// metrics and attribute sets, counter values exact, and histogram counts
// exact (their sums and buckets depend on the clock).
func checkMetrics(t *testing.T, r *rig, want ...metricdata.Metrics) {
	t.Helper()
	got := r.collect(t)
	metricdatatest.AssertEqual(t, metricdata.ScopeMetrics{Scope: got.Scope, Metrics: want}, got,
		metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreValue(), metricdatatest.IgnoreExemplars())
	for _, w := range want {
		i := slices.IndexFunc(got.Metrics, func(m metricdata.Metrics) bool { return m.Name == w.Name })
		if i < 0 {
			continue // reported above
		}
		g := got.Metrics[i]
		switch wd := w.Data.(type) {
		case metricdata.Sum[int64]:
			metricdatatest.AssertEqual(t, w, g, metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
		case metricdata.Histogram[float64]:
			gd := g.Data.(metricdata.Histogram[float64])
			for _, wp := range wd.DataPoints {
				for _, gp := range gd.DataPoints {
					if gp.Attributes.Equals(&wp.Attributes) && gp.Count != wp.Count {
						t.Errorf("%s{%s}: count %d, want %d", w.Name, wp.Attributes.Encoded(attribute.DefaultEncoder()), gp.Count, wp.Count)
					}
				}
			}
		}
	}
}
