// Command quickstart shows postwise on a server started in the same
// process: one message meets greylisting and then goes through, another is
// refused for one recipient and delivered to the other. It prints what
// happened and the spans, and needs nothing installed.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"log"
	"os"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/postwise/postwise/examples/internal/demo"
	"github.com/postwise/postwise/telemetry"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	// Spans are kept in memory and printed at the end.
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	defer tp.Shutdown(context.Background())

	srv, err := demo.Run(context.Background(), os.Stdout, telemetry.Options{TracerProvider: tp})
	if err != nil {
		return err
	}
	defer srv.Close()

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
	return out.ExportSpans(context.Background(), all.Snapshots())
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
