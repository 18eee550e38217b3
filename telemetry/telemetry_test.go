package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/telemetry"
)

var (
	server    = telemetry.SendInfo{ServerAddress: "mx.example.com", ServerPort: 587}
	addr      = semconv.ServerAddress("mx.example.com")
	port      = semconv.ServerPort(587)
	ok220     = reply(220, "", classify.CmdConnect)
	ok250EHLO = reply(250, "", classify.CmdEHLO)
	ok250MAIL = reply(250, "2.1.0", classify.CmdMAIL)
	ok250RCPT = reply(250, "2.1.5", classify.CmdRCPT)
	go354     = reply(354, "", classify.CmdDATA)
	ok250END  = reply(250, "2.0.0", classify.CmdDataEnd)
)

// greet plays the replies up to MAIL.
func greet(a *telemetry.Attempt) {
	a.Reply(ok220, "mx.example.com ESMTP ready")
	a.Reply(ok250EHLO, "mx.example.com greets client.example.org")
	a.Reply(ok250MAIL, "2.1.0 Sender <noreply@example.org> OK")
}

// deliver plays DATA and the reply after the final dot.
func deliver(a *telemetry.Attempt) {
	a.Reply(go354, "End data with <CR><LF>.<CR><LF>")
	a.Reply(ok250END, "2.0.0 Ok: queued as 4F2A1")
}

func withRecipients(rcpts ...string) telemetry.SendInfo {
	info := server
	info.Recipients = rcpts
	return info
}

func TestSuccessFirstTry(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{})

	ctx, send := r.tel.StartSend(context.Background(), withRecipients("alice@example.com"))
	_, a := send.StartAttempt(ctx, 1)
	greet(a)
	a.Reply(ok250RCPT, "2.1.5 Recipient <alice@example.com> OK")
	a.Recipient("alice@example.com", ok250RCPT)
	deliver(a)
	a.End(telemetry.AttemptOutcome{Verdict: ok250END, Accepted: 1})
	send.End(telemetry.SendOutcome{Verdict: ok250END, Attempts: 1, Accepted: 1})

	checkSpans(t, r, `
		smtp.attempt client parent=smtp.send status=Unset
		  server.address="mx.example.com"
		  server.port=587
		  smtp.attempt=1
		  smtp.command="DATA-END"
		  smtp.recipients.accepted=1
		  smtp.recipients.deferred=0
		  smtp.recipients.rejected=0
		  smtp.reply.action="done"
		  smtp.reply.class="success"
		  smtp.reply.code=250
		  smtp.reply.description="Requested mail action okay, completed"
		  smtp.reply.enhanced_description="Other undefined Status"
		  smtp.reply.enhanced_status_code="2.0.0"
		smtp.send internal parent=none status=Unset
		  server.address="mx.example.com"
		  server.port=587
		  smtp.attempts=1
		  smtp.command="DATA-END"
		  smtp.recipients.accepted=1
		  smtp.recipients.count=1
		  smtp.recipients.deferred=0
		  smtp.recipients.rejected=0
		  smtp.reply.action="done"
		  smtp.reply.class="success"
		  smtp.reply.code=250
		  smtp.reply.description="Requested mail action okay, completed"
		  smtp.reply.enhanced_description="Other undefined Status"
		  smtp.reply.enhanced_status_code="2.0.0"
	`)

	success := telemetry.ReplyClassKey.String("success")
	checkMetrics(t, r,
		replies(
			point(1, addr, port, telemetry.ReplyCodeKey.Int(220), success, telemetry.CommandKey.String("CONNECT")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("EHLO")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("MAIL")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("RCPT")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(354), telemetry.ReplyClassKey.String("intermediate"), telemetry.CommandKey.String("DATA")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("DATA-END")),
		),
		attemptDuration(hpoint(1, addr, port)),
		sendDuration(hpoint(1, addr, port)),
		recipients(point(1, addr, port, telemetry.RecipientOutcomeKey.String("accepted"))),
	)
}

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{})
	greylisted := reply(451, "4.7.1", classify.CmdRCPT)
	errGreylisted := &classify.CommandError{Command: classify.CmdRCPT, Err: &textproto.Error{Code: 451, Msg: "4.7.1 Greylisted, try again in 5 minutes"}}

	ctx, send := r.tel.StartSend(context.Background(), withRecipients("alice@example.com"))
	_, a := send.StartAttempt(ctx, 1)
	greet(a)
	a.Reply(greylisted, "4.7.1 Greylisted, try again in 5 minutes")
	a.Recipient("alice@example.com", greylisted)
	a.End(telemetry.AttemptOutcome{Err: errGreylisted, Verdict: greylisted, Deferred: 1})
	send.Retry(1, greylisted, 5*time.Minute)

	_, a = send.StartAttempt(ctx, 2)
	greet(a)
	a.Reply(ok250RCPT, "2.1.5 OK")
	a.Recipient("alice@example.com", ok250RCPT)
	deliver(a)
	a.End(telemetry.AttemptOutcome{Verdict: ok250END, Accepted: 1})
	send.End(telemetry.SendOutcome{Verdict: ok250END, Attempts: 2, Accepted: 1})

	// The first attempt failed and says why; the send, which succeeded, has
	// no error status and no error.type: only a retry event.
	checkSpans(t, r, `
		smtp.attempt client parent=smtp.send status=Error "Requested action aborted: local error in processing"
		  error.type="greylisted"
		  server.address="mx.example.com"
		  server.port=587
		  smtp.attempt=1
		  smtp.command="RCPT"
		  smtp.recipients.accepted=0
		  smtp.recipients.deferred=1
		  smtp.recipients.rejected=0
		  smtp.reply.action="retry"
		  smtp.reply.class="transient"
		  smtp.reply.code=451
		  smtp.reply.description="Requested action aborted: local error in processing"
		  smtp.reply.enhanced_description="Delivery not authorized, message refused"
		  smtp.reply.enhanced_status_code="4.7.1"
		  smtp.reply.reason="greylisted"
		  event smtp.reply smtp.command="RCPT" smtp.reply.class="transient" smtp.reply.code=451 smtp.reply.enhanced_status_code="4.7.1"
		  event smtp.recipient smtp.command="RCPT" smtp.recipient.outcome="deferred" smtp.reply.class="transient" smtp.reply.code=451 smtp.reply.enhanced_status_code="4.7.1" smtp.reply.reason="greylisted"
		smtp.attempt client parent=smtp.send status=Unset
		  server.address="mx.example.com"
		  server.port=587
		  smtp.attempt=2
		  smtp.command="DATA-END"
		  smtp.recipients.accepted=1
		  smtp.recipients.deferred=0
		  smtp.recipients.rejected=0
		  smtp.reply.action="done"
		  smtp.reply.class="success"
		  smtp.reply.code=250
		  smtp.reply.description="Requested mail action okay, completed"
		  smtp.reply.enhanced_description="Other undefined Status"
		  smtp.reply.enhanced_status_code="2.0.0"
		smtp.send internal parent=none status=Unset
		  server.address="mx.example.com"
		  server.port=587
		  smtp.attempts=2
		  smtp.command="DATA-END"
		  smtp.recipients.accepted=1
		  smtp.recipients.count=1
		  smtp.recipients.deferred=0
		  smtp.recipients.rejected=0
		  smtp.reply.action="done"
		  smtp.reply.class="success"
		  smtp.reply.code=250
		  smtp.reply.description="Requested mail action okay, completed"
		  smtp.reply.enhanced_description="Other undefined Status"
		  smtp.reply.enhanced_status_code="2.0.0"
		  event smtp.retry smtp.attempt=1 smtp.command="RCPT" smtp.reply.class="transient" smtp.reply.code=451 smtp.reply.enhanced_status_code="4.7.1" smtp.reply.reason="greylisted" smtp.retry.delay=300(double)
	`)

	success := telemetry.ReplyClassKey.String("success")
	transient := telemetry.ReplyClassKey.String("transient")
	rcpt := telemetry.CommandKey.String("RCPT")
	checkMetrics(t, r,
		replies(
			point(2, addr, port, telemetry.ReplyCodeKey.Int(220), success, telemetry.CommandKey.String("CONNECT")),
			point(2, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("EHLO")),
			point(2, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("MAIL")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(451), transient, rcpt),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, rcpt),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(354), telemetry.ReplyClassKey.String("intermediate"), telemetry.CommandKey.String("DATA")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("DATA-END")),
		),
		retries(point(1, addr, port, telemetry.ReplyReasonKey.String("greylisted"), transient, rcpt)),
		attemptDuration(
			hpoint(1, addr, port, semconv.ErrorTypeKey.String("greylisted")),
			hpoint(1, addr, port),
		),
		sendDuration(hpoint(1, addr, port)),
		recipients(point(1, addr, port, telemetry.RecipientOutcomeKey.String("accepted"))),
	)
}

func TestPermanentFailure(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{})
	refused := reply(554, "5.7.1", classify.CmdDataEnd)
	errRefused := &classify.CommandError{Command: classify.CmdDataEnd, Err: &textproto.Error{Code: 554, Msg: "5.7.1 Message rejected as spam"}}

	ctx, send := r.tel.StartSend(context.Background(), withRecipients("alice@example.com"))
	_, a := send.StartAttempt(ctx, 1)
	greet(a)
	a.Reply(ok250RCPT, "2.1.5 OK")
	a.Recipient("alice@example.com", ok250RCPT)
	a.Reply(go354, "go ahead")
	a.Reply(refused, "5.7.1 Message rejected as spam")
	a.End(telemetry.AttemptOutcome{Err: errRefused, Verdict: refused, Rejected: 1})
	send.End(telemetry.SendOutcome{Err: errRefused, Verdict: refused, Attempts: 1, Rejected: 1})

	checkSpans(t, r, `
		smtp.attempt client parent=smtp.send status=Error "Transaction failed"
		  error.type="policy"
		  server.address="mx.example.com"
		  server.port=587
		  smtp.attempt=1
		  smtp.command="DATA-END"
		  smtp.recipients.accepted=0
		  smtp.recipients.deferred=0
		  smtp.recipients.rejected=1
		  smtp.reply.action="fail-message"
		  smtp.reply.class="permanent"
		  smtp.reply.code=554
		  smtp.reply.description="Transaction failed"
		  smtp.reply.enhanced_description="Delivery not authorized, message refused"
		  smtp.reply.enhanced_status_code="5.7.1"
		  smtp.reply.reason="policy"
		  event smtp.reply smtp.command="DATA-END" smtp.reply.class="permanent" smtp.reply.code=554 smtp.reply.enhanced_status_code="5.7.1"
		smtp.send internal parent=none status=Error "Transaction failed"
		  error.type="policy"
		  server.address="mx.example.com"
		  server.port=587
		  smtp.attempts=1
		  smtp.command="DATA-END"
		  smtp.recipients.accepted=0
		  smtp.recipients.count=1
		  smtp.recipients.deferred=0
		  smtp.recipients.rejected=1
		  smtp.reply.action="fail-message"
		  smtp.reply.class="permanent"
		  smtp.reply.code=554
		  smtp.reply.description="Transaction failed"
		  smtp.reply.enhanced_description="Delivery not authorized, message refused"
		  smtp.reply.enhanced_status_code="5.7.1"
		  smtp.reply.reason="policy"
	`)

	success := telemetry.ReplyClassKey.String("success")
	policy := semconv.ErrorTypeKey.String("policy")
	checkMetrics(t, r,
		replies(
			point(1, addr, port, telemetry.ReplyCodeKey.Int(220), success, telemetry.CommandKey.String("CONNECT")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("EHLO")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("MAIL")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("RCPT")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(354), telemetry.ReplyClassKey.String("intermediate"), telemetry.CommandKey.String("DATA")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(554), telemetry.ReplyClassKey.String("permanent"), telemetry.CommandKey.String("DATA-END")),
		),
		attemptDuration(hpoint(1, addr, port, policy)),
		sendDuration(hpoint(1, addr, port, policy)),
		recipients(point(1, addr, port, telemetry.RecipientOutcomeKey.String("rejected"))),
	)
}

// partialSend runs one attempt to three recipients: alice accepted, bob
// refused for good, carol refused for now. The message goes to alice; the
// send reports carol, who is still deferred when it gives up.
func partialSend(tel *telemetry.Telemetry) {
	bob := reply(550, "5.1.1", classify.CmdRCPT)
	carol := reply(450, "4.2.1", classify.CmdRCPT)
	ctx, send := tel.StartSend(context.Background(), withRecipients("alice@example.com", "bob@example.com", "carol@example.com"))
	_, a := send.StartAttempt(ctx, 1)
	greet(a)
	a.Reply(ok250RCPT, "2.1.5 <alice@example.com> OK")
	a.Recipient("alice@example.com", ok250RCPT)
	a.Reply(bob, "5.1.1 <bob@example.com>: Recipient address rejected: User unknown")
	a.Recipient("bob@example.com", bob)
	a.Reply(carol, "4.2.1 <carol@example.com>: Mailbox temporarily disabled")
	a.Recipient("carol@example.com", carol)
	deliver(a)
	a.End(telemetry.AttemptOutcome{Verdict: ok250END, Accepted: 1, Deferred: 1, Rejected: 1})
	send.End(telemetry.SendOutcome{
		Err:     errors.New("smtp RCPT: 450 4.2.1 <carol@example.com>: Mailbox temporarily disabled"),
		Verdict: carol, Attempts: 1, Accepted: 1, Deferred: 1, Rejected: 1,
	})
}

func TestPartialRecipients(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{})
	partialSend(r.tel)

	checkSpans(t, r, `
		smtp.attempt client parent=smtp.send status=Unset
		  server.address="mx.example.com"
		  server.port=587
		  smtp.attempt=1
		  smtp.command="DATA-END"
		  smtp.recipients.accepted=1
		  smtp.recipients.deferred=1
		  smtp.recipients.rejected=1
		  smtp.reply.action="done"
		  smtp.reply.class="success"
		  smtp.reply.code=250
		  smtp.reply.description="Requested mail action okay, completed"
		  smtp.reply.enhanced_description="Other undefined Status"
		  smtp.reply.enhanced_status_code="2.0.0"
		  event smtp.reply smtp.command="RCPT" smtp.reply.class="permanent" smtp.reply.code=550 smtp.reply.enhanced_status_code="5.1.1"
		  event smtp.recipient smtp.command="RCPT" smtp.recipient.outcome="rejected" smtp.reply.class="permanent" smtp.reply.code=550 smtp.reply.enhanced_status_code="5.1.1" smtp.reply.reason="bad-mailbox"
		  event smtp.reply smtp.command="RCPT" smtp.reply.class="transient" smtp.reply.code=450 smtp.reply.enhanced_status_code="4.2.1"
		  event smtp.recipient smtp.command="RCPT" smtp.recipient.outcome="deferred" smtp.reply.class="transient" smtp.reply.code=450 smtp.reply.enhanced_status_code="4.2.1" smtp.reply.reason="mailbox-unavailable"
		smtp.send internal parent=none status=Error "Requested mail action not taken: mailbox unavailable"
		  error.type="mailbox-unavailable"
		  server.address="mx.example.com"
		  server.port=587
		  smtp.attempts=1
		  smtp.command="RCPT"
		  smtp.recipients.accepted=1
		  smtp.recipients.count=3
		  smtp.recipients.deferred=1
		  smtp.recipients.rejected=1
		  smtp.reply.action="retry"
		  smtp.reply.class="transient"
		  smtp.reply.code=450
		  smtp.reply.description="Requested mail action not taken: mailbox unavailable"
		  smtp.reply.enhanced_description="Mailbox disabled, not accepting messages"
		  smtp.reply.enhanced_status_code="4.2.1"
		  smtp.reply.reason="mailbox-unavailable"
	`)

	success := telemetry.ReplyClassKey.String("success")
	rcpt := telemetry.CommandKey.String("RCPT")
	checkMetrics(t, r,
		replies(
			point(1, addr, port, telemetry.ReplyCodeKey.Int(220), success, telemetry.CommandKey.String("CONNECT")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("EHLO")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("MAIL")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, rcpt),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(550), telemetry.ReplyClassKey.String("permanent"), rcpt),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(450), telemetry.ReplyClassKey.String("transient"), rcpt),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(354), telemetry.ReplyClassKey.String("intermediate"), telemetry.CommandKey.String("DATA")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("DATA-END")),
		),
		attemptDuration(hpoint(1, addr, port)),
		sendDuration(hpoint(1, addr, port, semconv.ErrorTypeKey.String("mailbox-unavailable"))),
		recipients(
			point(1, addr, port, telemetry.RecipientOutcomeKey.String("accepted")),
			point(1, addr, port, telemetry.RecipientOutcomeKey.String("deferred")),
			point(1, addr, port, telemetry.RecipientOutcomeKey.String("rejected")),
		),
	)
}

func TestPartialRecipientsOptIn(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{RecordRecipients: true})
	partialSend(r.tel)

	spans := r.spans.Ended()
	var got []string
	for _, s := range spans {
		for _, kv := range s.Attributes() {
			if kv.Key == telemetry.RecipientsAddressesKey {
				got = append(got, s.Name()+" "+kvString(kv))
			}
		}
		for _, e := range s.Events() {
			for _, kv := range e.Attributes {
				if kv.Key == telemetry.RecipientAddressKey {
					got = append(got, s.Name()+" "+e.Name+" "+kvString(kv))
				}
			}
		}
	}
	want := []string{
		`smtp.attempt smtp.recipient smtp.recipient.address="alice@example.com"`,
		`smtp.attempt smtp.recipient smtp.recipient.address="bob@example.com"`,
		`smtp.attempt smtp.recipient smtp.recipient.address="carol@example.com"`,
		`smtp.send smtp.recipients.addresses=["alice@example.com" "bob@example.com" "carol@example.com"]`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("addresses recorded:\n%q\nwant:\n%q", got, want)
	}
	// Metrics never carry addresses, opted in or not.
	if s := fmt.Sprintf("%+v", r.collect(t)); strings.Contains(s, "@example.com") {
		t.Errorf("an address reached a metric: %s", s)
	}
}

func TestLostConnection(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{})
	errLost := &classify.CommandError{Command: classify.CmdRCPT, Err: io.EOF}
	lost := classify.Classify(errLost)

	ctx, send := r.tel.StartSend(context.Background(), withRecipients("alice@example.com"))
	_, a := send.StartAttempt(ctx, 1)
	greet(a)
	a.End(telemetry.AttemptOutcome{Err: errLost, Verdict: lost})
	send.End(telemetry.SendOutcome{Err: errLost, Verdict: lost, Attempts: 1, Deferred: 1})

	checkSpans(t, r, `
		smtp.attempt client parent=smtp.send status=Error "connection lost"
		  error.type="connection-lost"
		  server.address="mx.example.com"
		  server.port=587
		  smtp.attempt=1
		  smtp.command="RCPT"
		  smtp.recipients.accepted=0
		  smtp.recipients.deferred=0
		  smtp.recipients.rejected=0
		  smtp.reply.action="reconnect"
		  smtp.reply.class="transient"
		  smtp.reply.description="connection lost"
		  smtp.reply.reason="connection-lost"
		smtp.send internal parent=none status=Error "connection lost"
		  error.type="connection-lost"
		  server.address="mx.example.com"
		  server.port=587
		  smtp.attempts=1
		  smtp.command="RCPT"
		  smtp.recipients.accepted=0
		  smtp.recipients.count=1
		  smtp.recipients.deferred=1
		  smtp.recipients.rejected=0
		  smtp.reply.action="reconnect"
		  smtp.reply.class="transient"
		  smtp.reply.description="connection lost"
		  smtp.reply.reason="connection-lost"
	`)

	success := telemetry.ReplyClassKey.String("success")
	lostType := semconv.ErrorTypeKey.String("connection-lost")
	checkMetrics(t, r,
		replies(
			point(1, addr, port, telemetry.ReplyCodeKey.Int(220), success, telemetry.CommandKey.String("CONNECT")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("EHLO")),
			point(1, addr, port, telemetry.ReplyCodeKey.Int(250), success, telemetry.CommandKey.String("MAIL")),
		),
		attemptDuration(hpoint(1, addr, port, lostType)),
		sendDuration(hpoint(1, addr, port, lostType)),
		recipients(point(1, addr, port, telemetry.RecipientOutcomeKey.String("deferred"))),
	)
}

func TestLostAfterFinalDotIsAmbiguous(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{})
	errLost := &classify.CommandError{Command: classify.CmdDataEnd, Err: io.ErrUnexpectedEOF}
	lost := classify.Classify(errLost)

	ctx, send := r.tel.StartSend(context.Background(), server)
	_, a := send.StartAttempt(ctx, 1)
	a.End(telemetry.AttemptOutcome{Err: errLost, Verdict: lost})
	send.End(telemetry.SendOutcome{Err: errLost, Verdict: lost, Attempts: 1, Ambiguous: true})

	for _, s := range r.spans.Ended() {
		var ambiguous, errType string
		for _, kv := range s.Attributes() {
			switch kv.Key {
			case telemetry.AmbiguousKey:
				ambiguous = kv.Value.Emit()
			case semconv.ErrorTypeKey:
				errType = kv.Value.Emit()
			}
		}
		if ambiguous != "true" || errType != "connection-lost" {
			t.Errorf("%s: smtp.ambiguous=%q error.type=%q, want true and connection-lost", s.Name(), ambiguous, errType)
		}
	}
}

func TestParentFromContext(t *testing.T) {
	t.Parallel()
	// No TracerProvider: the send must use the provider of the span in its
	// context, and be that span's child.
	r := newRig(t, telemetry.Options{})
	tel := telemetry.New(telemetry.Options{MeterProvider: r.mp})

	ctx, parent := r.tp.Tracer("app").Start(context.Background(), "reset-password")
	sctx, send := tel.StartSend(ctx, server)
	actx, a := send.StartAttempt(context.Background(), 1) // the attempt hangs off the send whatever ctx holds
	a.End(telemetry.AttemptOutcome{Verdict: ok250END})
	send.End(telemetry.SendOutcome{Verdict: ok250END, Attempts: 1})
	parent.End()

	spans := r.spans.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans recorded, want 3:\n%s", len(spans), dump(spans))
	}
	attempt, sendSpan := spans[0], spans[1]
	if got, want := sendSpan.Parent().SpanID(), parent.SpanContext().SpanID(); got != want {
		t.Errorf("send span's parent %v, want the caller's span %v", got, want)
	}
	if got, want := attempt.Parent().SpanID(), sendSpan.SpanContext().SpanID(); got != want {
		t.Errorf("attempt span's parent %v, want the send span %v", got, want)
	}
	for _, s := range spans {
		if s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("%s is in trace %v, want the caller's %v", s.Name(), s.SpanContext().TraceID(), parent.SpanContext().TraceID())
		}
	}
	if got := trace.SpanFromContext(sctx).SpanContext(); !got.Equal(sendSpan.SpanContext()) {
		t.Errorf("StartSend's context holds %v, want the send span", got)
	}
	if got := trace.SpanFromContext(actx).SpanContext(); !got.Equal(attempt.SpanContext()) {
		t.Errorf("StartAttempt's context holds %v, want the attempt span", got)
	}
	if got := sendSpan.InstrumentationScope(); got.Name != telemetry.ScopeName || got.SchemaURL != semconv.SchemaURL {
		t.Errorf("scope %+v, want %s with schema %s", got, telemetry.ScopeName, semconv.SchemaURL)
	}
}

func TestMeasurementsLinkToSpans(t *testing.T) {
	t.Parallel()
	r := newRig(t, telemetry.Options{})
	ctx, send := r.tel.StartSend(context.Background(), server)
	_, a := send.StartAttempt(ctx, 1)
	a.End(telemetry.AttemptOutcome{Verdict: ok250END})
	send.End(telemetry.SendOutcome{Verdict: ok250END, Attempts: 1})

	spans := r.spans.Ended()
	want := map[string]trace.SpanID{
		telemetry.AttemptDurationMetric: spans[0].SpanContext().SpanID(),
		telemetry.SendDurationMetric:    spans[1].SpanContext().SpanID(),
	}
	for _, m := range r.collect(t).Metrics {
		id, ok := want[m.Name]
		if !ok {
			continue
		}
		ex := m.Data.(metricdata.Histogram[float64]).DataPoints[0].Exemplars
		if len(ex) != 1 || trace.SpanID(ex[0].SpanID) != id {
			t.Errorf("%s exemplars %+v, want one from span %v", m.Name, ex, id)
		}
	}
}
