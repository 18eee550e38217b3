// Package integration tests postwise against software nobody here wrote:
// Mailpit, Postfix's smtp-sink, Toxiproxy and Jaeger, each started on a
// free loopback port by internal/testservers. The tests carry the
// integration build tag; scripts/test builds the servers and runs them:
//
//	./scripts/test
//	go test -race -tags integration ./integration/   # once the servers are built
//
// A server that is missing fails the suite; nothing is skipped.
package integration
