package telemetry

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/postwise/postwise/classify"
)

// SendInfo describes a send as it starts.
type SendInfo struct {
	// ServerAddress is the server's host name or IP address, as dialled
	// (server.address). Empty: not recorded.
	ServerAddress string
	// ServerPort is the server's port (server.port). 0: not recorded.
	ServerPort int
	// Recipients are the envelope recipients. Their number is recorded;
	// the addresses only with Options.RecordRecipients. The slice is not
	// kept.
	Recipients []string
}

// SendOutcome is how a send ended.
type SendOutcome struct {
	// Err is the error the send returned; nil when it succeeded. It decides
	// the span's status and is never recorded itself: its text can quote
	// the server and the recipients.
	Err error
	// Verdict is the verdict on the reply or error that decided the
	// outcome: its codes, class, reason and command go on the send span,
	// and its Reason becomes error.type when Err is not nil.
	Verdict classify.Verdict
	// Attempts is how many attempts were made.
	Attempts int
	// Accepted, Deferred and Rejected count the recipients by final
	// outcome. Deferred ones were still being refused for now when the
	// send gave up.
	Accepted, Deferred, Rejected int
	// Ambiguous is set when the server may have accepted the message
	// though the send could not tell (the connection failed after the final
	// dot of DATA). Verdict.Ambiguous sets it too.
	Ambiguous bool
}

// Send records one send: the smtp.send span, which covers all its attempts,
// and the send's metrics. Its methods are safe for concurrent use, and all of
// them do nothing on a nil *Send.
type Send struct {
	t      *Telemetry
	tracer trace.Tracer
	span   trace.Span
	// ctx holds only the span, so that measurements can link to the trace
	// (exemplars) without keeping the caller's context.
	ctx    context.Context
	srv    serverKey
	start  time.Time
	server []attribute.KeyValue // read-only after StartSend
	ended  atomic.Bool
}

// StartSend starts the smtp.send span (kind internal), a child of the span
// in ctx, and returns a context holding it. Pass that context, or one
// derived from it, to the send's work. It records server.address,
// server.port and smtp.recipients.count, and the addresses with
// Options.RecordRecipients.
//
// On a nil or no-op Telemetry it returns ctx and a nil *Send.
func (t *Telemetry) StartSend(ctx context.Context, info SendInfo) (context.Context, *Send) {
	if t == nil || !t.on {
		return ctx, nil
	}
	now := time.Now()
	s := &Send{t: t, tracer: t.tracerFor(ctx), start: now, srv: serverKey{info.ServerAddress, info.ServerPort}}
	if info.ServerAddress != "" {
		s.server = append(s.server, semconv.ServerAddress(info.ServerAddress))
	}
	if info.ServerPort != 0 {
		s.server = append(s.server, semconv.ServerPort(info.ServerPort))
	}
	attrs := make([]attribute.KeyValue, 0, len(s.server)+2)
	attrs = append(attrs, s.server...)
	attrs = append(attrs, RecipientsCountKey.Int(len(info.Recipients)))
	if t.recordRecipients && len(info.Recipients) > 0 {
		attrs = append(attrs, RecipientsAddressesKey.StringSlice(info.Recipients))
	}
	ctx, s.span = s.tracer.Start(ctx, SendSpanName,
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithTimestamp(now),
		trace.WithAttributes(attrs...),
	)
	s.ctx = trace.ContextWithSpan(context.Background(), s.span)
	return ctx, s
}

// Retry records that attempt (the 1-based number of the attempt that
// failed) will be retried after delay because of v: an smtp.retry event on
// the send span with the attempt, v's class, reason, code and command, and
// smtp.retry.delay in seconds; and one on the retries counter. The failed
// attempt's error stays on its own span: a retried error never marks the
// send span as failed.
func (s *Send) Retry(attempt int, v classify.Verdict, delay time.Duration) {
	if s == nil {
		return
	}
	if s.span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 7)
		attrs = append(attrs, AttemptKey.Int(attempt), ReplyClassKey.String(v.Class.String()))
		if v.Reason != "" {
			attrs = append(attrs, ReplyReasonKey.String(string(v.Reason)))
		}
		if v.Code != 0 {
			attrs = append(attrs, ReplyCodeKey.Int(v.Code))
		}
		if v.Enhanced != "" {
			attrs = append(attrs, ReplyEnhancedStatusCodeKey.String(v.Enhanced))
		}
		if v.Command != "" {
			attrs = append(attrs, CommandKey.String(v.Command))
		}
		attrs = append(attrs, RetryDelayKey.Float64(delay.Seconds()))
		s.span.AddEvent(RetryEvent, trace.WithAttributes(attrs...))
	}
	if s.t.retries.Enabled(s.ctx) {
		var buf [maxMetricAttrs]attribute.KeyValue
		m := append(buf[:0], s.server...)
		m = append(m, ReplyClassKey.String(v.Class.String()))
		if v.Reason != "" {
			m = append(m, ReplyReasonKey.String(string(v.Reason)))
		}
		if v.Command != "" {
			m = append(m, CommandKey.String(v.Command))
		}
		s.t.retries.Add(s.ctx, 1, metric.WithAttributeSet(attribute.NewSet(m...)))
	}
}

// End ends the send span with o and records the send's duration and its
// recipients by outcome. The span's status is Error, with error.type and the
// verdict's description, only when o.Err is not nil; otherwise it stays
// Unset, as instrumentation leaves it on success. Only the first call to End
// records; later ones do nothing.
func (s *Send) End(o SendOutcome) {
	if s == nil || !s.ended.CompareAndSwap(false, true) {
		return
	}
	now := time.Now()
	var et attribute.KeyValue
	if o.Err != nil {
		et = errorType(o.Err, o.Verdict)
	}
	if s.span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 14)
		attrs = append(attrs, AttemptsKey.Int(o.Attempts))
		attrs = countAttrs(attrs, o.Accepted, o.Deferred, o.Rejected)
		attrs = verdictAttrs(attrs, o.Verdict)
		if o.Ambiguous || o.Verdict.Ambiguous {
			attrs = append(attrs, AmbiguousKey.Bool(true))
		}
		if o.Err != nil {
			attrs = append(attrs, et)
			s.span.SetStatus(codes.Error, statusDescription(o.Verdict))
		}
		s.span.SetAttributes(attrs...)
	}
	s.span.End(trace.WithTimestamp(now))

	if s.t.sendDuration.Enabled(s.ctx) {
		var buf [maxMetricAttrs]attribute.KeyValue
		m := append(buf[:0], s.server...)
		if o.Err != nil {
			m = append(m, et)
		}
		s.t.sendDuration.Record(s.ctx, now.Sub(s.start).Seconds(), metric.WithAttributeSet(attribute.NewSet(m...)))
	}
	s.addRecipients(OutcomeAccepted, o.Accepted)
	s.addRecipients(OutcomeDeferred, o.Deferred)
	s.addRecipients(OutcomeRejected, o.Rejected)
}

func (s *Send) addRecipients(outcome string, n int) {
	if n <= 0 || !s.t.recipients.Enabled(s.ctx) {
		return
	}
	var buf [maxMetricAttrs]attribute.KeyValue
	m := append(buf[:0], s.server...)
	m = append(m, RecipientOutcomeKey.String(outcome))
	s.t.recipients.Add(s.ctx, int64(n), metric.WithAttributeSet(attribute.NewSet(m...)))
}

// maxMetricAttrs bounds the attributes of one measurement: the two server
// attributes and at most three more. Measurements build their attribute
// sets in arrays of this size, on the stack.
const maxMetricAttrs = 5

// statusDescription is the span status description of a failure: the
// meaning of the deciding reply from classify's tables. Never the error's
// text, which can quote the server and the recipients.
func statusDescription(v classify.Verdict) string {
	if v.Description != "" {
		return v.Description
	}
	return v.EnhancedDescription
}
