// Package retry decides when to try a send again, and when to stop.
//
// Do runs an attempt function until it succeeds, fails permanently, runs out
// of attempts, time or budget, or the caller's context ends. The delays come
// from github.com/cenkalti/backoff/v4's ExponentialBackOff, a fresh one per
// Do; the decisions come from classify verdicts:
//
//   - a permanent verdict (FailMessage, FailRecipient) stops at once, after
//     one attempt and no wait;
//   - SendRestNow (the server's recipient limit, RFC 5321 §4.5.3.1.10)
//     starts the next attempt at once, consuming no backoff step;
//   - Retry and Reconnect wait for the next backoff step, raised to the
//     server's RetryAfter hint (greylisting, rate limits); when that wait
//     cannot fit in the time left, Do gives up at once and reports the hint
//     in Error.RetryAfter, so the caller can hand the message to a durable
//     queue instead of holding a goroutine for minutes;
//   - the caller's cancellation ends a wait at once and is never retried.
//
// # Defaults
//
// The zero Policy suits a notification service: a person is waiting for a
// password reset, so a send either succeeds within seconds or is handed back
// within two minutes. A relay's own queue is the place for hour-long waits.
//
//	attempt  wait before it (±20% jitter)  elapsed at the latest
//	1        —                             0s
//	2        1s   (0.8s–1.2s)              1.2s
//	3        2s   (1.6s–2.4s)              3.6s
//	4        4s   (3.2s–4.8s)              8.4s
//	5        8s   (6.4s–9.6s)              18s
//
// plus the attempts' own time, each at most AttemptTimeout (1m), and never
// a wait that would end after MaxElapsedTime (2m). A greylisting reply
// without a delay of its own asks for 5 minutes (classify.DefaultGreylistDelay),
// more than the default budget: Do returns ErrRetryAfterTooLong at once.
// Raise MaxElapsedTime to ride out greylisting in process.
//
// For comparison:
//
//	system                   first retry  growth               gives up after
//	postwise (default)       1s           ×2, max 30s, ±20%     5 attempts or 2m
//	Postfix queue manager    300s         ×2, max 4000s        5 days (maximal_queue_lifetime)
//	Haraka outbound          64s          ×2 to 131072s        12 retries (about 3 days)
//	gRPC connection backoff  1s           ×1.6, max 120s, ±20%  never (reconnects)
//	gRPC retry policy        configured   configured           at most 5 attempts, throttled by tokens
//	AWS SDK (standard mode)  up to 1s     ×2, max 20s, full    3 attempts; retry quota of 500 tokens
//	                                      jitter
//
// MTAs wait minutes because they own a durable queue; postwise sits in a
// request path and does not, so it retries quickly and briefly and reports
// the rest, like the RPC clients.
//
// # Budget
//
// A Budget, shared by the sends to one server, stops retries from piling up
// when that server is down: every send would otherwise retry MaxAttempts
// times, multiplying the load on a server that is already failing. It is a
// token bucket (golang.org/x/time/rate), in the spirit of gRPC's retry
// throttling and the AWS SDK's retry quota.
//
// It is off by default. The AWS SDK for Go v2 shipped its retry quota on by
// default, and services with ordinary bursts of throttling errors began
// failing with "retry quota exceeded" on requests that a retry would have
// saved; the SDK later added a way to turn it off (ratelimit.None). The
// right size depends on a service's traffic, and a budget that is too small
// loses mail, so a user sets one knowingly.
//
// # Time
//
// Policy.Clock supplies time. The retrytest package has a fake clock, so
// tests see exact delays, run in parallel, and never sleep.
package retry
