// Package classify turns what an SMTP server said, or any error a send
// produced, into a Verdict a program can act on: its class, the action to
// take (done, retry, retry on a new connection, fail the message, fail one
// recipient, send the remaining recipients now), a short machine-readable
// reason, a description from tables (never from server text), and a least
// retry delay when the reply implies one.
//
// It imports the standard library only. go-mail's *mail.SendError is
// recognised by its methods (ErrorCode, EnhancedStatusCode), and codes are
// parsed once, at that boundary: nothing here matches Go error strings.
//
// # Replies
//
// Parse reads single- and multi-line replies (RFC 5321 §4.2) and the RFC 3463
// enhanced status code after the basic code (RFC 2034). Describe and
// DescribeReply give the meaning of every code in the project's seed table,
// fitted to the command the reply answered (250 after ETRN is not 250 after
// MAIL); DescribeEnhanced gives every code of the IANA enhanced status code
// registry. Both tables are generated from the files in data/ by
// `go generate`.
//
// # Rules
//
// In order, the first that applies decides:
//
//   - The first digit of the basic code decides the class (RFC 5321 §4.2.1):
//     2 success, 3 intermediate, 4 transient, 5 permanent. Where the
//     enhanced code's class disagrees (Microsoft's 451 5.7.500), the basic
//     code still decides and Verdict.Conflict is set. A code outside 200–599
//     is a protocol error, treated like a lost connection.
//   - 421, a dropped or reset connection, a timeout: transient, and the
//     connection is gone: Reconnect (RFC 5321 §3.8 counts a lost connection
//     as a 451).
//   - Too many recipients (452 or 4.5.3 on RCPT, and 5xx with 5.5.3 on RCPT
//     per RFC 5321 §4.5.3.1.10): not a failure of the recipient: SendRestNow.
//   - Greylisting (450/451 with 4.7.1 or greylist wording) and rate limiting
//     (4.7.0, 4.7.28, "too quickly", "rate limit"): Retry, with RetryAfter
//     set from a delay the text names, else Options.GreylistDelay or
//     Options.RateLimitDelay.
//   - Authentication and TLS (530, 534, 535, 538, 5xx after AUTH):
//     FailMessage; configuration must change. 454 is transient. 432 (a
//     password transition is needed) is transient by its digit but is
//     FailMessage: the same password will meet it again.
//   - Other 5xx after RCPT fail that recipient only (FailRecipient); other
//     5xx fail the message; other 4xx are Retry.
//   - The caller's context.Canceled and DeadlineExceeded fail without a
//     retry and are never blamed on the server (Source FromClient). Other
//     local errors (bad input, a composition error) are permanent.
//   - A connection lost or timed out after the final dot of DATA is
//     Ambiguous: the server may have queued the message (RFC 5321 §6.1).
//
// Options.Rules run before these, for a provider's quirks.
//
// # Concurrency
//
// Every function and a Classifier's methods are safe for concurrent use.
// ClassifyReply and the Describe functions do not allocate.
package classify
