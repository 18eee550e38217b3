package telemetry_test

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/telemetry"
)

// A send greylisted on its first attempt and accepted on the second, as a
// sender records it, and the spans a tracing backend receives.
func Example() {
	recorder := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	tel := telemetry.New(telemetry.Options{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider()})

	ctx, send := tel.StartSend(context.Background(), telemetry.SendInfo{
		ServerAddress: "smtp.example.com", ServerPort: 587, Recipients: []string{"alice@example.com"},
	})

	_, attempt := send.StartAttempt(ctx, 1)
	greylisted := classify.ClassifyReply(classify.Reply{
		Code: 451, Enhanced: "4.7.1", Text: "Greylisted, try again later", Command: classify.CmdRCPT,
	})
	attempt.Reply(greylisted, "4.7.1 Greylisted, try again later")
	attempt.End(telemetry.AttemptOutcome{Err: errors.New("451 4.7.1 greylisted"), Verdict: greylisted, Deferred: 1})
	send.Retry(1, greylisted, greylisted.RetryAfter)

	_, attempt = send.StartAttempt(ctx, 2)
	queued := classify.ClassifyReply(classify.Reply{Code: 250, Enhanced: "2.0.0", Command: classify.CmdDataEnd})
	attempt.Reply(queued, "2.0.0 Ok: queued as 4F2A1")
	attempt.End(telemetry.AttemptOutcome{Verdict: queued, Accepted: 1})
	send.End(telemetry.SendOutcome{Verdict: queued, Attempts: 2, Accepted: 1})

	show := []attribute.Key{"error.type", telemetry.AttemptKey, telemetry.AttemptsKey,
		telemetry.ReplyCodeKey, telemetry.ReplyDescriptionKey, telemetry.RetryDelayKey}
	printAttrs := func(indent string, attrs []attribute.KeyValue) {
		for _, k := range show {
			for _, kv := range attrs {
				if kv.Key == k {
					fmt.Printf("%s%s=%s\n", indent, k, kv.Value.Emit())
				}
			}
		}
	}
	for _, s := range recorder.Ended() {
		fmt.Println(s.Name(), s.SpanKind(), s.Status().Code)
		printAttrs("  ", s.Attributes())
		for _, e := range s.Events() {
			fmt.Println("  event", e.Name)
			printAttrs("    ", e.Attributes)
		}
	}
	// Output:
	// smtp.attempt client Error
	//   error.type=greylisted
	//   smtp.attempt=1
	//   smtp.reply.code=451
	//   smtp.reply.description=Requested action aborted: local error in processing
	//   event smtp.reply
	//     smtp.reply.code=451
	// smtp.attempt client Unset
	//   smtp.attempt=2
	//   smtp.reply.code=250
	//   smtp.reply.description=Requested mail action okay, completed
	// smtp.send internal Unset
	//   smtp.attempts=2
	//   smtp.reply.code=250
	//   smtp.reply.description=Requested mail action okay, completed
	//   event smtp.retry
	//     smtp.attempt=1
	//     smtp.reply.code=451
	//     smtp.retry.delay=300
}

// Telemetry off: a nil *Telemetry, or Noop, hands out nil *Send and
// *Attempt values whose methods do nothing, so a sender needs no checks.
func ExampleNoop() {
	tel := telemetry.Noop()
	ctx, send := tel.StartSend(context.Background(), telemetry.SendInfo{ServerAddress: "smtp.example.com"})
	_, attempt := send.StartAttempt(ctx, 1)
	attempt.End(telemetry.AttemptOutcome{})
	send.End(telemetry.SendOutcome{Attempts: 1})
	fmt.Println(send == nil, attempt == nil)
	// Output: true true
}
