package retry

import (
	"context"
	"errors"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/postwise/postwise/classify"
)

// Func is one attempt. attempt counts from 1. ctx ends at the attempt's
// timeout or the caller's cancellation, whichever comes first. A nil error
// ends Do with success; any other error is judged by its verdict.
type Func func(ctx context.Context, attempt int) error

// Verdicter is implemented by errors that carry their own verdict, such as
// the sender's; Do uses it instead of classifying the error.
type Verdicter interface {
	Verdict() classify.Verdict
}

// maxImmediate bounds the SendRestNow retries of one Do, which neither wait
// nor count against MaxAttempts, so that a server repeating "too many
// recipients" cannot keep Do busy forever.
const maxImmediate = 1000

// Do runs fn until it succeeds, fails permanently, runs out of attempts, of
// time or of budget, or ctx ends. It returns nil on success, an error from
// an invalid Policy before any attempt, and otherwise a *Error.
//
// After a failed attempt, its verdict decides:
//   - FailMessage, FailRecipient: stop at once, with no wait (ErrPermanent).
//   - SendRestNow: the next attempt starts at once; it consumes no backoff
//     step, no budget, and does not count against MaxAttempts.
//   - Retry, Reconnect: wait for the next step of an exponential backoff
//     (github.com/cenkalti/backoff/v4), raised to at least the verdict's
//     RetryAfter. If that wait cannot end before MaxElapsedTime or the
//     caller's deadline, stop at once: waiting would be wasted. An attempt
//     ended by AttemptTimeout is retried like a timeout.
//
// The caller's cancellation ends a wait at once and is never retried. Each
// Do has its own backoff state, so concurrent calls share nothing but the
// Policy's Budget.
func Do(ctx context.Context, p Policy, fn Func) error {
	p, err := p.withDefaults()
	if err != nil {
		return err
	}
	clock := p.Clock
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialInterval,
		RandomizationFactor: p.RandomizationFactor,
		Multiplier:          p.Multiplier,
		MaxInterval:         p.MaxInterval,
		MaxElapsedTime:      p.MaxElapsedTime,
		Stop:                backoff.Stop,
		Clock:               clock,
	}
	b.Reset()

	counted, immediate := 0, 0
	for attempt := 1; ; attempt++ {
		err := run(ctx, p, fn, attempt)
		if err == nil {
			return nil
		}
		v := verdictOf(ctx, p, err)
		giveUp := func(reason error, retryAfter time.Duration) error {
			e := &Error{Attempts: attempt, Verdict: v, Err: err, Reason: reason, RetryAfter: retryAfter}
			if p.OnGiveUp != nil {
				p.OnGiveUp(ctx, e)
			}
			return e
		}
		if ctx.Err() != nil {
			return giveUp(ctx.Err(), 0)
		}
		if !v.Retryable() {
			return giveUp(ErrPermanent, 0)
		}

		var delay time.Duration
		if v.Action == classify.SendRestNow && immediate < maxImmediate {
			immediate++
		} else {
			counted++
			if counted >= p.MaxAttempts {
				return giveUp(ErrAttemptsExhausted, 0)
			}
			next := b.NextBackOff()
			if next == backoff.Stop {
				return giveUp(ErrTimeExhausted, v.RetryAfter)
			}
			delay = max(next, v.RetryAfter)
			now := clock.Now()
			tooLate := b.GetElapsedTime()+delay > p.MaxElapsedTime
			if deadline, ok := ctx.Deadline(); ok && now.Add(delay).After(deadline) {
				tooLate = true
			}
			if tooLate && v.RetryAfter > 0 && v.RetryAfter >= next {
				return giveUp(ErrRetryAfterTooLong, v.RetryAfter)
			}
			if tooLate {
				return giveUp(ErrTimeExhausted, 0)
			}
			if p.Budget != nil && !p.Budget.take(now) {
				return giveUp(ErrBudgetExhausted, 0)
			}
		}

		if p.OnRetry != nil {
			p.OnRetry(ctx, attempt, v, delay)
		}
		if delay > 0 {
			if err := clock.Sleep(ctx, delay); err != nil {
				return giveUp(err, 0)
			}
		}
	}
}

// run makes one attempt under its own timeout.
func run(ctx context.Context, p Policy, fn Func, attempt int) error {
	actx, cancel := p.Clock.WithTimeout(ctx, p.AttemptTimeout, ErrAttemptTimeout)
	defer cancel()
	err := fn(actx, attempt)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), ErrAttemptTimeout) {
		// The attempt's own timeout, not the caller's: the verdict must not
		// see a bare context.DeadlineExceeded, which means "the caller gave up".
		return &timeoutError{err}
	}
	return err
}

// verdictOf judges an attempt's error.
func verdictOf(ctx context.Context, p Policy, err error) classify.Verdict {
	if ctx.Err() != nil {
		// Whatever the attempt saw, the caller ended it.
		return classify.Classify(ctx.Err())
	}
	var te *timeoutError
	if errors.As(err, &te) {
		return classify.Verdict{
			Class: classify.Transient, Action: classify.Reconnect, Reason: classify.ReasonTimeout,
			Source: classify.FromNetwork, Description: "the attempt timed out",
		}
	}
	var vd Verdicter
	if errors.As(err, &vd) {
		return vd.Verdict()
	}
	return p.Classifier.Classify(err)
}

// timeoutError marks an attempt ended by Policy.AttemptTimeout.
type timeoutError struct{ err error }

func (e *timeoutError) Error() string { return ErrAttemptTimeout.Error() + ": " + e.err.Error() }
func (e *timeoutError) Unwrap() []error {
	return []error{e.err, ErrAttemptTimeout}
}
