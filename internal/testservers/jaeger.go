package testservers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Jaeger is a running Jaeger v2 (the OpenTelemetry-Collector-based
// cmd/jaeger) with in-memory storage.
type Jaeger struct {
	*process
	// OTLPHTTPEndpoint is the OTLP/HTTP receiver base URL,
	// "http://127.0.0.1:port"; traces are POSTed to OTLPHTTPEndpoint+"/v1/traces".
	OTLPHTTPEndpoint string
	// OTLPGRPCEndpoint is the OTLP/gRPC receiver, "127.0.0.1:port" (plaintext).
	OTLPGRPCEndpoint string
	// QueryURL is the query service (HTTP API and UI), "http://127.0.0.1:port".
	QueryURL string

	started time.Time
	client  *http.Client
}

// jaegerConfig is a minimal Jaeger v2 configuration: OTLP in, memory
// storage, query API out, every listener on loopback, and no internal
// telemetry listener (the default would bind :8888).
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info

extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    enable_tracing: false
    storage:
      traces: memstore
    http:
      endpoint: 127.0.0.1:%d
    grpc:
      endpoint: 127.0.0.1:%d

receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%d
      http:
        endpoint: 127.0.0.1:%d

processors:
  batch:
    timeout: 100ms

exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// StartJaeger starts Jaeger with a generated configuration (--config) whose
// OTLP gRPC/HTTP receivers and query HTTP/gRPC servers are on free loopback
// ports, and stops it when the test ends.
func StartJaeger(t testing.TB) *Jaeger {
	t.Helper()
	bin := binary(t, "POSTWISE_JAEGER", "jaeger")
	dir := t.TempDir()
	j := &Jaeger{client: &http.Client{Timeout: 30 * time.Second}}
	argsFor := func(attempt int) []string {
		p := freePorts(t, 4)
		queryHTTP, queryGRPC, otlpGRPC, otlpHTTP := p[0], p[1], p[2], p[3]
		j.QueryURL = "http://" + loopback(queryHTTP)
		j.OTLPGRPCEndpoint = loopback(otlpGRPC)
		j.OTLPHTTPEndpoint = "http://" + loopback(otlpHTTP)
		cfg := filepath.Join(dir, fmt.Sprintf("jaeger-%d.yaml", attempt))
		if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, queryHTTP, queryGRPC, otlpGRPC, otlpHTTP), 0o644); err != nil {
			t.Fatalf("testservers: %v", err)
		}
		return []string{"--config", cfg}
	}
	ready := func(ctx context.Context) error {
		if err := dialReady(j.OTLPGRPCEndpoint, j.OTLPHTTPEndpoint[len("http://"):])(ctx); err != nil {
			return err
		}
		return httpReady(ctx, j.client, j.QueryURL+"/api/services")
	}
	j.started = time.Now()
	j.process = start(t, "jaeger", bin, 60*time.Second, argsFor, ready)
	return j
}

// JaegerTrace is one trace as the query API returns it (/api/traces).
type JaegerTrace struct {
	TraceID   string                   `json:"traceID"`
	Spans     []JaegerSpan             `json:"spans"`
	Processes map[string]JaegerProcess `json:"processes"`
}

// JaegerSpan is one span of a JaegerTrace. StartTime and Duration are in
// microseconds.
type JaegerSpan struct {
	TraceID       string            `json:"traceID"`
	SpanID        string            `json:"spanID"`
	OperationName string            `json:"operationName"`
	References    []JaegerReference `json:"references"`
	StartTime     int64             `json:"startTime"`
	Duration      int64             `json:"duration"`
	Tags          []JaegerKeyValue  `json:"tags"`
	Logs          []JaegerLog       `json:"logs"`
	ProcessID     string            `json:"processID"`
	Warnings      []string          `json:"warnings"`
}

// JaegerReference links a span to its parent (refType "CHILD_OF") or to
// another span ("FOLLOWS_FROM").
type JaegerReference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// JaegerKeyValue is a tag: span attributes, and also otel.status_code,
// error, span.kind and otel.scope.name as Jaeger maps them.
type JaegerKeyValue struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// JaegerLog is a span event.
type JaegerLog struct {
	Timestamp int64            `json:"timestamp"`
	Fields    []JaegerKeyValue `json:"fields"`
}

// JaegerProcess is the resource of a span (service.name and attributes).
type JaegerProcess struct {
	ServiceName string           `json:"serviceName"`
	Tags        []JaegerKeyValue `json:"tags"`
}

// Tag returns the value of the tag key on the span.
func (s JaegerSpan) Tag(key string) (any, bool) {
	for _, kv := range s.Tags {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Parent returns the span ID of the CHILD_OF reference, or "" for a root.
func (s JaegerSpan) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Span returns the first span of the trace named operation.
func (tr JaegerTrace) Span(operation string) (JaegerSpan, bool) {
	for _, s := range tr.Spans {
		if s.OperationName == operation {
			return s, true
		}
	}
	return JaegerSpan{}, false
}

// TracesJSON returns the raw response of GET /api/traces?service=service
// (one query, no polling), covering the time since Jaeger started.
func (j *Jaeger) TracesJSON(t testing.TB, service string) json.RawMessage {
	t.Helper()
	var raw json.RawMessage
	if err := doJSON(j.client, http.MethodGet, j.tracesURL(service), nil, &raw); err != nil {
		t.Fatalf("testservers: jaeger query API: %v", err)
	}
	return raw
}

// tracesURL is the query for all traces of service since Jaeger started.
func (j *Jaeger) tracesURL(service string) string {
	q := url.Values{
		"service": {service},
		"limit":   {"1000"},
		"start":   {strconv.FormatInt(j.started.Add(-time.Hour).UnixMicro(), 10)},
		"end":     {strconv.FormatInt(time.Now().Add(time.Hour).UnixMicro(), 10)},
	}
	return j.QueryURL + "/api/traces?" + q.Encode()
}

// traces does one query. A service Jaeger has not seen yet is an error
// response from the API; it is reported as no traces.
func (j *Jaeger) traces(service string) ([]JaegerTrace, error) {
	var resp struct {
		Data   []JaegerTrace `json:"data"`
		Errors []struct {
			Code int    `json:"code"`
			Msg  string `json:"msg"`
		} `json:"errors"`
	}
	err := doJSON(j.client, http.MethodGet, j.tracesURL(service), nil, &resp)
	return resp.Data, err
}

// Traces polls the query API until at least one trace of service is stored
// and returns all of them; it fails the test after 30 seconds.
func (j *Jaeger) Traces(t testing.TB, service string) []JaegerTrace {
	t.Helper()
	return j.WaitTraces(t, service, 30*time.Second, func(trs []JaegerTrace) bool { return len(trs) > 0 })
}

// WaitTraces polls the query API until done(traces of service) is true and
// returns those traces; it fails the test after timeout. Use it to wait for
// every expected span: spans of one trace can arrive in separate batches.
func (j *Jaeger) WaitTraces(t testing.TB, service string, timeout time.Duration, done func([]JaegerTrace) bool) []JaegerTrace {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		trs, err := j.traces(service)
		if err == nil && done(trs) {
			return trs
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("testservers: jaeger: traces of service %q not as expected after %v: last query: %v", service, timeout, err)
			}
			b, _ := json.MarshalIndent(trs, "", "  ")
			t.Fatalf("testservers: jaeger: traces of service %q not as expected after %v; last saw %d traces:\n%s", service, timeout, len(trs), truncate(b, 8000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Services lists the service names Jaeger has seen (GET /api/services).
func (j *Jaeger) Services(t testing.TB) []string {
	t.Helper()
	var resp struct {
		Data []string `json:"data"`
	}
	if err := doJSON(j.client, http.MethodGet, j.QueryURL+"/api/services", nil, &resp); err != nil {
		t.Fatalf("testservers: jaeger query API: %v", err)
	}
	return resp.Data
}
