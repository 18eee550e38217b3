//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wneessen/go-mail"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/internal/testservers"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
	"github.com/postwise/postwise/telemetry"
)

// TestJaegerExampleOTLP runs examples/otlp against Jaeger and reads its two
// sends back from Jaeger's query API: the greylisted one, retried once, and
// the one with a recipient that does not exist. The reply codes and their
// descriptions from classify's tables must have arrived.
func TestJaegerExampleOTLP(t *testing.T) {
	j := testservers.StartJaeger(t)
	service := jgService("postwise-example-otlp")

	out := jgRunExample(t, "./examples/otlp",
		"OTEL_EXPORTER_OTLP_ENDPOINT="+j.OTLPHTTPEndpoint,
		"OTEL_SERVICE_NAME="+service)
	if !strings.Contains(out, fmt.Sprintf("Spans exported over OTLP for service %q", service)) {
		t.Errorf("examples/otlp did not report its export; it printed:\n%s", out)
	}

	trs := j.WaitTraces(t, service, 30*time.Second, func(trs []testservers.JaegerTrace) bool {
		return len(trs) >= 2 && jgAllComplete(trs)
	})
	defer jgDumpOnFailure(t, trs)
	if len(trs) != 2 {
		t.Fatalf("%d traces of %s, want the two sends", len(trs), service)
	}
	// The sends are told apart by their recipients: carol alone, who is
	// greylisted; dave and mallory, who does not exist.
	byRecipients := map[string]testservers.JaegerTrace{}
	for _, tr := range trs {
		send, _ := tr.Span(telemetry.SendSpanName)
		byRecipients[jgTag(send, telemetry.RecipientsCountKey)] = tr
	}

	t.Run("greylisted then delivered", func(t *testing.T) {
		tr, ok := byRecipients["1"]
		if !ok {
			t.Fatalf("no send to one recipient among %v", jgKeys(byRecipients))
		}
		send, attempts := jgSend(t, tr)
		if len(attempts) != 2 {
			t.Fatalf("%d smtp.attempt spans under smtp.send, want 2", len(attempts))
		}
		jgWant(t, "smtp.send", send, map[string]string{
			string(telemetry.AttemptsKey): "2",
			"otel.status_code":            "",
			"error":                       "",
			"error.type":                  "",
		})
		jgWant(t, "attempt 1", attempts[0], map[string]string{
			string(telemetry.AttemptKey):                 "1",
			string(telemetry.ReplyCodeKey):               "451",
			string(telemetry.ReplyEnhancedStatusCodeKey): "4.7.1",
			string(telemetry.CommandKey):                 classify.CmdRCPT,
			string(telemetry.ReplyDescriptionKey):        classify.DescribeReply(451, classify.CmdRCPT),
			string(telemetry.ReplyReasonKey):             string(classify.ReasonGreylisted),
			"error.type":                                 string(classify.ReasonGreylisted),
			"otel.status_code":                           "ERROR",
			"error":                                      "true",
			"span.kind":                                  "client",
		})
		jgWant(t, "attempt 2", attempts[1], map[string]string{
			string(telemetry.AttemptKey): "2",
			"otel.status_code":           "",
			"error":                      "",
		})
		retries := jgEvents(send, telemetry.RetryEvent)
		if len(retries) != 1 {
			t.Fatalf("%d %s events on smtp.send, want 1", len(retries), telemetry.RetryEvent)
		}
		jgWantFields(t, "smtp.retry event", retries[0], map[string]string{
			string(telemetry.AttemptKey):     "1",
			string(telemetry.ReplyCodeKey):   "451",
			string(telemetry.CommandKey):     classify.CmdRCPT,
			string(telemetry.ReplyReasonKey): string(classify.ReasonGreylisted),
		})
		// The server asked for 2 seconds; backoff's first step is 1s.
		if d, err := strconv.ParseFloat(jgField(retries[0], telemetry.RetryDelayKey), 64); err != nil || d < 2 {
			t.Errorf("smtp.retry.delay %q, want at least 2 (seconds, from the greylisting reply)", jgField(retries[0], telemetry.RetryDelayKey))
		}
	})

	t.Run("one recipient does not exist", func(t *testing.T) {
		tr, ok := byRecipients["2"]
		if !ok {
			t.Fatalf("no send to two recipients among %v", jgKeys(byRecipients))
		}
		send, attempts := jgSend(t, tr)
		if len(attempts) != 1 {
			t.Fatalf("%d smtp.attempt spans under smtp.send, want 1: a 550 is not retried", len(attempts))
		}
		// The send failed for mallory: the 550 decided it.
		jgWant(t, "smtp.send", send, map[string]string{
			string(telemetry.AttemptsKey):                "1",
			string(telemetry.ReplyCodeKey):               "550",
			string(telemetry.ReplyEnhancedStatusCodeKey): "5.1.1",
			string(telemetry.CommandKey):                 classify.CmdRCPT,
			string(telemetry.ReplyDescriptionKey):        classify.DescribeReply(550, classify.CmdRCPT),
			string(telemetry.ReplyReasonKey):             string(classify.ReasonBadMailbox),
			string(telemetry.RecipientsAcceptedKey):      "1",
			string(telemetry.RecipientsRejectedKey):      "1",
			"error.type":                                 string(classify.ReasonBadMailbox),
			"otel.status_code":                           "ERROR",
			"error":                                      "true",
		})
		// The attempt delivered to dave, so the final dot's 250 decided it
		// and it is no error; mallory's 550 is in its events.
		jgWant(t, "attempt 1", attempts[0], map[string]string{
			string(telemetry.ReplyCodeKey):          "250",
			string(telemetry.CommandKey):            classify.CmdDataEnd,
			string(telemetry.RecipientsAcceptedKey): "1",
			string(telemetry.RecipientsRejectedKey): "1",
			"otel.status_code":                      "",
		})
		replies := jgEvents(attempts[0], telemetry.ReplyEvent)
		if len(replies) != 1 {
			t.Fatalf("%d %s events on the attempt, want 1", len(replies), telemetry.ReplyEvent)
		}
		jgWantFields(t, "smtp.reply event", replies[0], map[string]string{
			string(telemetry.ReplyCodeKey): "550",
			string(telemetry.CommandKey):   classify.CmdRCPT,
		})
		rejected := jgEvents(attempts[0], telemetry.RecipientEvent)
		if len(rejected) != 1 {
			t.Fatalf("%d %s events on the attempt, want 1", len(rejected), telemetry.RecipientEvent)
		}
		jgWantFields(t, "smtp.recipient event", rejected[0], map[string]string{
			string(telemetry.RecipientOutcomeKey): "rejected",
			string(telemetry.ReplyCodeKey):        "550",
			string(telemetry.ReplyReasonKey):      string(classify.ReasonBadMailbox),
			// No address without RecordRecipients.
			string(telemetry.RecipientAddressKey): "",
		})
		if n := len(jgEvents(send, telemetry.RetryEvent)); n != 0 {
			t.Errorf("%d %s events, want none", n, telemetry.RetryEvent)
		}
	})
}

// TestJaegerDirectExport sends through a Sender whose TracerProvider exports
// over OTLP/HTTP to Jaeger: a 421 at MAIL, then success on a new connection.
// Jaeger shows the failed attempt with the code and the command it answered.
func TestJaegerDirectExport(t *testing.T) {
	j := testservers.StartJaeger(t)
	service := jgService("postwise-direct")

	exp, err := otlptracehttp.New(t.Context(), otlptracehttp.WithEndpointURL(j.OTLPHTTPEndpoint+"/v1/traces"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))

	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "MAIL", Times: 1, Do: sendertest.Reply(421, "4.3.2", "Service shutting down")},
	}})
	defer srv.Close()
	s, err := sender.New(sender.Options{
		Host:        srv.Host(),
		Port:        srv.Port(),
		MailOptions: []mail.Option{mail.WithTLSPolicy(mail.NoTLS)},
		Retry:       retry.Policy{InitialInterval: 5 * time.Millisecond, MaxElapsedTime: 30 * time.Second},
		Telemetry:   telemetry.Options{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider()},
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := mail.NewMsg()
	if err := msg.From("notifications@example.test"); err != nil {
		t.Fatal(err)
	}
	if err := msg.To("carol@example.test"); err != nil {
		t.Fatal(err)
	}
	msg.Subject("Your password reset")
	msg.SetBodyString(mail.TypeTextPlain, "Follow the link to reset your password.")

	result, sendErr := s.Send(t.Context(), msg)
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	// Shutdown flushes the batch to Jaeger; its error says whether it got there.
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("flushing spans to Jaeger: %v", err)
	}
	if sendErr != nil {
		t.Fatalf("Send: %v", sendErr)
	}
	if result.Attempts != 2 {
		t.Fatalf("%d attempts, want success on the second", result.Attempts)
	}

	trs := j.WaitTraces(t, service, 30*time.Second, jgAllComplete)
	defer jgDumpOnFailure(t, trs)
	if len(trs) != 1 {
		t.Fatalf("%d traces, want the one send", len(trs))
	}
	send, attempts := jgSend(t, trs[0])
	if len(attempts) != 2 {
		t.Fatalf("%d smtp.attempt spans under smtp.send, want 2", len(attempts))
	}
	jgWant(t, "smtp.send", send, map[string]string{
		string(telemetry.AttemptsKey): "2",
		"otel.status_code":            "",
		"error.type":                  "",
	})
	jgWant(t, "attempt 1", attempts[0], map[string]string{
		string(telemetry.AttemptKey):                 "1",
		string(telemetry.ReplyCodeKey):               "421",
		string(telemetry.ReplyEnhancedStatusCodeKey): "4.3.2",
		string(telemetry.CommandKey):                 classify.CmdMAIL,
		string(telemetry.ReplyDescriptionKey):        classify.DescribeReply(421, classify.CmdMAIL),
		string(telemetry.ReplyActionKey):             classify.Reconnect.String(),
		"error.type":                                 string(classify.ReasonServiceUnavailable),
		"otel.status_code":                           "ERROR",
		"span.kind":                                  "client",
		"server.address":                             srv.Host(),
		"server.port":                                strconv.Itoa(srv.Port()),
	})
	jgWant(t, "attempt 2", attempts[1], map[string]string{
		string(telemetry.AttemptKey):            "2",
		string(telemetry.RecipientsAcceptedKey): "1",
		"otel.status_code":                      "",
	})
	retries := jgEvents(send, telemetry.RetryEvent)
	if len(retries) != 1 {
		t.Fatalf("%d %s events on smtp.send, want 1", len(retries), telemetry.RetryEvent)
	}
	jgWantFields(t, "smtp.retry event", retries[0], map[string]string{
		string(telemetry.AttemptKey):   "1",
		string(telemetry.ReplyCodeKey): "421",
		string(telemetry.CommandKey):   classify.CmdMAIL,
	})
}

// jgService is a service name no other run shares.
func jgService(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
}

// jgRunExample runs `go run pkg` in the repository root with env added to
// (and, for OTEL_ variables, replacing) the test's environment, and returns
// its output. It fails the test unless the program exits 0.
func jgRunExample(t *testing.T, pkg string, env ...string) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute) // a cold build cache compiles the SDK
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", pkg)
	cmd.Dir = root
	cmd.WaitDelay = 5 * time.Second
	// The caller's OTEL_ settings (a traces endpoint would win over ours) stay out.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "OTEL_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run %s (%v): %v\n%s", pkg, time.Since(start).Round(time.Millisecond), err, out)
	}
	t.Logf("go run %s took %v", pkg, time.Since(start).Round(time.Millisecond))
	return string(out)
}

// jgAllComplete reports whether every trace has its smtp.send span and as
// many smtp.attempt children as the send's smtp.attempts says: the spans of
// one trace can reach Jaeger in separate batches.
func jgAllComplete(trs []testservers.JaegerTrace) bool {
	if len(trs) == 0 {
		return false
	}
	for _, tr := range trs {
		send, ok := tr.Span(telemetry.SendSpanName)
		if !ok {
			return false
		}
		n, err := strconv.Atoi(jgTag(send, telemetry.AttemptsKey))
		if err != nil || len(jgChildren(tr, send.SpanID, telemetry.AttemptSpanName)) != n {
			return false
		}
	}
	return true
}

// jgSend returns the trace's smtp.send span, which must be its root, and its
// smtp.attempt children in attempt order.
func jgSend(t *testing.T, tr testservers.JaegerTrace) (testservers.JaegerSpan, []testservers.JaegerSpan) {
	t.Helper()
	send, ok := tr.Span(telemetry.SendSpanName)
	if !ok {
		t.Fatalf("trace %s has no %s span", tr.TraceID, telemetry.SendSpanName)
	}
	if p := send.Parent(); p != "" {
		t.Errorf("smtp.send has parent %s, want a root span", p)
	}
	attempts := jgChildren(tr, send.SpanID, telemetry.AttemptSpanName)
	if len(attempts)+1 != len(tr.Spans) {
		t.Errorf("trace has %d spans: smtp.send, %d smtp.attempt children and others", len(tr.Spans), len(attempts))
	}
	return send, attempts
}

// jgChildren returns the spans named operation whose parent is parentID,
// ordered by their smtp.attempt tag.
func jgChildren(tr testservers.JaegerTrace, parentID, operation string) []testservers.JaegerSpan {
	var out []testservers.JaegerSpan
	for _, s := range tr.Spans {
		if s.OperationName == operation && s.Parent() == parentID {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b testservers.JaegerSpan) int {
		x, _ := strconv.Atoi(jgTag(a, telemetry.AttemptKey))
		y, _ := strconv.Atoi(jgTag(b, telemetry.AttemptKey))
		return x - y
	})
	return out
}

// jgTag returns a span's tag as text ("451", "true", "ERROR"), or "" if the
// span does not have it.
func jgTag[K ~string](s testservers.JaegerSpan, key K) string {
	v, ok := s.Tag(string(key))
	if !ok {
		return ""
	}
	return fmt.Sprint(v)
}

// jgWant checks a span's tags; a want of "" means the tag must be absent.
func jgWant(t *testing.T, what string, s testservers.JaegerSpan, want map[string]string) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got := jgTag(s, k); got != want[k] {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want[k])
		}
	}
}

// jgEvents returns the span's events (Jaeger logs) named name.
func jgEvents(s testservers.JaegerSpan, name string) []testservers.JaegerLog {
	var out []testservers.JaegerLog
	for _, l := range s.Logs {
		if jgField(l, "event") == name {
			out = append(out, l)
		}
	}
	return out
}

// jgField returns an event's field as text, or "".
func jgField[K ~string](l testservers.JaegerLog, key K) string {
	for _, f := range l.Fields {
		if f.Key == string(key) {
			return fmt.Sprint(f.Value)
		}
	}
	return ""
}

func jgWantFields(t *testing.T, what string, l testservers.JaegerLog, want map[string]string) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got := jgField(l, k); got != want[k] {
			t.Errorf("%s: %s = %q, want %q", what, k, got, want[k])
		}
	}
}

func jgKeys(m map[string]testservers.JaegerTrace) []string {
	return slices.Sorted(maps.Keys(m))
}

// jgDumpOnFailure logs the traces as Jaeger returned them if the test failed.
func jgDumpOnFailure(t *testing.T, trs []testservers.JaegerTrace) {
	if t.Failed() {
		b, _ := json.MarshalIndent(trs, "", "  ")
		t.Logf("traces in Jaeger:\n%s", b)
	}
}
