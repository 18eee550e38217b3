package retry_test

import (
	"context"
	"errors"
	"io"
	"net/textproto"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/retry/retrytest"
)

var (
	lost         = &classify.CommandError{Command: classify.CmdMAIL, Err: io.EOF}
	refused      = &classify.CommandError{Command: classify.CmdMAIL, Err: &textproto.Error{Code: 550, Msg: "5.7.1 Go away"}}
	greylisted   = &classify.CommandError{Command: classify.CmdRCPT, Err: &textproto.Error{Code: 451, Msg: "4.7.1 Greylisted, retry in 90 seconds"}}
	greylisted5m = &classify.CommandError{Command: classify.CmdRCPT, Err: &textproto.Error{Code: 451, Msg: "4.7.1 Greylisted"}}
)

// verdictError carries its own verdict, as the sender's errors do.
type verdictError struct{ v classify.Verdict }

func (e verdictError) Error() string             { return "verdict " + e.v.String() }
func (e verdictError) Verdict() classify.Verdict { return e.v }

// failing returns a Func that fails with errs in turn, then succeeds, and
// counts its calls.
func failing(errs ...error) (retry.Func, *int) {
	n := 0
	return func(ctx context.Context, attempt int) error {
		n++
		if attempt != n {
			panic("attempt numbers out of step")
		}
		if n <= len(errs) {
			return errs[n-1]
		}
		return nil
	}, &n
}

func always(err error) retry.Func {
	return func(context.Context, int) error { return err }
}

func TestDefaultSchedule(t *testing.T) {
	t.Parallel()
	clock := retrytest.NewClock()
	err := retry.Do(context.Background(), retry.Policy{Clock: clock}, always(lost))

	var re *retry.Error
	if !errors.As(err, &re) || !errors.Is(err, retry.ErrAttemptsExhausted) || !errors.Is(err, io.EOF) {
		t.Fatalf("err = %v, want a *retry.Error for exhausted attempts that unwraps to io.EOF", err)
	}
	if re.Attempts != retry.DefaultMaxAttempts {
		t.Errorf("Attempts = %d, want %d", re.Attempts, retry.DefaultMaxAttempts)
	}
	// 1s, 2s, 4s, 8s, each within ±DefaultRandomizationFactor.
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	got := clock.Sleeps()
	if len(got) != len(want) {
		t.Fatalf("sleeps = %v, want %d of them", got, len(want))
	}
	for i, d := range want {
		lo := time.Duration(float64(d) * (1 - retry.DefaultRandomizationFactor))
		hi := time.Duration(float64(d) * (1 + retry.DefaultRandomizationFactor))
		if got[i] < lo || got[i] > hi+1 {
			t.Errorf("sleep %d = %v, want within [%v, %v]", i+1, got[i], lo, hi)
		}
	}
}

func TestScheduleWithoutJitter(t *testing.T) {
	t.Parallel()
	clock := retrytest.NewClock()
	p := retry.Policy{
		MaxAttempts: 9, InitialInterval: time.Second, Multiplier: 2, MaxInterval: 20 * time.Second,
		RandomizationFactor: retry.NoJitter, MaxElapsedTime: time.Hour, Clock: clock,
	}
	_ = retry.Do(context.Background(), p, always(lost))
	want := []time.Duration{1, 2, 4, 8, 16, 20, 20, 20}
	got := clock.Sleeps()
	if len(got) != len(want) {
		t.Fatalf("sleeps = %v, want %v seconds", got, want)
	}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Errorf("sleep %d = %v, want %v", i+1, got[i], want[i]*time.Second)
		}
	}
}

func TestMaxElapsedTime(t *testing.T) {
	t.Parallel()
	clock := retrytest.NewClock()
	p := retry.Policy{MaxAttempts: 100, RandomizationFactor: retry.NoJitter, MaxElapsedTime: 20 * time.Second, Clock: clock}
	err := retry.Do(context.Background(), p, always(lost))
	// 1+2+4+8 = 15s elapsed; the next wait (16s) would end after 20s.
	if !errors.Is(err, retry.ErrTimeExhausted) {
		t.Fatalf("err = %v, want ErrTimeExhausted", err)
	}
	if got := len(clock.Sleeps()); got != 4 {
		t.Errorf("%d sleeps, want 4", got)
	}
	if elapsed := clock.Now().Sub(retrytest.Epoch); elapsed != 15*time.Second {
		t.Errorf("elapsed %v, want 15s", elapsed)
	}
}

func TestPermanentFailsFast(t *testing.T) {
	t.Parallel()
	for _, err := range []error{
		refused,
		&classify.CommandError{Command: classify.CmdRCPT, Err: &textproto.Error{Code: 550, Msg: "5.1.1 unknown"}},
		&classify.CommandError{Command: classify.CmdAUTH, Err: &textproto.Error{Code: 535, Msg: "5.7.8 bad password"}},
		errors.New("a local error: bad address"),
	} {
		clock := retrytest.NewClock()
		fn, calls := failing(err, err, err)
		got := retry.Do(context.Background(), retry.Policy{Clock: clock}, fn)
		if !errors.Is(got, retry.ErrPermanent) || !errors.Is(got, err) {
			t.Errorf("%v: Do = %v, want ErrPermanent wrapping the attempt's error", err, got)
		}
		if *calls != 1 || len(clock.Sleeps()) != 0 {
			t.Errorf("%v: %d attempts and %d waits, want 1 and 0", err, *calls, len(clock.Sleeps()))
		}
	}
}

func TestRetryAfterRaisesDelay(t *testing.T) {
	t.Parallel()
	clock := retrytest.NewClock()
	fn, calls := failing(greylisted, lost)
	p := retry.Policy{RandomizationFactor: retry.NoJitter, MaxElapsedTime: 10 * time.Minute, Clock: clock}
	if err := retry.Do(context.Background(), p, fn); err != nil {
		t.Fatal(err)
	}
	// The greylisting hint (90s) beats the first backoff step (1s); the
	// second step (2s) applies after the hint-free failure.
	want := []time.Duration{90 * time.Second, 2 * time.Second}
	if got := clock.Sleeps(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("sleeps = %v, want %v", got, want)
	}
	if *calls != 3 {
		t.Errorf("%d attempts, want 3", *calls)
	}
}

func TestRetryAfterLongerThanBudgetGivesUpAtOnce(t *testing.T) {
	t.Parallel()
	clock := retrytest.NewClock()
	fn, calls := failing(greylisted5m)
	err := retry.Do(context.Background(), retry.Policy{Clock: clock}, fn) // MaxElapsedTime 2m

	var re *retry.Error
	if !errors.As(err, &re) || !errors.Is(err, retry.ErrRetryAfterTooLong) {
		t.Fatalf("err = %v, want ErrRetryAfterTooLong", err)
	}
	if re.RetryAfter != classify.DefaultGreylistDelay || re.Verdict.Reason != classify.ReasonGreylisted {
		t.Errorf("RetryAfter %v reason %q, want %v greylisted", re.RetryAfter, re.Verdict.Reason, classify.DefaultGreylistDelay)
	}
	if *calls != 1 || len(clock.Sleeps()) != 0 {
		t.Errorf("%d attempts and waits %v, want 1 attempt and no wait", *calls, clock.Sleeps())
	}
}

func TestSendRestNowIsImmediate(t *testing.T) {
	t.Parallel()
	clock := retrytest.NewClock()
	rest := verdictError{classify.Verdict{Class: classify.Transient, Action: classify.SendRestNow, Reason: classify.ReasonTooManyRecipients}}
	fn, calls := failing(rest, rest, rest)
	if err := retry.Do(context.Background(), retry.Policy{MaxAttempts: 1, Clock: clock}, fn); err != nil {
		t.Fatalf("Do = %v: SendRestNow must not count against MaxAttempts", err)
	}
	if *calls != 4 || len(clock.Sleeps()) != 0 {
		t.Errorf("%d attempts and waits %v, want 4 attempts and no wait", *calls, clock.Sleeps())
	}
}

func TestBudgetSharedAcrossSends(t *testing.T) {
	t.Parallel()
	clock := retrytest.NewClock()
	budget := retry.NewBudget(0.001, 3) // three retries, then about none
	p := retry.Policy{MaxAttempts: 10, MaxElapsedTime: time.Hour, Budget: budget, Clock: clock}

	var re *retry.Error
	err := retry.Do(context.Background(), p, always(lost))
	if !errors.As(err, &re) || !errors.Is(err, retry.ErrBudgetExhausted) || re.Attempts != 4 {
		t.Fatalf("first send: %v, want ErrBudgetExhausted after 4 attempts", err)
	}
	// The server is still down: the next send does not retry at all.
	err = retry.Do(context.Background(), p, always(lost))
	if !errors.As(err, &re) || !errors.Is(err, retry.ErrBudgetExhausted) || re.Attempts != 1 {
		t.Fatalf("second send: %v, want ErrBudgetExhausted after 1 attempt", err)
	}
	// A send that succeeds first time needs no budget.
	if err := retry.Do(context.Background(), p, always(nil)); err != nil {
		t.Fatal(err)
	}
}

func TestCancelDuringWait(t *testing.T) {
	t.Parallel()
	const runs = 25
	latencies := make([]time.Duration, 0, runs)
	for range runs {
		clock := retrytest.NewManualClock()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- retry.Do(ctx, retry.Policy{Clock: clock}, always(lost)) }()
		if !clock.WaitForSleep(context.Background()) {
			t.Fatal("Do never waited")
		}
		start := time.Now()
		cancel()
		err := <-done
		latencies = append(latencies, time.Since(start))

		var re *retry.Error
		if !errors.As(err, &re) || !errors.Is(err, context.Canceled) || re.Attempts != 1 {
			t.Fatalf("Do = %v, want context.Canceled after 1 attempt", err)
		}
		if clock.Now() != retrytest.Epoch {
			t.Fatal("time passed on the clock before the cancellation returned")
		}
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	median := latencies[runs/2]
	t.Logf("cancel-to-return latency: median %v, max %v", median, latencies[runs-1])
	if median > time.Millisecond {
		t.Errorf("median cancel-to-return latency %v, want under 1ms", median)
	}
}

func TestCallerCancellationIsNotRetried(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := retry.Do(ctx, retry.Policy{Clock: retrytest.NewClock()}, func(ctx context.Context, _ int) error {
		calls++
		cancel()
		return &classify.CommandError{Command: classify.CmdDATA, Err: io.EOF} // what a cut connection looks like
	})
	if !errors.Is(err, context.Canceled) || calls != 1 {
		t.Fatalf("Do = %v after %d attempts, want context.Canceled after 1", err, calls)
	}
	var re *retry.Error
	if errors.As(err, &re); re.Verdict.Source != classify.FromClient {
		t.Errorf("verdict %v blames the server for the caller's cancellation", re.Verdict)
	}
}

func TestAttemptTimeout(t *testing.T) {
	t.Parallel()
	clock := retrytest.NewManualClock()
	started := make(chan int, 2)
	fn := func(ctx context.Context, attempt int) error {
		started <- attempt
		if attempt == 1 {
			<-ctx.Done() // a server that never answers
			return ctx.Err()
		}
		return nil
	}
	done := make(chan error, 1)
	p := retry.Policy{AttemptTimeout: 10 * time.Second, RandomizationFactor: retry.NoJitter, Clock: clock}
	go func() { done <- retry.Do(context.Background(), p, fn) }()

	<-started
	clock.Advance(10 * time.Second) // the attempt's timeout
	if !clock.WaitForSleep(context.Background()) {
		t.Fatal("no backoff after the timed-out attempt")
	}
	clock.Advance(time.Second) // the backoff
	if got := <-started; got != 2 {
		t.Fatalf("attempt %d started, want 2", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("Do = %v, want success on the second attempt", err)
	}
}

func TestAttemptTimeoutRealClock(t *testing.T) {
	t.Parallel()
	p := retry.Policy{MaxAttempts: 2, AttemptTimeout: 20 * time.Millisecond, InitialInterval: time.Millisecond}
	err := retry.Do(context.Background(), p, func(ctx context.Context, _ int) error {
		<-ctx.Done()
		return ctx.Err()
	})
	var re *retry.Error
	if !errors.As(err, &re) || !errors.Is(err, retry.ErrAttemptsExhausted) || !errors.Is(err, retry.ErrAttemptTimeout) {
		t.Fatalf("Do = %v, want two timed-out attempts", err)
	}
	if re.Verdict.Reason != classify.ReasonTimeout || re.Verdict.Action != classify.Reconnect {
		t.Errorf("verdict %v, want a retryable timeout", re.Verdict)
	}
}

func TestCallerDeadlineTooNearForTheWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := retry.Do(ctx, retry.Policy{InitialInterval: 10 * time.Second}, always(lost))
	if !errors.Is(err, retry.ErrTimeExhausted) {
		t.Fatalf("Do = %v, want ErrTimeExhausted", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("Do took %v: it waited although the wait could not fit", d)
	}
}

func TestHooks(t *testing.T) {
	t.Parallel()
	type call struct {
		attempt int
		reason  classify.Reason
		delay   time.Duration
	}
	var (
		mu      sync.Mutex
		retries []call
		gaveUp  *retry.Error
	)
	p := retry.Policy{
		MaxAttempts: 3, RandomizationFactor: retry.NoJitter, MaxElapsedTime: time.Hour, Clock: retrytest.NewClock(),
		OnRetry: func(_ context.Context, attempt int, v classify.Verdict, delay time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			retries = append(retries, call{attempt, v.Reason, delay})
		},
		OnGiveUp: func(_ context.Context, e *retry.Error) { gaveUp = e },
	}
	fn, _ := failing(greylisted, lost, lost)
	err := retry.Do(context.Background(), p, fn)
	want := []call{{1, classify.ReasonGreylisted, 90 * time.Second}, {2, classify.ReasonConnectionLost, 2 * time.Second}}
	if len(retries) != 2 || retries[0] != want[0] || retries[1] != want[1] {
		t.Errorf("OnRetry calls %v, want %v", retries, want)
	}
	if gaveUp == nil || error(gaveUp) != err || gaveUp.Attempts != 3 {
		t.Errorf("OnGiveUp got %v, want the returned error %v", gaveUp, err)
	}
}

func TestInvalidPolicy(t *testing.T) {
	t.Parallel()
	for _, p := range []retry.Policy{
		{MaxAttempts: -1},
		{Multiplier: 0.5},
		{RandomizationFactor: 2},
		{InitialInterval: time.Minute, MaxInterval: time.Second},
		{AttemptTimeout: -time.Second},
	} {
		called := false
		err := retry.Do(context.Background(), p, func(context.Context, int) error { called = true; return nil })
		if err == nil || called || p.Validate() == nil {
			t.Errorf("policy %+v: Do = %v, called %v; want an error before any attempt", p, err, called)
		}
	}
	if err := (retry.Policy{}).Validate(); err != nil {
		t.Errorf("zero Policy invalid: %v", err)
	}
}

func TestErrorMessage(t *testing.T) {
	t.Parallel()
	err := retry.Do(context.Background(), retry.Policy{Clock: retrytest.NewClock()}, always(greylisted5m))
	want := `retry: gave up after 1 attempt (server asked for a longer wait than the time left, retry after 5m0s): smtp RCPT: 451 "4.7.1 Greylisted"`
	if err.Error() != want {
		t.Errorf("Error() = %q\nwant      %q", err.Error(), want)
	}
}
