package retry

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/postwise/postwise/classify"
)

// Why Do gave up, for errors.Is on the *Error it returns. The caller's own
// context.Canceled or context.DeadlineExceeded is reported as itself.
var (
	// ErrPermanent: the verdict says another attempt cannot succeed.
	ErrPermanent = errors.New("retry: permanent failure")
	// ErrAttemptsExhausted: Policy.MaxAttempts attempts failed.
	ErrAttemptsExhausted = errors.New("retry: attempts exhausted")
	// ErrTimeExhausted: the next wait would end after Policy.MaxElapsedTime
	// or the caller's deadline.
	ErrTimeExhausted = errors.New("retry: time exhausted")
	// ErrRetryAfterTooLong: the server asked for a wait (Verdict.RetryAfter)
	// longer than the time left; Error.RetryAfter says how long, so that the
	// caller can hand the message to a durable queue.
	ErrRetryAfterTooLong = errors.New("retry: server asked for a longer wait than the time left")
	// ErrBudgetExhausted: the shared Budget has no retries left.
	ErrBudgetExhausted = errors.New("retry: retry budget exhausted")
	// ErrAttemptTimeout is the cause of an attempt's context when
	// Policy.AttemptTimeout ends it. Do retries such an attempt.
	ErrAttemptTimeout = errors.New("retry: attempt timed out")
)

// Error is what Do returns when it gives up. It unwraps to both the last
// attempt's error and the reason Do stopped, so errors.Is(err,
// ErrBudgetExhausted) and errors.As(err, &textprotoErr) both work.
type Error struct {
	// Attempts is the number of attempts made.
	Attempts int
	// Verdict is the verdict on the last attempt.
	Verdict classify.Verdict
	// Err is the last attempt's error.
	Err error
	// Reason is one of the Err… values of this package, or the caller's
	// context error.
	Reason error
	// RetryAfter is the server's requested wait when Reason is
	// ErrRetryAfterTooLong (or the wait Do could not fit, with
	// ErrTimeExhausted); otherwise 0.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := "retry: gave up after " + strconv.Itoa(e.Attempts) + " attempt"
	if e.Attempts != 1 {
		s += "s"
	}
	s += " (" + strings.TrimPrefix(e.Reason.Error(), "retry: ")
	if e.RetryAfter > 0 {
		s += ", retry after " + e.RetryAfter.String()
	}
	s += ")"
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the last attempt's error and the reason Do stopped.
func (e *Error) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Reason}
	}
	return []error{e.Err, e.Reason}
}
