//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wneessen/go-mail"
	"go.uber.org/goleak"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/internal/testservers"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/sender"
)

// mpChaos refuses 30% of MAIL and 30% of RCPT commands for now, so an attempt
// gets through with a probability of 0.7 × 0.7 = 0.49.
var mpChaos = testservers.Chaos{
	Sender:    testservers.ChaosTrigger{ErrorCode: 451, Probability: 30},
	Recipient: testservers.ChaosTrigger{ErrorCode: 451, Probability: 30},
}

// mpChaosRetry rides out mpChaos: a message fails all 30 attempts with a
// probability of 0.51^30 ≈ 2e-9, so a run of hundreds never loses one by
// chance (with 10 attempts it would be 0.1% each: a flaky test). Waits are
// milliseconds so that the run takes seconds.
var mpChaosRetry = retry.Policy{
	MaxAttempts:     30,
	InitialInterval: 2 * time.Millisecond,
	MaxInterval:     50 * time.Millisecond,
	MaxElapsedTime:  time.Minute,
	AttemptTimeout:  10 * time.Second,
}

// mpSent is what one Send of a chaos run returned.
type mpSent struct {
	messageID string
	attempts  int
	err       error
}

// mpSendAll sends n messages through s from workers goroutines and returns
// what each Send returned, in message order.
func mpSendAll(t *testing.T, s *sender.Sender, run string, n, workers int) []mpSent {
	t.Helper()
	msgs := make([]*mail.Msg, n) // built here: t.Fatal belongs to the test's goroutine
	for i := range msgs {
		msgs[i] = mpMessage(t, run, i)
	}
	sent := make([]mpSent, n) // each worker writes only the entries it took
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				res, err := s.Send(ctx, msgs[i])
				cancel()
				sent[i].err = err
				if res != nil {
					sent[i].messageID, sent[i].attempts = res.MessageID, res.Attempts
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return sent
}

// mpCheckExactlyOnce checks that every Send succeeded and that Mailpit holds
// each of their Message-IDs exactly once, and nothing else. It returns how
// many sends needed more than one attempt.
func mpCheckExactlyOnce(t *testing.T, m *testservers.Mailpit, sent []mpSent) (retried int) {
	t.Helper()
	want := map[string]int{}
	attempts := map[int]int{} // attempts → sends
	failed := 0
	for i, s := range sent {
		attempts[s.attempts]++
		if s.attempts > 1 {
			retried++
		}
		if s.err != nil {
			failed++
			if failed <= 5 {
				var se *sender.Error
				if errors.As(s.err, &se) {
					t.Errorf("message %d (%s): %v after %d attempts; verdict %+v", i, s.messageID, s.err, s.attempts, se.Verdict)
				} else {
					t.Errorf("message %d (%s): %v after %d attempts", i, s.messageID, s.err, s.attempts)
				}
			}
			continue
		}
		if s.messageID == "" {
			t.Errorf("message %d: no Message-ID in its Result", i)
			continue
		}
		want[s.messageID]++
	}
	if failed > 0 {
		t.Errorf("%d of %d sends failed", failed, len(sent))
	}
	for id, n := range want {
		if n > 1 {
			t.Errorf("Message-ID %s was given to %d sends", id, n)
		}
	}
	t.Logf("%d sends; attempts per send → sends: %v", len(sent), attempts)

	m.WaitCount(t, len(want), 10*time.Second)
	got := m.MessageIDs(t)
	var lost, duplicated, unexpected []string
	for id := range want {
		switch n := got[id]; {
		case n == 0:
			lost = append(lost, id)
		case n > 1:
			duplicated = append(duplicated, fmt.Sprintf("%s ×%d", id, n))
		}
	}
	for id := range got {
		if want[id] == 0 {
			unexpected = append(unexpected, id)
		}
	}
	if len(lost)+len(duplicated)+len(unexpected) > 0 {
		slices.Sort(lost)
		slices.Sort(duplicated)
		slices.Sort(unexpected)
		t.Errorf("Mailpit holds %d messages for %d sends that succeeded:\n  lost %d: %v\n  duplicated %d: %v\n  not sent by the test %d: %v",
			len(got), len(want), len(lost), lost, len(duplicated), duplicated, len(unexpected), unexpected)
	}
	return retried
}

// TestMailpitChaosExactlyOnce sends hundreds of messages from many goroutines
// over a pool of connections to a Mailpit that refuses MAIL and RCPT for now at
// random: every send succeeds, and Mailpit holds every message exactly once.
// It runs with PIPELINING allowed and disabled. Mailpit v1.33.1 does not offer
// PIPELINING, so both variants send one command at a time: the test checks
// that the Sender pipelines exactly when the server offers it and the Options
// allow it.
func TestMailpitChaosExactlyOnce(t *testing.T) {
	for _, tc := range []struct {
		name           string
		allowPipelines bool
		messages       int
	}{
		{"pipelining-allowed", true, 300},
		{"pipelining-disabled", false, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testservers.StartMailpit(t, testservers.MailpitOptions{})
			_, offered := mpExtensions(t, m)["PIPELINING"]
			t.Logf("Mailpit offers PIPELINING: %v", offered)
			if applied := m.SetChaos(t, mpChaos); applied.Sender != mpChaos.Sender || applied.Recipient != mpChaos.Recipient {
				t.Fatalf("Mailpit applied chaos %+v, want %+v", applied, mpChaos)
			}
			// The Sender's goroutines, and only they, must be gone after Close.
			ignore := goleak.IgnoreCurrent()
			s, writes := mpSender(t, m, sender.Options{
				MaxConnections:    4,
				DisablePipelining: !tc.allowPipelines,
				Retry:             mpChaosRetry,
			})

			start := time.Now()
			sent := mpSendAll(t, s, t.Name(), tc.messages, 16)
			elapsed := time.Since(start)
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			goleak.VerifyNone(t, ignore)

			retried := mpCheckExactlyOnce(t, m, sent)
			t.Logf("%d messages in %v over %d connections; %d needed retries; %d writes pipelined MAIL with RCPT",
				tc.messages, elapsed.Round(time.Millisecond), writes.dials.Load(), retried, writes.pipelined.Load())
			if retried == 0 {
				t.Errorf("no send needed a retry: the chaos did not bite (triggers now %+v)", m.GetChaos(t))
			}
			// MaxConnections bounds the connections open at once; a refused
			// MAIL or RCPT costs an RSET, not the connection.
			if d := writes.dials.Load(); d < 1 || d > 4*int64(1+tc.messages/sender.DefaultMaxMessagesPerConnection) {
				t.Errorf("%d connections for %d messages, want at most 4 at a time", d, tc.messages)
			}
			switch p, want := writes.pipelined.Load(), offered && tc.allowPipelines; {
			case want && p == 0:
				t.Errorf("no write carried MAIL and RCPT together, though Mailpit offers PIPELINING")
			case !want && p != 0:
				t.Errorf("%d writes carried MAIL and RCPT together (PIPELINING offered: %v, allowed: %v)", p, offered, tc.allowPipelines)
			}
		})
	}
}

// TestMailpitPermanentRefusalFailsFast: a 550 to RCPT or MAIL ends the send
// after one attempt, however many the policy allows, and nothing is stored.
func TestMailpitPermanentRefusalFailsFast(t *testing.T) {
	m := testservers.StartMailpit(t, testservers.MailpitOptions{})
	for _, tc := range []struct {
		name     string
		chaos    testservers.Chaos
		sentinel error
		command  string
	}{
		{"RCPT", testservers.Chaos{Recipient: testservers.ChaosTrigger{ErrorCode: 550, Probability: 100}}, sender.ErrRecipientsRejected, classify.CmdRCPT},
		{"MAIL", testservers.Chaos{Sender: testservers.ChaosTrigger{ErrorCode: 550, Probability: 100}}, sender.ErrMessageRejected, classify.CmdMAIL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.DeleteAll(t)
			m.SetChaos(t, tc.chaos)
			retries := 0
			policy := mpChaosRetry
			policy.OnRetry = func(context.Context, int, classify.Verdict, time.Duration) { retries++ }
			s, _ := mpSender(t, m, sender.Options{Retry: policy})

			res, err := s.Send(t.Context(), mpMessage(t, t.Name(), 1))
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}

			var se *sender.Error
			if !errors.As(err, &se) || !errors.Is(err, tc.sentinel) {
				t.Fatalf("err = %v, want a *sender.Error that is %v", err, tc.sentinel)
			}
			if res == nil {
				t.Fatal("no Result")
			}
			if res.Attempts != 1 || se.Attempts != 1 || retries != 0 {
				t.Errorf("Result.Attempts %d, Error.Attempts %d, %d retries; want 1 attempt and no retry", res.Attempts, se.Attempts, retries)
			}
			if v := se.Verdict; v.Code != 550 || v.Command != tc.command || v.Action.Retryable() {
				t.Errorf("Error.Verdict: %d after %s, action %v; want 550 after %s, not retried", v.Code, v.Command, v.Action, tc.command)
			}
			if len(res.Recipients) != 1 {
				t.Fatalf("recipients %+v, want one", res.Recipients)
			}
			if r := res.Recipients[0]; r.Status != sender.Rejected || r.Verdict.Code != 550 || r.Attempt != 1 {
				t.Errorf("recipient %s: %v with %d at attempt %d (%q); want Rejected with 550 at attempt 1", r.Address, r.Status, r.Verdict.Code, r.Attempt, r.Reply)
			}
			if n := m.Count(t); n != 0 {
				t.Errorf("Mailpit stored %d messages, want none", n)
			}
		})
	}
}
