// Command otlp makes the quickstart's sends and exports their spans over
// OTLP/HTTP to the collector named by the standard environment variables
// (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, e.g.
// http://127.0.0.1:4318), with the service name of OTEL_SERVICE_NAME
// (default "postwise-example"). It exits non-zero if the spans could not
// be delivered.
//
//	OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 go run ./examples/otlp
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/postwise/postwise/examples/internal/demo"
	"github.com/postwise/postwise/telemetry"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx := context.Background()
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return fmt.Errorf("set OTEL_EXPORTER_OTLP_ENDPOINT to your collector, e.g. http://127.0.0.1:4318")
	}
	exporter, err := otlptracehttp.New(ctx) // configured by the OTEL_EXPORTER_OTLP_* variables
	if err != nil {
		return err
	}
	service := os.Getenv("OTEL_SERVICE_NAME")
	if service == "" {
		service = "postwise-example"
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(service)))
	if err != nil {
		return err
	}
	checked := &checkedExporter{SpanExporter: exporter}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(checked), sdktrace.WithResource(res))
	otel.SetTracerProvider(tp) // the Sender uses the global provider by default

	srv, err := demo.Run(ctx, os.Stdout, telemetry.Options{})
	if err != nil {
		return err
	}
	srv.Close()

	// Shutdown flushes the batch; its error says whether the collector got it.
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := errors.Join(tp.Shutdown(sctx), checked.failure()); err != nil {
		return fmt.Errorf("exporting spans: %w", err)
	}
	fmt.Printf("\nSpans exported over OTLP for service %q.\n", service)
	return nil
}

// checkedExporter remembers export failures, which the batch processor
// would otherwise only hand to otel.Handle.
type checkedExporter struct {
	sdktrace.SpanExporter
	mu  sync.Mutex
	err error
}

func (e *checkedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err != nil {
		e.mu.Lock()
		e.err = err
		e.mu.Unlock()
	}
	return err
}

func (e *checkedExporter) failure() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}
