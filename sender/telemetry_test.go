package sender_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/wneessen/go-mail"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
	"github.com/postwise/postwise/telemetry"
)

// telRig records what the Sender's telemetry exports: spans in a span
// recorder, metrics in a manual reader.
type telRig struct {
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelRig(t *testing.T) *telRig {
	t.Helper()
	r := &telRig{spans: tracetest.NewSpanRecorder(), reader: sdkmetric.NewManualReader()}
	r.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(r.spans))
	r.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(r.reader))
	t.Cleanup(func() {
		_ = r.tp.Shutdown(context.Background())
		_ = r.mp.Shutdown(context.Background())
	})
	return r
}

// options opts in to everything, personal data included: the most that
// can ever be exported.
func (r *telRig) options() telemetry.Options {
	return telemetry.Options{TracerProvider: r.tp, MeterProvider: r.mp, RecordReplyText: true, RecordRecipients: true}
}

func (r *telRig) metrics(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

// sendSpans returns the ended smtp.send spans and, for each, its
// smtp.attempt spans in order.
func (r *telRig) sendSpans() (sends []sdktrace.ReadOnlySpan, attempts map[trace.SpanID][]sdktrace.ReadOnlySpan) {
	attempts = map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	for _, s := range r.spans.Ended() {
		switch s.Name() {
		case telemetry.SendSpanName:
			sends = append(sends, s)
		case telemetry.AttemptSpanName:
			p := s.Parent().SpanID()
			attempts[p] = append(attempts[p], s)
		}
	}
	for _, a := range attempts {
		slices.SortFunc(a, func(x, y sdktrace.ReadOnlySpan) int {
			return int(spanAttr(x.Attributes(), telemetry.AttemptKey).AsInt64() - spanAttr(y.Attributes(), telemetry.AttemptKey).AsInt64())
		})
	}
	return sends, attempts
}

// spanAttr returns the value of key among attrs; the zero Value (type
// INVALID) when absent.
func spanAttr(attrs []attribute.KeyValue, key attribute.Key) attribute.Value {
	for _, kv := range attrs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

// spanEvents returns the events of s named name.
func spanEvents(s sdktrace.ReadOnlySpan, name string) []sdktrace.Event {
	var out []sdktrace.Event
	for _, e := range s.Events() {
		if e.Name == name {
			out = append(out, e)
		}
	}
	return out
}

// describeSpan renders a span for failure messages.
func describeSpan(s sdktrace.ReadOnlySpan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) status %s %q\n", s.Name(), s.SpanKind(), s.Status().Code, s.Status().Description)
	attrs := slices.Clone(s.Attributes())
	slices.SortFunc(attrs, func(x, y attribute.KeyValue) int { return strings.Compare(string(x.Key), string(y.Key)) })
	for _, kv := range attrs {
		fmt.Fprintf(&b, "  %s=%s\n", kv.Key, kv.Value.Emit())
	}
	for _, e := range s.Events() {
		fmt.Fprintf(&b, "  event %s", e.Name)
		for _, kv := range e.Attributes {
			fmt.Fprintf(&b, " %s=%s", kv.Key, kv.Value.Emit())
		}
		b.WriteString("\n")
	}
	return b.String()
}

// exportedStrings collects every string the telemetry exported: span
// names, kinds, statuses, attributes, events, links, scopes and resources;
// metric names, descriptions, units, data point and exemplar attributes,
// scopes and the resource. A JSON rendering of each backs up the
// field-by-field walk, so that a field this walk forgets is still scanned.
func exportedStrings(t *testing.T, spans []sdktrace.ReadOnlySpan, rm metricdata.ResourceMetrics) []string {
	t.Helper()
	var out []string
	addAttrs := func(attrs ...attribute.KeyValue) {
		for _, kv := range attrs {
			out = append(out, string(kv.Key))
			if kv.Value.Type() == attribute.STRINGSLICE {
				out = append(out, kv.Value.AsStringSlice()...)
			} else {
				out = append(out, kv.Value.Emit())
			}
		}
	}
	addSet := func(s attribute.Set) { addAttrs(s.ToSlice()...) }
	addScope := func(s instrumentation.Scope) {
		out = append(out, s.Name, s.Version, s.SchemaURL)
		addSet(s.Attributes)
	}
	addResource := func(r *resource.Resource) {
		if r != nil {
			out = append(out, r.SchemaURL())
			addAttrs(r.Attributes()...)
		}
	}

	for _, s := range spans {
		out = append(out, s.Name(), s.SpanKind().String(), s.Status().Code.String(), s.Status().Description)
		addAttrs(s.Attributes()...)
		for _, e := range s.Events() {
			out = append(out, e.Name)
			addAttrs(e.Attributes...)
		}
		for _, l := range s.Links() {
			addAttrs(l.Attributes...)
		}
		addScope(s.InstrumentationScope())
		addResource(s.Resource())
	}
	stubs, err := json.Marshal(tracetest.SpanStubsFromReadOnlySpans(spans))
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(stubs))

	addResource(rm.Resource)
	for _, sm := range rm.ScopeMetrics {
		addScope(sm.Scope)
		for _, m := range sm.Metrics {
			out = append(out, m.Name, m.Description, m.Unit)
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, p := range d.DataPoints {
					addSet(p.Attributes)
					for _, e := range p.Exemplars {
						addAttrs(e.FilteredAttributes...)
					}
				}
			case metricdata.Sum[float64]:
				for _, p := range d.DataPoints {
					addSet(p.Attributes)
					for _, e := range p.Exemplars {
						addAttrs(e.FilteredAttributes...)
					}
				}
			case metricdata.Histogram[float64]:
				for _, p := range d.DataPoints {
					addSet(p.Attributes)
					for _, e := range p.Exemplars {
						addAttrs(e.FilteredAttributes...)
					}
				}
			case metricdata.Histogram[int64]:
				for _, p := range d.DataPoints {
					addSet(p.Attributes)
					for _, e := range p.Exemplars {
						addAttrs(e.FilteredAttributes...)
					}
				}
			default:
				t.Errorf("metric %s: aggregation %T not scanned", m.Name, m.Data)
			}
		}
	}
	dump, err := json.Marshal(rm)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, string(dump))
	return out
}

// errorTexts returns the text of err and of every error it wraps.
func errorTexts(err error) []string {
	if err == nil {
		return nil
	}
	out := []string{err.Error(), fmt.Sprintf("%+v", err)}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		out = append(out, errorTexts(u.Unwrap())...)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, errorTexts(e)...)
		}
	}
	return out
}

// credentialForms returns what a credential can look like on the wire or in
// a log: in clear (the username too: it names the account to attack), as
// the PLAIN initial response (RFC 4616: authzid NUL authcid NUL passwd,
// with an empty authzid as go-mail sends it), as the LOGIN responses (each
// base64 on its own), and as a "user:password" pair.
func credentialForms(user, pass string) map[string]string {
	b64 := base64.StdEncoding.EncodeToString
	plain := "\x00" + user + "\x00" + pass
	return map[string]string{
		"password":                   pass,
		"username":                   user,
		"user NUL password":          user + "\x00" + pass,
		"user:password":              user + ":" + pass,
		"PLAIN response":             plain,
		"PLAIN response, base64":     b64([]byte(plain)),
		"LOGIN username, base64":     b64([]byte(user)),
		"LOGIN password, base64":     b64([]byte(pass)),
		"password, base64 unpadded":  base64.RawStdEncoding.EncodeToString([]byte(pass)),
		"PLAIN response, URL base64": base64.URLEncoding.EncodeToString([]byte(plain)),
	}
}

// scanForCredentials reports each form found in any of haystack, also as JSON escapes
// it (a NUL becomes \u0000 in a JSON dump).
func scanForCredentials(t *testing.T, what string, haystack []string, forms map[string]string) {
	t.Helper()
	for name, form := range forms {
		escaped, _ := json.Marshal(form)
		needles := []string{form, strings.Trim(string(escaped), `"`)}
		for _, h := range haystack {
			for _, n := range needles {
				if strings.Contains(h, n) {
					t.Errorf("%s: %s %q found in %q", what, name, form, h)
				}
			}
		}
	}
}

// TestNoCredentialReachesTelemetry authenticates for real, with PLAIN and
// with LOGIN, once with a wrong password (535) and once with the right one
// (a send retried after a 451, then one straight through), with every
// opt-in switch on, and scans all the spans and metrics exported, and what
// Send returned, for every form of the credentials.
func TestNoCredentialReachesTelemetry(t *testing.T) {
	const (
		authUser      = "relay-account-7f3a@example.net"
		authPassword  = "c0rrect-Horse-Battery-Staple-91"
		wrongPassword = "Tr0ub4dor&3-not-the-one-42"
	)
	for _, mech := range []mail.SMTPAuthType{mail.SMTPAuthPlain, mail.SMTPAuthLogin} {
		t.Run(string(mech), func(t *testing.T) {
			ctx := context.Background()
			srv := sendertest.NewServer(sendertest.Options{Username: authUser, Password: authPassword, Rules: []sendertest.Rule{
				// The authenticated sender's first RCPT: a retried send.
				{Command: "RCPT", Times: 1, Do: sendertest.Reply(451, "4.3.0", "Try again later")},
			}})
			defer srv.Close()
			rig := newTelRig(t)
			// TLS off: go-mail's PLAIN and LOGIN send credentials in clear
			// to 127.0.0.1, and sendertest offers AUTH without TLS.
			auth := func(pw string) []mail.Option {
				return []mail.Option{mail.WithTLSPolicy(mail.NoTLS), mail.WithSMTPAuth(mech), mail.WithUsername(authUser), mail.WithPassword(pw)}
			}
			var outputs []string

			// A wrong password: 535 at AUTH, refused for good.
			bad, _ := newSender(t, srv, sender.Options{Telemetry: rig.options()}, auth(wrongPassword)...)
			res, err := bad.Send(ctx, newMsg(t, "bob@example.com"))
			var se *sender.Error
			if !errors.As(err, &se) || !errors.Is(err, sender.ErrMessageRejected) || se.Verdict.Reason != classify.ReasonAuthFailed || se.Verdict.Code != 535 {
				t.Fatalf("wrong password: err = %v, want 535 auth-failed, message rejected", err)
			}
			outputs = append(outputs, errorTexts(err)...)
			outputs = append(outputs, fmt.Sprintf("%+v", *res))

			// The right password: one send retried after a 451 at RCPT,
			// one straight through.
			good, _ := newSender(t, srv, sender.Options{Telemetry: rig.options()}, auth(authPassword)...)
			for i, wantAttempts := range []int{2, 1} {
				res, err := good.Send(ctx, newMsg(t, "bob@example.com", "carol@example.com"))
				if err != nil {
					t.Fatalf("send %d: %v", i+1, err)
				}
				if res.Attempts != wantAttempts {
					t.Errorf("send %d: %d attempts, want %d", i+1, res.Attempts, wantAttempts)
				}
				outputs = append(outputs, fmt.Sprintf("%+v", *res))
			}
			bad.Close()
			good.Close()

			// The exchanges were real: the server saw the mechanism's AUTH
			// lines, and it refuses MAIL (530) until AUTH succeeds.
			var authLines int
			for _, c := range srv.Commands() {
				if c.Verb == "AUTH" {
					authLines++
					if !strings.HasPrefix(c.Line, "AUTH "+string(mech)) {
						t.Errorf("AUTH line %q, want mechanism %s", c.Line, mech)
					}
				}
			}
			// Three copies: carol's in the first attempt of the retried
			// send, bob's in its second, both in the last send.
			if authLines < 2 || len(srv.Messages()) != 3 {
				t.Fatalf("%d AUTH commands, %d messages stored; want at least 2 and 3", authLines, len(srv.Messages()))
			}

			spans := rig.spans.Ended()
			rm := rig.metrics(t)
			forms := credentialForms(authUser, authPassword)
			for name, form := range credentialForms(authUser, wrongPassword) {
				forms["wrong "+name] = form
			}
			scanForCredentials(t, "telemetry", exportedStrings(t, spans, rm), forms)
			scanForCredentials(t, "Send's results and errors", outputs, forms)

			// The scan is not vacuous: the spans hold the replies, their
			// text included, the refusal of AUTH among them.
			sends, attempts := rig.sendSpans()
			if len(sends) != 3 {
				t.Fatalf("%d send spans, want 3", len(sends))
			}
			var authFailed, retried, replyTexts bool
			for _, s := range sends {
				as := attempts[s.SpanContext().SpanID()]
				if len(spanEvents(s, telemetry.RetryEvent)) == 1 && len(as) == 2 {
					retried = true
				}
				for _, a := range as {
					if a.Status().Code == codes.Error && spanAttr(a.Attributes(), semconv.ErrorTypeKey).AsString() == string(classify.ReasonAuthFailed) {
						for _, e := range spanEvents(a, telemetry.ReplyEvent) {
							if spanAttr(e.Attributes, telemetry.ReplyCodeKey).AsInt64() == 535 && spanAttr(e.Attributes, telemetry.CommandKey).AsString() == classify.CmdAUTH {
								authFailed = true
							}
						}
					}
					for _, e := range spanEvents(a, telemetry.ReplyEvent) {
						if spanAttr(e.Attributes, telemetry.ReplyTextKey).AsString() != "" {
							replyTexts = true
						}
					}
				}
			}
			if !authFailed || !retried || !replyTexts {
				var all strings.Builder
				for _, s := range spans {
					all.WriteString(describeSpan(s))
				}
				t.Errorf("auth refusal recorded %v, retry recorded %v, reply texts recorded %v; spans:\n%s", authFailed, retried, replyTexts, all.String())
			}
			var replyMetric bool
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == telemetry.RepliesMetric {
						for _, p := range d.DataPoints {
							if v, _ := p.Attributes.Value(telemetry.ReplyCodeKey); v.AsInt64() == 535 {
								replyMetric = true
							}
						}
					}
				}
			}
			if !replyMetric {
				t.Errorf("no %s data point with code 535", telemetry.RepliesMetric)
			}
		})
	}
}

// spanWant is what a span must show: its status, error.type ("" for
// absent) and a subset of its attributes.
type spanWant struct {
	status  codes.Code
	errType string
	attrs   []attribute.KeyValue
}

func (w spanWant) check(t *testing.T, what string, s sdktrace.ReadOnlySpan) {
	t.Helper()
	bad := s.Status().Code != w.status || spanAttr(s.Attributes(), semconv.ErrorTypeKey).AsString() != w.errType
	if w.status == codes.Error && s.Status().Description == "" {
		bad = true // the meaning of the reply, from classify's tables
	}
	for _, kv := range w.attrs {
		if got := spanAttr(s.Attributes(), kv.Key); got != kv.Value {
			bad = true
		}
	}
	if bad {
		var want strings.Builder
		for _, kv := range w.attrs {
			fmt.Fprintf(&want, " %s=%s", kv.Key, kv.Value.Emit())
		}
		t.Errorf("%s span:\n%swant status %s, error.type %q,%s", what, describeSpan(s), w.status, w.errType, want.String())
	}
}

// TestSendSpans runs real sends against sendertest and checks the shape of
// what they export: one smtp.send span, an smtp.attempt span per attempt
// under it, statuses per the recording-errors guidance, and the deciding
// reply's attributes.
func TestSendSpans(t *testing.T) {
	counts := func(accepted, deferred, rejected int) []attribute.KeyValue {
		return []attribute.KeyValue{
			telemetry.RecipientsAcceptedKey.Int(accepted),
			telemetry.RecipientsDeferredKey.Int(deferred),
			telemetry.RecipientsRejectedKey.Int(rejected),
		}
	}
	with := func(a []attribute.KeyValue, more ...attribute.KeyValue) []attribute.KeyValue {
		return append(slices.Clone(a), more...)
	}
	// deliveredAt adds the deciding reply of a delivery: 250 to the final
	// dot. The send span of a successful send lacks it (the Sender passes
	// telemetry a zero verdict on success), so only attempts are checked
	// for it; see sendOK.
	deliveredAt := func(a []attribute.KeyValue) []attribute.KeyValue {
		return with(a, telemetry.ReplyCodeKey.Int(250), telemetry.CommandKey.String(classify.CmdDataEnd),
			telemetry.ReplyClassKey.String(classify.Success.String()))
	}
	sendOK := func(a []attribute.KeyValue) []attribute.KeyValue { return a }

	tests := []struct {
		name     string
		rules    []sendertest.Rule
		to       []string
		send     spanWant
		attempts []spanWant
		retries  []attribute.KeyValue // the smtp.retry event's attributes, if one is expected
		conns    int
	}{{
		name: "success",
		to:   []string{"bob@example.com"},
		send: spanWant{status: codes.Unset, attrs: sendOK(with(counts(1, 0, 0),
			telemetry.AttemptsKey.Int(1), telemetry.RecipientsCountKey.Int(1)))},
		attempts: []spanWant{{status: codes.Unset, attrs: deliveredAt(counts(1, 0, 0))}},
		conns:    1,
	}, {
		name:  "retry then success",
		rules: []sendertest.Rule{{Command: "RCPT", Times: 1, Do: sendertest.Reply(451, "4.3.0", "Try again later")}},
		to:    []string{"bob@example.com"},
		send:  spanWant{status: codes.Unset, attrs: sendOK(with(counts(1, 0, 0), telemetry.AttemptsKey.Int(2)))},
		attempts: []spanWant{
			{status: codes.Error, errType: string(classify.ReasonLocalError), attrs: with(counts(0, 1, 0),
				telemetry.ReplyCodeKey.Int(451), telemetry.ReplyEnhancedStatusCodeKey.String("4.3.0"),
				telemetry.CommandKey.String(classify.CmdRCPT), telemetry.ReplyClassKey.String(classify.Transient.String()))},
			{status: codes.Unset, attrs: deliveredAt(counts(1, 0, 0))},
		},
		retries: []attribute.KeyValue{telemetry.AttemptKey.Int(1), telemetry.ReplyCodeKey.Int(451),
			telemetry.ReplyReasonKey.String(string(classify.ReasonLocalError)), telemetry.CommandKey.String(classify.CmdRCPT)},
		conns: 1, // a refused RCPT leaves the connection usable: RSET, then the retry on it
	}, {
		name:  "permanent failure",
		rules: []sendertest.Rule{{Command: "MAIL", Do: sendertest.Reply(550, "5.7.1", "Refused by policy")}},
		to:    []string{"bob@example.com"},
		send: spanWant{status: codes.Error, errType: string(classify.ReasonPolicy), attrs: with(counts(0, 0, 1),
			telemetry.AttemptsKey.Int(1), telemetry.ReplyCodeKey.Int(550), telemetry.CommandKey.String(classify.CmdMAIL),
			telemetry.ReplyClassKey.String(classify.Permanent.String()))},
		attempts: []spanWant{{status: codes.Error, errType: string(classify.ReasonPolicy), attrs: []attribute.KeyValue{
			telemetry.ReplyCodeKey.Int(550), telemetry.CommandKey.String(classify.CmdMAIL)}}},
		conns: 1,
	}, {
		name:  "partial recipients",
		rules: []sendertest.Rule{{Command: "RCPT", Arg: "nobody@", Do: sendertest.Reply(550, "5.1.1", "No such user")}},
		to:    []string{"bob@example.com", "nobody@example.com"},
		// The send failed for one recipient: an error, decided by the
		// refusal, though the message went to the other.
		send: spanWant{status: codes.Error, errType: string(classify.ReasonBadMailbox), attrs: with(counts(1, 0, 1),
			telemetry.AttemptsKey.Int(1), telemetry.RecipientsCountKey.Int(2))},
		// The attempt decided every recipient; nothing in it failed.
		attempts: []spanWant{{status: codes.Unset, attrs: deliveredAt(counts(1, 0, 1))}},
		conns:    1,
	}, {
		name:  "lost connection",
		rules: []sendertest.Rule{{Command: "MAIL", Times: 1, Do: sendertest.Drop()}},
		to:    []string{"bob@example.com"},
		send:  spanWant{status: codes.Unset, attrs: sendOK(with(counts(1, 0, 0), telemetry.AttemptsKey.Int(2)))},
		attempts: []spanWant{
			{status: codes.Error, errType: string(classify.ReasonConnectionLost), attrs: with(counts(0, 0, 0),
				telemetry.CommandKey.String(classify.CmdMAIL), telemetry.ReplyActionKey.String(classify.Reconnect.String()))},
			{status: codes.Unset, attrs: deliveredAt(counts(1, 0, 0))},
		},
		retries: []attribute.KeyValue{telemetry.AttemptKey.Int(1),
			telemetry.ReplyReasonKey.String(string(classify.ReasonConnectionLost)), telemetry.CommandKey.String(classify.CmdMAIL)},
		conns: 2,
	}}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := sendertest.NewServer(sendertest.Options{Rules: tt.rules})
			defer srv.Close()
			rig := newTelRig(t)
			s, _ := newSender(t, srv, sender.Options{Telemetry: telemetry.Options{TracerProvider: rig.tp, MeterProvider: rig.mp}})
			res, err := s.Send(context.Background(), newMsg(t, tt.to...))
			if res == nil {
				t.Fatalf("no Result: %v", err)
			}

			sends, attempts := rig.sendSpans()
			if len(sends) != 1 {
				t.Fatalf("%d send spans, want 1", len(sends))
			}
			send := sends[0]
			if send.SpanKind() != trace.SpanKindInternal || send.Parent().IsValid() {
				t.Errorf("send span kind %s, parent %v; want internal, a root", send.SpanKind(), send.Parent())
			}
			tt.send.check(t, "send", send)
			if (tt.send.status == codes.Error) != (err != nil) {
				t.Errorf("send span status %s, Send returned %v", send.Status().Code, err)
			}
			for _, key := range []attribute.Key{semconv.ServerAddressKey, semconv.ServerPortKey} {
				if spanAttr(send.Attributes(), key).Type() == attribute.INVALID {
					t.Errorf("send span has no %s", key)
				}
			}

			as := attempts[send.SpanContext().SpanID()]
			if len(as) != len(tt.attempts) || res.Attempts != len(tt.attempts) {
				t.Fatalf("%d attempt spans, %d attempts; want %d", len(as), res.Attempts, len(tt.attempts))
			}
			for i, a := range as {
				if a.SpanKind() != trace.SpanKindClient || a.SpanContext().TraceID() != send.SpanContext().TraceID() {
					t.Errorf("attempt %d: kind %s, trace %s; want client, in the send's trace", i+1, a.SpanKind(), a.SpanContext().TraceID())
				}
				if n := spanAttr(a.Attributes(), telemetry.AttemptKey).AsInt64(); n != int64(i+1) {
					t.Errorf("attempt %d: %s = %d", i+1, telemetry.AttemptKey, n)
				}
				tt.attempts[i].check(t, fmt.Sprintf("attempt %d", i+1), a)
			}

			// Retries show on the send span, as events, never as its status.
			retries := spanEvents(send, telemetry.RetryEvent)
			if want := min(len(tt.retries), 1); len(retries) != want {
				t.Errorf("%d %s events, want %d", len(retries), telemetry.RetryEvent, want)
			}
			for _, e := range retries {
				for _, kv := range tt.retries {
					if got := spanAttr(e.Attributes, kv.Key); got != kv.Value {
						t.Errorf("%s event: %s = %s, want %s", telemetry.RetryEvent, kv.Key, got.Emit(), kv.Value.Emit())
					}
				}
				if spanAttr(e.Attributes, telemetry.RetryDelayKey).Type() != attribute.FLOAT64 {
					t.Errorf("%s event without %s", telemetry.RetryEvent, telemetry.RetryDelayKey)
				}
			}
			// Off by default: no reply text, no address.
			for _, sp := range rig.spans.Ended() {
				for _, e := range sp.Events() {
					for _, key := range []attribute.Key{telemetry.ReplyTextKey, telemetry.RecipientAddressKey} {
						if spanAttr(e.Attributes, key).Type() != attribute.INVALID {
							t.Errorf("%s event carries %s without opting in", e.Name, key)
						}
					}
				}
				if spanAttr(sp.Attributes(), telemetry.RecipientsAddressesKey).Type() != attribute.INVALID {
					t.Errorf("%s span carries addresses without opting in", sp.Name())
				}
			}

			// The retries counter agrees with the events.
			var counted int64
			for _, sm := range rig.metrics(t).ScopeMetrics {
				for _, m := range sm.Metrics {
					if d, ok := m.Data.(metricdata.Sum[int64]); ok && m.Name == telemetry.RetriesMetric {
						for _, p := range d.DataPoints {
							counted += p.Value
						}
					}
				}
			}
			if counted != int64(len(retries)) {
				t.Errorf("%s counted %d, want %d", telemetry.RetriesMetric, counted, len(retries))
			}
			if srv.Connections() != tt.conns {
				t.Errorf("%d connections, want %d", srv.Connections(), tt.conns)
			}
		})
	}
}

// TestSendSpanIsChildOfCallerSpan: a send started under a caller's span is
// part of the caller's trace.
func TestSendSpanIsChildOfCallerSpan(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()
	rig := newTelRig(t)
	s, _ := newSender(t, srv, sender.Options{Telemetry: telemetry.Options{TracerProvider: rig.tp, MeterProvider: rig.mp}})

	ctx, caller := rig.tp.Tracer("caller").Start(context.Background(), "notify user")
	if _, err := s.Send(ctx, newMsg(t, "bob@example.com")); err != nil {
		t.Fatal(err)
	}
	caller.End()

	sends, attempts := rig.sendSpans()
	if len(sends) != 1 {
		t.Fatalf("%d send spans, want 1", len(sends))
	}
	send, parent := sends[0], caller.SpanContext()
	if send.Parent().SpanID() != parent.SpanID() || send.SpanContext().TraceID() != parent.TraceID() {
		t.Errorf("send span: parent %s in trace %s, want the caller's span %s in trace %s",
			send.Parent().SpanID(), send.SpanContext().TraceID(), parent.SpanID(), parent.TraceID())
	}
	as := attempts[send.SpanContext().SpanID()]
	if len(as) != 1 || as[0].SpanContext().TraceID() != parent.TraceID() {
		t.Errorf("attempt spans under the send span: %d, want 1 in the caller's trace", len(as))
	}
}
