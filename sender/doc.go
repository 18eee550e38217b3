// Package sender sends mail through one SMTP server reliably and
// observably. It wraps github.com/wneessen/go-mail: go-mail composes the
// message, dials, negotiates TLS (mandatory STARTTLS by default) and
// authenticates; the Sender then drives each transaction itself (RFC 5321
// §3.3) so that every reply is seen and classified on its own:
//
//   - MAIL, one RCPT per recipient and DATA go out in one write when the
//     server offers PIPELINING (RFC 2920), else one at a time;
//   - recipients the server accepts get the message even when others are
//     refused; a recipient refused for now (4xx) is retried alone in a
//     later transaction, one refused for good (5xx) is reported and never
//     retried; a recipient limit (452, RFC 5321 §4.5.3.1.10) sends the rest
//     in a new transaction at once; nobody receives a message twice because
//     someone else was deferred;
//   - a permanent refusal of the message fails fast: one attempt, no wait;
//     transient ones retry per Options.Retry (package retry), on a new
//     connection after a 421 or a lost connection;
//   - a connection lost after the final dot leaves the message's fate
//     unknown (RFC 5321 §6.1): by default it is sent again with the same
//     Message-ID and Result.Ambiguous is set; Options.AtMostOnce reports it
//     instead.
//
// # Connections
//
// A Sender keeps up to Options.MaxConnections connections and reuses them.
// A healthy connection carries message after message with no NOOP before
// and no RSET after (go-mail sends both every time); RSET follows only a
// failed transaction, and NOOP checks only a connection idle for
// Options.CheckAfterIdle. Connections idle for Options.IdleTimeout, or
// that carried Options.MaxMessagesPerConnection messages, are closed with
// QUIT. A connection that failed is never reused.
//
// # Errors
//
// Send returns a *Result whenever the message was valid, and a *Error
// unless every recipient got the message. *Error unwraps to sentinels
// (ErrRecipientsRejected, ErrMessageRejected, ErrDeferred, ErrAmbiguous), to
// a *RecipientError per recipient not delivered, and to the retry
// package's *retry.Error (retry.ErrRetryAfterTooLong, context.Canceled, …).
// Invalid input fails with ErrInvalidMessage or ErrNoRecipients before any
// network traffic.
//
// # Telemetry
//
// Each Send is an smtp.send span with an smtp.attempt child per attempt,
// and feeds the metrics of package telemetry.
//
// # Concurrency
//
// A Sender is safe for concurrent use by many goroutines. Each connection
// is used by one goroutine at a time (go-mail's own client re-dials
// unsafely when shared). Close waits for the sends in flight.
package sender
