package retry

import (
	"time"

	"golang.org/x/time/rate"
)

// Budget limits the retries of all the sends that share it, in the spirit
// of gRPC's retry throttling and the AWS SDK's retry quota: when a server is
// down and every send is failing, retries stop piling onto it and sends
// fail fast with ErrBudgetExhausted. First attempts are never limited.
//
// It is a token bucket (golang.org/x/time/rate): Burst retries at once,
// refilled at RetriesPerSecond. A Budget is safe for concurrent use.
type Budget struct {
	limiter *rate.Limiter
}

// NewBudget returns a Budget allowing burst retries at once and
// retriesPerSecond after that. Size it from the retries a healthy server
// sees: a budget that is too small fails mail that would have gone through.
func NewBudget(retriesPerSecond float64, burst int) *Budget {
	return &Budget{limiter: rate.NewLimiter(rate.Limit(retriesPerSecond), burst)}
}

// take spends one retry at time now, reporting whether one was left.
func (b *Budget) take(now time.Time) bool {
	return b.limiter.AllowN(now, 1)
}
