package telemetry

import (
	"context"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/postwise/postwise/classify"
)

// AttemptOutcome is how one attempt ended.
type AttemptOutcome struct {
	// Err is the error that ended the attempt; nil when it succeeded. It
	// decides the span's status and is never recorded itself.
	Err error
	// Verdict is the verdict on the reply or error that decided the
	// attempt: its codes, descriptions, class, action, reason and command
	// go on the attempt span.
	Verdict classify.Verdict
	// Accepted, Deferred and Rejected count the recipients by their
	// outcome in this attempt.
	Accepted, Deferred, Rejected int
}

// Attempt records one attempt of a send: one SMTP conversation, the
// smtp.attempt span. Its methods are safe for concurrent use, and all of them
// do nothing on a nil *Attempt.
type Attempt struct {
	s     *Send
	span  trace.Span
	ctx   context.Context // holds only the span, for exemplars
	start time.Time
	ended atomic.Bool
}

// StartAttempt starts the smtp.attempt span (kind client) for the 1-based
// attempt, with server.address, server.port and smtp.attempt. The span is
// always a child of the send span, whatever span ctx holds; ctx gives the
// deadline and values. The returned context holds the attempt span.
//
// On a nil *Send it returns ctx and a nil *Attempt.
func (s *Send) StartAttempt(ctx context.Context, attempt int) (context.Context, *Attempt) {
	if s == nil {
		return ctx, nil
	}
	now := time.Now()
	attrs := make([]attribute.KeyValue, 0, len(s.server)+1)
	attrs = append(attrs, s.server...)
	attrs = append(attrs, AttemptKey.Int(attempt))
	a := &Attempt{s: s, start: now}
	ctx, a.span = s.tracer.Start(trace.ContextWithSpan(ctx, s.span), AttemptSpanName,
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithTimestamp(now),
		trace.WithAttributes(attrs...),
	)
	a.ctx = trace.ContextWithSpan(context.Background(), a.span)
	return ctx, a
}

// Reply records one reply the client read (the greeting, EHLO, MAIL, each
// RCPT, DATA, the reply after the final dot, …), v being its verdict and
// text its text: one on the replies counter, by code, class and command;
// and, for a reply that is not a success (2xx) or an intermediate (3xx),
// an smtp.reply event with the code, enhanced code, class and command, and
// the text only with Options.RecordReplyText. Routine successes get no
// event: a span event costs more than the rest of the instrumentation of a
// send, the counter has them, and the deciding reply is on the span. So the
// text of an AUTH challenge (334), which for SCRAM carries the salt of the
// user's password, is never recorded. Pass only what the server said,
// never what the client sent: client lines carry credentials.
func (a *Attempt) Reply(v classify.Verdict, text string) {
	if a == nil {
		return
	}
	if a.span.IsRecording() && v.Class != classify.Success && v.Class != classify.Intermediate {
		attrs := make([]attribute.KeyValue, 0, 5)
		if v.Code != 0 {
			attrs = append(attrs, ReplyCodeKey.Int(v.Code))
		}
		if v.Enhanced != "" {
			attrs = append(attrs, ReplyEnhancedStatusCodeKey.String(v.Enhanced))
		}
		attrs = append(attrs, ReplyClassKey.String(v.Class.String()))
		if v.Command != "" {
			attrs = append(attrs, CommandKey.String(v.Command))
		}
		if a.s.t.recordReplyText && text != "" {
			attrs = append(attrs, ReplyTextKey.String(text))
		}
		a.span.AddEvent(ReplyEvent, trace.WithAttributes(attrs...))
	}
	if a.s.t.replies.Enabled(a.ctx) {
		a.s.t.replies.Add(a.ctx, 1, metric.WithAttributeSet(a.s.t.replySet(a.s.srv, v)))
	}
}

// Recipient records the outcome of one recipient in this attempt as an
// smtp.recipient event: smtp.recipient.outcome (see RecipientOutcome), the
// verdict's code, enhanced code, class, reason and command, and the address
// only with Options.RecordRecipients. A recipient that was accepted gets
// an event only with RecordRecipients: without its address it says
// nothing the span's smtp.recipients.accepted does not. It adds to no
// metric: the recipients counter counts final outcomes, at Send.End.
func (a *Attempt) Recipient(addr string, v classify.Verdict) {
	if a == nil || !a.span.IsRecording() {
		return
	}
	if v.Class == classify.Success && !a.s.t.recordRecipients {
		return
	}
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(attrs, RecipientOutcomeKey.String(RecipientOutcome(v)))
	if v.Code != 0 {
		attrs = append(attrs, ReplyCodeKey.Int(v.Code))
	}
	if v.Enhanced != "" {
		attrs = append(attrs, ReplyEnhancedStatusCodeKey.String(v.Enhanced))
	}
	attrs = append(attrs, ReplyClassKey.String(v.Class.String()))
	if v.Reason != "" {
		attrs = append(attrs, ReplyReasonKey.String(string(v.Reason)))
	}
	if v.Command != "" {
		attrs = append(attrs, CommandKey.String(v.Command))
	}
	if a.s.t.recordRecipients {
		attrs = append(attrs, RecipientAddressKey.String(addr))
	}
	a.span.AddEvent(RecipientEvent, trace.WithAttributes(attrs...))
}

// End ends the attempt span with o and records the attempt's duration. The
// deciding verdict's attributes and the recipient counts go on the span. An
// attempt that failed (o.Err not nil) is an error, whether or not the send
// retries it: status Error with the verdict's description, and error.type
// (the verdict's reason, else its code, else the error's type). Only the
// first call to End records; later ones do nothing.
func (a *Attempt) End(o AttemptOutcome) {
	if a == nil || !a.ended.CompareAndSwap(false, true) {
		return
	}
	now := time.Now()
	var et attribute.KeyValue
	if o.Err != nil {
		et = errorType(o.Err, o.Verdict)
	}
	if a.span.IsRecording() {
		attrs := make([]attribute.KeyValue, 0, 13)
		attrs = countAttrs(attrs, o.Accepted, o.Deferred, o.Rejected)
		attrs = verdictAttrs(attrs, o.Verdict)
		if o.Verdict.Ambiguous {
			attrs = append(attrs, AmbiguousKey.Bool(true))
		}
		if o.Err != nil {
			attrs = append(attrs, et)
			a.span.SetStatus(codes.Error, statusDescription(o.Verdict))
		}
		a.span.SetAttributes(attrs...)
	}
	a.span.End(trace.WithTimestamp(now))

	if a.s.t.attemptDuration.Enabled(a.ctx) {
		var buf [maxMetricAttrs]attribute.KeyValue
		m := append(buf[:0], a.s.server...)
		if o.Err != nil {
			m = append(m, et)
		}
		a.s.t.attemptDuration.Record(a.ctx, now.Sub(a.start).Seconds(), metric.WithAttributeSet(attribute.NewSet(m...)))
	}
}
