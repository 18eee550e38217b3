package retry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postwise/postwise/classify"
)

// Defaults for Policy, chosen for a notification service: a person is
// waiting for the mail (a password reset), so a send gives up within two
// minutes and leaves longer waits, such as greylisting's five, to the
// caller's durable queue. The package documentation compares them with
// Postfix, Haraka, gRPC and the AWS SDK.
const (
	DefaultMaxAttempts         = 5
	DefaultInitialInterval     = time.Second
	DefaultMultiplier          = 2.0
	DefaultMaxInterval         = 30 * time.Second
	DefaultRandomizationFactor = 0.2
	DefaultMaxElapsedTime      = 2 * time.Minute
	DefaultAttemptTimeout      = time.Minute
)

// NoJitter, as Policy.RandomizationFactor, makes the delays exact.
const NoJitter = -1.0

// Policy says when to try again and when to stop. The zero value is ready
// to use: every zero field means its Default constant. A Policy is a plain
// value; Do copies it, so one Policy may serve many concurrent sends.
type Policy struct {
	// MaxAttempts bounds the attempts of one send, the first included.
	// Zero means DefaultMaxAttempts; 1 means never retry.
	MaxAttempts int
	// InitialInterval is the delay before the first retry. Zero means
	// DefaultInitialInterval.
	InitialInterval time.Duration
	// Multiplier grows the delay after each retry. Zero means
	// DefaultMultiplier; it must otherwise be at least 1.
	Multiplier float64
	// MaxInterval caps the delay before jitter. Zero means
	// DefaultMaxInterval.
	MaxInterval time.Duration
	// RandomizationFactor spreads each delay over [d·(1−f), d·(1+f)] so that
	// senders that failed together do not retry together. Zero means
	// DefaultRandomizationFactor; NoJitter (any negative value) means none.
	RandomizationFactor float64
	// MaxElapsedTime bounds a send from its first attempt: no retry starts
	// after it, and no wait is begun that would end after it. Zero means
	// DefaultMaxElapsedTime.
	MaxElapsedTime time.Duration
	// AttemptTimeout bounds each attempt, separately from the caller's
	// deadline (the shorter wins). Zero means DefaultAttemptTimeout.
	AttemptTimeout time.Duration

	// Budget, when set, is shared by the sends to one server and stops
	// retries when too many of them fail at once. Nil means no budget (see
	// the package documentation for why that is the default).
	Budget *Budget
	// Classifier turns attempt errors into verdicts. Nil means the classify
	// package's default.
	Classifier *classify.Classifier
	// Clock supplies time; nil means the real clock. Tests inject a fake
	// one so that delays are exact and nothing sleeps.
	Clock Clock

	// OnRetry, when set, is called before each wait for a retry.
	OnRetry OnRetry
	// OnGiveUp, when set, is called once when Do fails.
	OnGiveUp OnGiveUp
}

// OnRetry is called, on the goroutine running Do, after attempt failed
// with verdict v and before Do waits delay for the next attempt (delay is 0
// for SendRestNow). It must not block for long: the wait has not begun.
type OnRetry func(ctx context.Context, attempt int, v classify.Verdict, delay time.Duration)

// OnGiveUp is called, on the goroutine running Do, with the *Error that Do
// is about to return.
type OnGiveUp func(ctx context.Context, err *Error)

// withDefaults returns p with its zero fields set, or an error for a
// setting that cannot work.
func (p Policy) withDefaults() (Policy, error) {
	if p.MaxAttempts < 0 || p.InitialInterval < 0 || p.MaxInterval < 0 || p.MaxElapsedTime < 0 || p.AttemptTimeout < 0 {
		return p, fmt.Errorf("retry: negative field in Policy %+v", p)
	}
	if p.Multiplier != 0 && p.Multiplier < 1 {
		return p, fmt.Errorf("retry: Policy.Multiplier %v is below 1", p.Multiplier)
	}
	if p.RandomizationFactor > 1 {
		return p, fmt.Errorf("retry: Policy.RandomizationFactor %v is above 1", p.RandomizationFactor)
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.InitialInterval == 0 {
		p.InitialInterval = DefaultInitialInterval
	}
	if p.Multiplier == 0 {
		p.Multiplier = DefaultMultiplier
	}
	if p.MaxInterval == 0 {
		p.MaxInterval = max(DefaultMaxInterval, p.InitialInterval)
	}
	if p.MaxInterval < p.InitialInterval {
		return p, errors.New("retry: Policy.MaxInterval is below InitialInterval")
	}
	switch {
	case p.RandomizationFactor == 0:
		p.RandomizationFactor = DefaultRandomizationFactor
	case p.RandomizationFactor < 0:
		p.RandomizationFactor = 0
	}
	if p.MaxElapsedTime == 0 {
		p.MaxElapsedTime = DefaultMaxElapsedTime
	}
	if p.AttemptTimeout == 0 {
		p.AttemptTimeout = DefaultAttemptTimeout
	}
	if p.Clock == nil {
		p.Clock = RealClock{}
	}
	return p, nil
}

// Validate reports whether p can be used, so that a constructor holding a
// Policy can fail early rather than at the first send.
func (p Policy) Validate() error {
	_, err := p.withDefaults()
	return err
}
