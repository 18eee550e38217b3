package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMETable fails when the README's reply-code table is not what
// codetable prints: run `go run ./internal/cmd/codetable` and paste it.
func TestREADMETable(t *testing.T) {
	var b strings.Builder
	if err := write(&b); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), b.String()) {
		t.Fatalf("README.md lacks the current reply-code table; run go run ./internal/cmd/codetable and paste:\n%s", b.String())
	}
}
