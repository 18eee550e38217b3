package retry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"time"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/retry/retrytest"
)

func ExampleDo() {
	// A server that greylists the first attempt, then drops the connection,
	// then accepts. The fake clock makes the waits exact and instant.
	replies := []error{
		&classify.CommandError{Command: classify.CmdRCPT, Err: &textproto.Error{Code: 451, Msg: "4.7.1 Greylisted, come back in 60 seconds"}},
		&classify.CommandError{Command: classify.CmdDataEnd, Err: io.EOF},
		nil,
	}
	p := retry.Policy{
		RandomizationFactor: retry.NoJitter,
		MaxElapsedTime:      5 * time.Minute,
		Clock:               retrytest.NewClock(),
		OnRetry: func(_ context.Context, attempt int, v classify.Verdict, delay time.Duration) {
			fmt.Printf("attempt %d: %s (%s), next in %v\n", attempt, v.Action, v.Reason, delay)
		},
	}
	err := retry.Do(context.Background(), p, func(ctx context.Context, attempt int) error {
		return replies[attempt-1]
	})
	fmt.Println("result:", err)
	// Output:
	// attempt 1: retry (greylisted), next in 1m0s
	// attempt 2: reconnect (connection-lost), next in 2s
	// result: <nil>
}

func ExampleDo_permanent() {
	err := retry.Do(context.Background(), retry.Policy{}, func(ctx context.Context, attempt int) error {
		return &classify.CommandError{Command: classify.CmdRCPT, Err: &textproto.Error{Code: 550, Msg: "5.1.1 No such user"}}
	})
	var re *retry.Error
	errors.As(err, &re)
	fmt.Println(re.Attempts, errors.Is(err, retry.ErrPermanent), re.Verdict.Reason)
	// Output:
	// 1 true bad-mailbox
}
