// Command quickstart shows postwise on a server started in the same
// process: one message meets greylisting and then goes through, another is
// refused for one recipient and delivered to the other. It prints what
// happened and the spans, and needs nothing installed.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/wneessen/go-mail"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
	"github.com/postwise/postwise/telemetry"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	// A local SMTP server that greylists the first try for carol, and does
	// not know mallory.
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "RCPT", Arg: "carol@", Times: 1,
			Do: sendertest.Reply(451, "4.7.1", "Greylisted, please try again in 2 seconds")},
		{Command: "RCPT", Arg: "mallory@",
			Do: sendertest.Reply(550, "5.1.1", "No such user here")},
	}})
	defer srv.Close()

	// Spans are kept in memory and printed at the end.
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())

	s, err := sender.New(sender.Options{
		Host: srv.Host(),
		Port: srv.Port(),
		// The test server speaks no TLS; a real relay gets go-mail's default,
		// mandatory STARTTLS, and credentials here.
		MailOptions: []mail.Option{mail.WithTLSPolicy(mail.NoTLS)},
		Retry: retry.Policy{
			OnRetry: func(_ context.Context, attempt int, v classify.Verdict, delay time.Duration) {
				fmt.Printf("  attempt %d: %d %s %s (%s): retrying in %v\n", attempt, v.Code, v.Enhanced, v.Description, v.Reason, delay.Round(time.Millisecond))
			},
		},
		Telemetry: telemetry.Options{TracerProvider: tp},
	})
	if err != nil {
		return err
	}
	defer s.Close()

	fmt.Println("1. A password reset for carol, whose server greylists first tries:")
	report(s.Send(context.Background(), message("carol@example.com")))

	fmt.Println("\n2. An alert for dave and mallory; mallory does not exist:")
	report(s.Send(context.Background(), message("dave@example.com", "mallory@example.com")))

	fmt.Printf("\nThe server received %d messages:\n", len(srv.Messages()))
	for _, m := range srv.Messages() {
		fmt.Printf("  to %v, Message-ID %s\n", m.To, m.MessageID)
	}

	tp.ForceFlush(context.Background())
	fmt.Println("\nThe spans, as a tracing backend would show them:")
	all := spans.GetSpans()
	for _, send := range all {
		if send.Name != telemetry.SendSpanName {
			continue
		}
		printSpan("  ", send)
		for _, attempt := range all {
			if attempt.Parent.SpanID() == send.SpanContext.SpanID() {
				printSpan("    ", attempt)
			}
		}
	}

	fmt.Println("\nThe same spans from OpenTelemetry's stdout exporter, one JSON object each:")
	out, err := stdouttrace.New(stdouttrace.WithWriter(os.Stdout))
	if err != nil {
		return err
	}
	return out.ExportSpans(context.Background(), spans.GetSpans().Snapshots())
}

// printSpan prints a span's name, status, the attributes that say what
// happened, and its retry events.
func printSpan(indent string, sp tracetest.SpanStub) {
	fmt.Printf("%s%s [%s]", indent, sp.Name, sp.Status.Code)
	for _, kv := range sp.Attributes {
		switch kv.Key {
		case telemetry.AttemptKey, telemetry.ReplyCodeKey, telemetry.CommandKey, telemetry.ReplyDescriptionKey, "error.type":
			fmt.Printf(" %s=%q", kv.Key, kv.Value.Emit())
		}
	}
	for _, ev := range sp.Events {
		if ev.Name == telemetry.RetryEvent {
			fmt.Print(" (event: retry)")
		}
	}
	fmt.Println()
}

func message(to ...string) *mail.Msg {
	m := mail.NewMsg()
	m.From("notifications@example.com")
	m.To(to...)
	m.Subject("Hello from postwise")
	m.SetBodyString(mail.TypeTextPlain, "This message was sent by examples/quickstart.")
	return m
}

func report(res *sender.Result, err error) {
	for _, r := range res.Recipients {
		fmt.Printf("  %-22s %-9s after %d attempt(s): %d %s %s\n", r.Address, r.Status, r.Attempt, r.Verdict.Code, r.Verdict.Enhanced, r.Verdict.Description)
	}
	switch {
	case err == nil:
		fmt.Println("  => delivered to everyone")
	case errors.Is(err, sender.ErrRecipientsRejected):
		fmt.Println("  => delivered to the others; refused recipients are reported, never retried:", err)
	default:
		fmt.Println("  => failed:", err)
	}
}
