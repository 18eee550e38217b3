package sender_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/retry/retrytest"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
)

func TestMixedRecipients(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "RCPT", Arg: "greylisted@", Times: 2, Do: sendertest.Reply(450, "4.2.0", "Greylisted, retry in 30 seconds")},
		{Command: "RCPT", Arg: "unknown@", Do: sendertest.Reply(550, "5.1.1", "No such user")},
		{Command: "RCPT", Arg: "full@", Do: sendertest.Reply(552, "5.2.2", "Mailbox full")},
	}})
	defer srv.Close()
	s, rec := newSender(t, srv, sender.Options{})

	res, err := s.Send(context.Background(), newMsg(t,
		"ok1@example.com", "greylisted@example.com", "unknown@example.com", "ok2@example.com", "full@example.com"))

	// Per recipient.
	want := map[string]struct {
		status  sender.Status
		attempt int
		code    int
	}{
		"ok1@example.com":        {sender.Delivered, 1, 250},
		"ok2@example.com":        {sender.Delivered, 1, 250},
		"greylisted@example.com": {sender.Delivered, 3, 250},
		"unknown@example.com":    {sender.Rejected, 1, 550},
		"full@example.com":       {sender.Rejected, 1, 552},
	}
	for _, r := range res.Recipients {
		w := want[r.Address]
		if r.Status != w.status || r.Attempt != w.attempt || r.Verdict.Code != w.code {
			t.Errorf("%s: %v at attempt %d (%d), want %v at %d (%d)", r.Address, r.Status, r.Attempt, r.Verdict.Code, w.status, w.attempt, w.code)
		}
	}
	if res.Attempts != 3 {
		t.Errorf("%d attempts, want 3", res.Attempts)
	}
	// The greylisting hint set the waits: the server's 30s beats backoff's 1s and 2s.
	if d := rec.delays; len(d) != 2 || d[0] != 30*time.Second || d[1] != 30*time.Second {
		t.Errorf("waits %v, want [30s 30s]", d)
	}

	// Per delivered copy: each recipient got exactly one.
	copies := map[string]int{}
	for _, m := range srv.Messages() {
		for _, to := range m.To {
			copies[to]++
		}
		if m.MessageID != res.MessageID {
			t.Errorf("copy with Message-ID %q, want %q", m.MessageID, res.MessageID)
		}
	}
	if fmt.Sprint(copies) != "map[greylisted@example.com:1 ok1@example.com:1 ok2@example.com:1]" {
		t.Errorf("copies per recipient %v", copies)
	}

	// The error names the two refused recipients and nothing else.
	var se *sender.Error
	if !errors.As(err, &se) || !errors.Is(err, sender.ErrRecipientsRejected) || errors.Is(err, sender.ErrDeferred) {
		t.Fatalf("err = %v, want ErrRecipientsRejected only", err)
	}
	var refused []string
	for _, e := range se.Unwrap() {
		var re *sender.RecipientError
		if errors.As(e, &re) {
			refused = append(refused, re.Address)
		}
	}
	slices.Sort(refused)
	if fmt.Sprint(refused) != "[full@example.com unknown@example.com]" {
		t.Errorf("refused recipients in the error: %v", refused)
	}
	if got := res.Delivered(); len(got) != 3 {
		t.Errorf("Delivered() = %v", got)
	}
}

func TestGiveUpWithDeferredRecipients(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "RCPT", Arg: "later@", Do: sendertest.Reply(451, "4.7.1", "Greylisted")},
	}})
	defer srv.Close()
	// Greylisting asks for 5 minutes; the default budget is 2.
	s, _ := newSender(t, srv, sender.Options{Retry: retry.Policy{MaxElapsedTime: 2 * time.Minute}})
	res, err := s.Send(context.Background(), newMsg(t, "now@example.com", "later@example.com"))

	var re *retry.Error
	if !errors.Is(err, sender.ErrDeferred) || !errors.As(err, &re) || !errors.Is(err, retry.ErrRetryAfterTooLong) {
		t.Fatalf("err = %v, want ErrDeferred and ErrRetryAfterTooLong", err)
	}
	if re.RetryAfter != classify.DefaultGreylistDelay || res.Attempts != 1 {
		t.Errorf("RetryAfter %v after %d attempts, want 5m after 1", re.RetryAfter, res.Attempts)
	}
	if got := res.Deferred(); fmt.Sprint(got) != "[later@example.com]" {
		t.Errorf("Deferred() = %v", got)
	}
	if got := res.Delivered(); fmt.Sprint(got) != "[now@example.com]" {
		t.Errorf("Delivered() = %v", got)
	}
}

func TestTooManyRecipientsSendsTheRestNow(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := sendertest.NewServer(sendertest.Options{MaxRecipients: 2})
			defer srv.Close()
			s, rec := newSender(t, srv, sender.Options{DisablePipelining: !pipelining})
			to := []string{"a@example.com", "b@example.com", "c@example.com", "d@example.com", "e@example.com"}
			res, err := s.Send(context.Background(), newMsg(t, to...))
			if err != nil {
				t.Fatal(err)
			}
			if res.Attempts != 1 || len(rec.get()) != 0 {
				t.Errorf("%d attempts, %d retries: want the split inside one attempt, without waiting", res.Attempts, len(rec.get()))
			}
			var got [][]string
			for _, m := range srv.Messages() {
				got = append(got, m.To)
			}
			if fmt.Sprint(got) != "[[a@example.com b@example.com] [c@example.com d@example.com] [e@example.com]]" {
				t.Errorf("transactions %v", got)
			}
			if srv.Connections() != 1 {
				t.Errorf("%d connections, want 1", srv.Connections())
			}
		})
	}
}

func TestAmbiguousAtMostOnce(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "DATA-END", Times: 1, Do: sendertest.Drop()},
	}})
	defer srv.Close()
	s, _ := newSender(t, srv, sender.Options{AtMostOnce: true})
	res, err := s.Send(context.Background(), newMsg(t, "bob@example.com"))
	if !errors.Is(err, sender.ErrAmbiguous) || !res.Ambiguous {
		t.Fatalf("err = %v, ambiguous %v; want ErrAmbiguous", err, res.Ambiguous)
	}
	if res.Attempts != 1 || res.Recipients[0].Status != sender.Unknown || !res.Recipients[0].Verdict.Ambiguous {
		t.Errorf("%d attempts, recipient %+v; want 1 attempt and status unknown", res.Attempts, res.Recipients[0])
	}
	if n := len(srv.Messages()) + len(srv.Rejected()); n != 1 {
		t.Errorf("server saw %d complete messages, want 1", n)
	}
}

func TestAmbiguousAtLeastOnceResendsSameMessageID(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "DATA-END", Times: 1, Do: sendertest.Drop()},
	}})
	defer srv.Close()
	s, _ := newSender(t, srv, sender.Options{})
	res, err := s.Send(context.Background(), newMsg(t, "bob@example.com"))
	if err != nil || !res.Ambiguous || res.Attempts != 2 {
		t.Fatalf("err %v, ambiguous %v, %d attempts; want success on attempt 2, marked ambiguous", err, res.Ambiguous, res.Attempts)
	}
	rejected, msgs := srv.Rejected(), srv.Messages()
	if len(rejected) != 1 || len(msgs) != 1 || rejected[0].MessageID != msgs[0].MessageID || msgs[0].MessageID != res.MessageID {
		t.Errorf("copies: dropped %v, stored %v; want the same Message-ID twice", rejected, msgs)
	}
	if !slices.Equal(rejected[0].Data, msgs[0].Data) {
		t.Error("the resent message differs from the first copy")
	}
}

func TestInvalidInputCostsNoRoundTrip(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()
	s, _ := newSender(t, srv, sender.Options{})

	noFrom := mail.NewMsg()
	noFrom.To("bob@example.com")
	noTo := mail.NewMsg()
	noTo.From("alice@example.com")
	// An address with CR or LF, which could smuggle a command, never gets
	// into a message: go-mail refuses it when it is set.
	if err := newMsg(t, "bob@example.com").To("bob@example.com\r\nRCPT TO:<victim@example.com>"); err == nil {
		t.Error("go-mail accepted an address with CR LF")
	}

	tests := []struct {
		name string
		msg  *mail.Msg
		want error
	}{
		{"nil", nil, sender.ErrInvalidMessage},
		{"no sender", noFrom, sender.ErrInvalidMessage},
		{"no recipients", noTo, sender.ErrNoRecipients},
	}
	for _, tt := range tests {
		res, err := s.Send(context.Background(), tt.msg)
		if !errors.Is(err, tt.want) || res != nil {
			t.Errorf("%s: %v, %v; want %v and no Result", tt.name, res, err, tt.want)
		}
	}
	if srv.Connections() != 0 {
		t.Errorf("invalid input opened %d connections", srv.Connections())
	}
}

func TestNew(t *testing.T) {
	for _, o := range []sender.Options{
		{},
		{Host: "mx.example.com", Port: 70000},
		{Host: "mx.example.com", MaxConnections: -1},
		{Host: "mx.example.com", Retry: retry.Policy{Multiplier: 0.5}},
		{Host: "mx.example.com", MailOptions: []mail.Option{mail.WithSSL()}},
	} {
		if s, err := sender.New(o); err == nil {
			s.Close()
			t.Errorf("New(%+v) succeeded", o)
		}
	}
}

func TestConnectionReuseWithoutExtraRoundTrips(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()
	s, _ := newSender(t, srv, sender.Options{MaxConnections: 1})
	for range 3 {
		if _, err := s.Send(context.Background(), newMsg(t, "bob@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	want := "EHLO MAIL RCPT DATA DATA-END MAIL RCPT DATA DATA-END MAIL RCPT DATA DATA-END QUIT"
	if got := verbs(srv, 1); got != want {
		t.Errorf("commands on the kept connection:\n got %s\nwant %s", got, want)
	}
	if srv.Connections() != 1 {
		t.Errorf("%d connections, want 1", srv.Connections())
	}
}

func TestIdleConnectionChecks(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()
	clock := retrytest.NewManualClock()
	s, _ := newSender(t, srv, sender.Options{
		MaxConnections: 1, CheckAfterIdle: 5 * time.Second, IdleTimeout: time.Minute,
		Retry: retry.Policy{Clock: clock},
	})
	send := func() {
		t.Helper()
		if _, err := s.Send(context.Background(), newMsg(t, "bob@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	send()
	clock.Advance(6 * time.Second) // idle past CheckAfterIdle: NOOP first
	send()
	clock.Advance(2 * time.Minute) // idle past IdleTimeout: a new connection
	send()
	s.Close()
	if got, want := verbs(srv, 1), "EHLO MAIL RCPT DATA DATA-END NOOP MAIL RCPT DATA DATA-END QUIT"; got != want {
		t.Errorf("connection 1:\n got %s\nwant %s", got, want)
	}
	if got, want := verbs(srv, 2), "EHLO MAIL RCPT DATA DATA-END QUIT"; got != want {
		t.Errorf("connection 2:\n got %s\nwant %s", got, want)
	}
}

func TestDeadIdleConnectionIsReplaced(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "NOOP", Times: 1, Do: sendertest.Reply(421, "4.4.2", "Idle too long")},
	}})
	defer srv.Close()
	clock := retrytest.NewManualClock()
	s, rec := newSender(t, srv, sender.Options{MaxConnections: 1, Retry: retry.Policy{Clock: clock}})
	for i := range 2 {
		if _, err := s.Send(context.Background(), newMsg(t, "bob@example.com")); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			clock.Advance(10 * time.Second)
		}
	}
	if srv.Connections() != 2 || len(rec.get()) != 0 || len(srv.Messages()) != 2 {
		t.Errorf("%d connections, %d retries, %d messages; want 2, 0, 2", srv.Connections(), len(rec.get()), len(srv.Messages()))
	}
}

func TestMaxMessagesPerConnection(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()
	s, _ := newSender(t, srv, sender.Options{MaxConnections: 1, MaxMessagesPerConnection: 2})
	for range 5 {
		if _, err := s.Send(context.Background(), newMsg(t, "bob@example.com")); err != nil {
			t.Fatal(err)
		}
	}
	if srv.Connections() != 3 {
		t.Errorf("%d connections for 5 messages at 2 per connection, want 3", srv.Connections())
	}
	if got := verbs(srv, 1); !strings.HasSuffix(got, "DATA-END QUIT") {
		t.Errorf("connection 1 did not end with QUIT: %s", got)
	}
}

func TestRSETOnlyAfterAFailedTransaction(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "RCPT", Times: 1, Do: sendertest.Reply(451, "4.3.0", "Try later")},
	}})
	defer srv.Close()
	s, _ := newSender(t, srv, sender.Options{MaxConnections: 1})
	if _, err := s.Send(context.Background(), newMsg(t, "bob@example.com")); err != nil {
		t.Fatal(err)
	}
	want := "EHLO MAIL RCPT DATA RSET MAIL RCPT DATA DATA-END"
	if got := verbs(srv, 1); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func TestCancelDuringStalledReply(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "RCPT", Do: sendertest.Stall()},
	}})
	defer srv.Close()
	s, _ := newSender(t, srv, sender.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	res, err := s.Send(ctx, newMsg(t, "bob@example.com"))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Send returned %v after the cancel", d)
	}
	if res.Attempts != 1 {
		t.Errorf("%d attempts: a cancellation is never retried", res.Attempts)
	}
	var se *sender.Error
	if errors.As(err, &se); se.Verdict.Source != classify.FromClient {
		t.Errorf("verdict %v blames the server", se.Verdict)
	}
}

func TestCloseWaitsForSends(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "DATA-END", Do: sendertest.Delay(200*time.Millisecond, sendertest.Default())},
	}})
	defer srv.Close()
	s, _ := newSender(t, srv, sender.Options{})
	done := make(chan error, 1)
	go func() {
		_, err := s.Send(context.Background(), newMsg(t, "bob@example.com"))
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let the send reach the server
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the send in flight failed: %v", err)
		}
	default:
		t.Fatal("Close returned before the send in flight finished")
	}
	if _, err := s.Send(context.Background(), newMsg(t, "bob@example.com")); !errors.Is(err, sender.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	if got := verbs(srv, 1); !strings.HasSuffix(got, "QUIT") {
		t.Errorf("no QUIT on Close: %s", got)
	}
}

func TestConcurrentSendsThroughSmallPool(t *testing.T) {
	const senders, each = 50, 40 // 2000 messages
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		// Faults spread through the run: every one must be retried, none duplicated.
		{Command: "RCPT", Times: 25, Do: sendertest.Reply(451, "4.3.0", "Try later")},
		{Command: "MAIL", Times: 10, Do: sendertest.Reply(421, "4.3.2", "Going away")},
		{Command: "DATA-END", Times: 10, Do: sendertest.Reply(451, "4.3.0", "Try later")},
	}})
	defer srv.Close()
	// Real time, with short waits: on a fake clock shared by 50 senders,
	// every one's backoff would advance every other's attempt timeout, and
	// an attempt timed out while the server said 250 is rightly resent
	// (at-least-once), which is not what this test counts.
	s, _ := newSender(t, srv, sender.Options{MaxConnections: 4, Retry: retry.Policy{
		MaxAttempts: 20, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, Clock: retry.RealClock{},
	}})

	var wg sync.WaitGroup
	errs := make(chan error, senders*each)
	ids := make(chan string, senders*each)
	for g := range senders {
		wg.Go(func() {
			for i := range each {
				m := newMsg(t, fmt.Sprintf("user%d-%d@example.com", g, i))
				res, err := s.Send(context.Background(), m)
				if err != nil {
					errs <- err
					continue
				}
				if res.Ambiguous {
					errs <- fmt.Errorf("message %s: delivery ambiguous, though no connection was cut", res.MessageID)
				}
				ids <- res.MessageID
			}
		})
	}
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Error(err)
	}
	sent := map[string]bool{}
	for id := range ids {
		sent[id] = true
	}
	seen := map[string]int{}
	for _, m := range srv.Messages() {
		seen[m.MessageID]++
	}
	if len(sent) != senders*each || len(seen) != senders*each {
		t.Fatalf("%d sent, %d distinct at the server, want %d", len(sent), len(seen), senders*each)
	}
	for id, n := range seen {
		if n != 1 || !sent[id] {
			t.Fatalf("message %s arrived %d times", id, n)
		}
	}
	// The pool, one new connection per 421, and one per
	// DefaultMaxMessagesPerConnection messages.
	if max := 4 + 10 + senders*each/sender.DefaultMaxMessagesPerConnection; srv.Connections() > max {
		t.Errorf("%d connections, want at most %d", srv.Connections(), max)
	}
}

func TestDialErrorsAreClassified(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().(*net.TCPAddr)
	l.Close() // nothing listens there now
	s, err := sender.New(sender.Options{Host: "127.0.0.1", Port: addr.Port, Telemetry: noTelemetry,
		MailOptions: []mail.Option{mail.WithTLSPolicy(mail.NoTLS)},
		Retry:       retry.Policy{MaxAttempts: 2, Clock: retrytest.NewClock()}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.Send(context.Background(), newMsg(t, "bob@example.com"))
	var se *sender.Error
	if !errors.As(err, &se) || se.Verdict.Reason != classify.ReasonConnectionRefused || se.Attempts != 2 || !errors.Is(err, sender.ErrDeferred) {
		t.Fatalf("err = %v, want connection refused twice, deferred", err)
	}
}

func TestSMTPUTF8OnlyWhenAnAddressNeedsIt(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()
	s, _ := newSender(t, srv, sender.Options{MaxConnections: 1})
	for _, to := range []string{"bob@example.com", "jörg@bücher.example"} {
		if _, err := s.Send(context.Background(), newMsg(t, to)); err != nil {
			t.Fatal(err)
		}
	}
	var mails []string
	for _, c := range srv.Commands() {
		if c.Verb == "MAIL" {
			mails = append(mails, c.Line)
		}
	}
	want := []string{
		"MAIL FROM:<alice@example.com> BODY=8BITMIME",
		"MAIL FROM:<alice@example.com> BODY=8BITMIME SMTPUTF8", // RFC 6531 §3.4
	}
	if !slices.Equal(mails, want) {
		t.Errorf("MAIL lines %q, want %q", mails, want)
	}
}
