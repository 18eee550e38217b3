//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/internal/testservers"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
)

// txFastRetry retries at once, in real time: Toxiproxy's faults are real
// network events, so these tests cannot use a fake clock.
func txFastRetry(maxAttempts int, onRetry retry.OnRetry) retry.Policy {
	return retry.Policy{
		MaxAttempts: maxAttempts, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond,
		MaxElapsedTime: 30 * time.Second, OnRetry: onRetry,
	}
}

// txSetup starts a sendertest server behind a new proxy of tp.
func txSetup(t *testing.T, tp *testservers.Toxiproxy) (*sendertest.Server, *testservers.Proxy) {
	t.Helper()
	srv := sendertest.NewServer(sendertest.Options{})
	t.Cleanup(srv.Close)
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	return srv, tp.NewProxy(t, name, srv.Addr)
}

// txCopies counts the server's stored copies of each Message-ID.
func txCopies(srv *sendertest.Server) map[string]int {
	n := map[string]int{}
	for _, m := range srv.Messages() {
		n[m.MessageID]++
	}
	return n
}

func TestToxiproxy(t *testing.T) {
	skVerifyNoLeaks(t)
	tp := testservers.StartToxiproxy(t)

	t.Run("latency", func(t *testing.T) { txLatency(t, tp) })
	t.Run("cut in DATA", func(t *testing.T) { txCutInData(t, tp) })
	t.Run("cut after the final dot", func(t *testing.T) { txCutAfterDot(t, tp) })
	t.Run("stalled server", func(t *testing.T) { txStalled(t, tp) })
}

// txLatency: 20 ms each way (a 40 ms round trip). Every send succeeds; a
// message on a kept connection costs two round trips with PIPELINING and
// 3+N (MAIL, N RCPTs, DATA, the final dot) without.
func txLatency(t *testing.T, tp *testservers.Toxiproxy) {
	const (
		oneWay   = 20 * time.Millisecond
		messages = 5
	)
	rcpts := []string{"bob@example.com", "carol@example.com", "dave@example.com"}
	perMessage := map[bool]time.Duration{}
	for _, pipelining := range []bool{true, false} {
		srv, proxy := txSetup(t, tp)
		proxy.Latency(t, "downstream", oneWay, 0)
		proxy.Latency(t, "upstream", oneWay, 0)
		d := &skDialer{}
		s := skNewSender(t, proxy.Listen, d, sender.Options{DisablePipelining: !pipelining, Retry: txFastRetry(1, nil)})

		var ids []string
		var kept time.Duration
		for i := range messages {
			start := time.Now()
			res, err := s.Send(context.Background(), skMsg(t, fmt.Sprintf("latency %d", i), "", rcpts...))
			if err != nil {
				t.Fatalf("pipelining %v, message %d: %v", pipelining, i, err)
			}
			if i > 0 { // the first one also dialed
				kept += time.Since(start)
			}
			ids = append(ids, res.MessageID)
		}
		trips := d.roundTrips()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		perMessage[pipelining] = kept / (messages - 1)

		wantTrips := int64(3 + len(rcpts))
		if pipelining {
			wantTrips = 2
		}
		if want := 1 + messages*wantTrips; trips != want { // 1: EHLO
			t.Errorf("pipelining %v: %d round trips, want %d", pipelining, trips, want)
		}
		if floor := time.Duration(wantTrips) * 2 * oneWay; perMessage[pipelining] < floor {
			t.Errorf("pipelining %v: %v per message, less than %d round trips (%v): is the latency toxic on?",
				pipelining, perMessage[pipelining], wantTrips, floor)
		}
		copies := txCopies(srv)
		for _, id := range ids {
			if copies[id] != 1 {
				t.Errorf("message %s stored %d times, want 1", id, copies[id])
			}
		}
		if len(srv.Messages()) != messages || srv.Connections() != 1 {
			t.Errorf("server stored %d messages over %d connections, want %d over 1", len(srv.Messages()), srv.Connections(), messages)
		}
		srv.Close()
		proxy.Delete(t)
	}
	t.Logf("per message on a kept connection, %v round trip, %d recipients: %v with PIPELINING, %v without",
		2*oneWay, len(rcpts), perMessage[true], perMessage[false])
	if perMessage[true] >= perMessage[false] {
		t.Errorf("PIPELINING did not help: %v per message, %v without", perMessage[true], perMessage[false])
	}
}

// txCutInData: the proxy closes the connection after the first 4 KiB the
// client sends, in the middle of a 1 MiB body. The send recovers on a new
// connection (the retry hook removes the toxic, so only the first
// connection is cut) and the server stores the message once.
func txCutInData(t *testing.T, tp *testservers.Toxiproxy) {
	srv, proxy := txSetup(t, tp)
	toxic := proxy.LimitData(t, "upstream", 4096)

	var verdicts []classify.Verdict
	onRetry := func(_ context.Context, _ int, v classify.Verdict, _ time.Duration) {
		verdicts = append(verdicts, v)
		proxy.RemoveToxic(t, toxic)
	}
	d := &skDialer{}
	s := skNewSender(t, proxy.Listen, d, sender.Options{Retry: txFastRetry(3, onRetry), CommandTimeout: 10 * time.Second})
	body := strings.Repeat("All work and no play makes Jack a dull boy.\r\n", (1<<20)/46)
	res, err := s.Send(context.Background(), skMsg(t, "cut in DATA", body, "bob@example.com"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	if res.Attempts != 2 || len(verdicts) != 1 {
		t.Fatalf("%d attempts, retry verdicts %v; want 2 attempts, one retry", res.Attempts, verdicts)
	}
	// Where the client noticed the cut depends on the socket buffers: most
	// often a write of the body fails (DATA); if the whole body fit in the
	// buffers, the read of the final reply does (DATA-END), and then the
	// client cannot tell whether the server has the message.
	v := verdicts[0]
	if v.Class != classify.Transient || v.Action != classify.Reconnect || v.Reason != classify.ReasonConnectionLost ||
		(v.Command != classify.CmdDATA && v.Command != classify.CmdDataEnd) || v.Ambiguous != (v.Command == classify.CmdDataEnd) {
		t.Errorf("verdict on the cut %v at %q (ambiguous %v), want a connection lost in DATA", v, v.Command, v.Ambiguous)
	}
	if res.Ambiguous != v.Ambiguous {
		t.Errorf("Result.Ambiguous %v, verdict ambiguous %v", res.Ambiguous, v.Ambiguous)
	}
	t.Logf("the cut was seen at %s (ambiguous %v)", v.Command, v.Ambiguous)

	// The server never got the final dot on the cut connection: one copy.
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].MessageID != res.MessageID || len(srv.Rejected()) != 0 {
		t.Fatalf("server stored %d messages (%d rejected), want exactly %s", len(msgs), len(srv.Rejected()), res.MessageID)
	}
	if len(msgs[0].Data) < len(body) {
		t.Errorf("stored %d bytes, want the whole %d-byte body", len(msgs[0].Data), len(body))
	}
	if srv.Connections() != 2 || d.dials() != 2 || d.open() != 0 || msgs[0].Conn != 2 {
		t.Errorf("server saw %d connections (stored on %d), client opened %d, %d still open; want 2, stored on the second, none open",
			srv.Connections(), msgs[0].Conn, d.dials(), d.open())
	}
}

// txCutAfterDot: the proxy closes the connection in the middle of the
// server's reply to the final dot. The server has the message; the client
// cannot know, marks the send ambiguous and sends it again, with the same
// Message-ID: delivered at least once, and here exactly twice.
func txCutAfterDot(t *testing.T, tp *testservers.Toxiproxy) {
	srv, proxy := txSetup(t, tp)

	// How many bytes the server sends up to the final reply, measured on
	// a first message (sendertest's replies have a fixed length).
	probe := &skDialer{}
	s := skNewSender(t, proxy.Listen, probe, sender.Options{Retry: txFastRetry(1, nil)})
	pr, err := s.Send(context.Background(), skMsg(t, "probe", "", "bob@example.com"))
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	upToReply := int(probe.bytesRead()) // greeting, EHLO, MAIL/RCPT/DATA and final replies
	s.Close()
	srv.Reset()
	fv := pr.Recipients[0].Verdict
	finalReply := fmt.Sprintf("%d %s %s\r\n", fv.Code, fv.Enhanced, pr.Response)

	// Cut after the first byte of the final reply: the server has answered,
	// so it has the message. (Cut right before the reply instead, and the
	// proxy closes after the 354, before the body: ambiguous too, but the
	// server has nothing. Cut after the code, and the client takes the
	// unterminated line at EOF for the 250 it is.)
	toxic := proxy.LimitData(t, "downstream", upToReply-len(finalReply)+1)
	var verdicts []classify.Verdict
	onRetry := func(_ context.Context, _ int, v classify.Verdict, _ time.Duration) {
		verdicts = append(verdicts, v)
		proxy.RemoveToxic(t, toxic)
	}
	d := &skDialer{}
	s = skNewSender(t, proxy.Listen, d, sender.Options{Retry: txFastRetry(3, onRetry), CommandTimeout: 10 * time.Second})
	res, err := s.Send(context.Background(), skMsg(t, "cut after the dot", "", "bob@example.com"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if res.Attempts != 2 || len(verdicts) != 1 {
		t.Fatalf("%d attempts, retry verdicts %v; want 2 attempts, one retry", res.Attempts, verdicts)
	}
	v := verdicts[0]
	// The client got "2" and then EOF: a truncated reply, which classify
	// treats like a lost connection, with its own reason.
	if v.Action != classify.Reconnect || v.Reason != classify.ReasonProtocolError || v.Command != classify.CmdDataEnd || !v.Ambiguous {
		t.Errorf("verdict on the cut %v at %q (ambiguous %v), want an ambiguous loss after the final dot", v, v.Command, v.Ambiguous)
	}
	if !res.Ambiguous || res.Recipients[0].Status != sender.Delivered || res.Recipients[0].Attempt != 2 {
		t.Errorf("result ambiguous %v, recipient %+v; want ambiguous, delivered at attempt 2", res.Ambiguous, res.Recipients[0])
	}
	if c := txCopies(srv); len(srv.Messages()) != 2 || c[res.MessageID] != 2 {
		t.Errorf("server copies %v, want two of %s", c, res.MessageID)
	}
	if d.dials() != 2 || d.open() != 0 {
		t.Errorf("client opened %d connections, %d still open; want 2, none open", d.dials(), d.open())
	}
}

// txStalled: the server stops answering (a timeout toxic with no timeout
// holds the server's data for ever). With a 300 ms CommandTimeout and two
// attempts the send gives up within its budget with a timeout verdict;
// once the server answers again, sends recover, and the message that failed
// goes through once.
func txStalled(t *testing.T, tp *testservers.Toxiproxy) {
	const commandTimeout = 300 * time.Millisecond
	srv, proxy := txSetup(t, tp)
	var verdicts []classify.Verdict
	onRetry := func(_ context.Context, _ int, v classify.Verdict, _ time.Duration) { verdicts = append(verdicts, v) }
	d := &skDialer{}
	s := skNewSender(t, proxy.Listen, d, sender.Options{Retry: txFastRetry(2, onRetry), CommandTimeout: commandTimeout},
		mail.WithTimeout(commandTimeout)) // bounds the greeting and EHLO of a new connection

	ctx := context.Background()
	before, err := s.Send(ctx, skMsg(t, "before the stall", "", "bob@example.com"))
	if err != nil {
		t.Fatalf("before the stall: %v", err)
	}

	toxic := proxy.Timeout(t, "downstream", 0)
	stalled := skMsg(t, "during the stall", "", "bob@example.com")
	start := time.Now()
	res, err := s.Send(ctx, stalled)
	elapsed := time.Since(start)
	// Attempt 1 waits one CommandTimeout for MAIL's reply on the pooled
	// connection, attempt 2 one for the greeting of a new one; the rest is
	// slack for a busy CI machine.
	if budget := 2*commandTimeout + 2*time.Second; elapsed > budget {
		t.Errorf("the stalled send took %v, more than its budget of %v", elapsed, budget)
	}
	t.Logf("stalled send gave up after %v", elapsed)
	var se *sender.Error
	if !errors.As(err, &se) || !errors.Is(err, sender.ErrDeferred) || !errors.Is(err, retry.ErrAttemptsExhausted) {
		t.Fatalf("err = %v, want ErrDeferred after exhausted attempts", err)
	}
	if res.Attempts != 2 || len(verdicts) != 1 {
		t.Errorf("%d attempts, %d retries; want 2 and 1", res.Attempts, len(verdicts))
	}
	for i, v := range append(verdicts, se.Verdict) {
		if v.Class != classify.Transient || v.Action != classify.Reconnect || v.Reason != classify.ReasonTimeout {
			t.Errorf("attempt %d: verdict %v at %q, want a timeout", i+1, v, v.Command)
		}
	}
	// Where each attempt stalled: the pooled connection at MAIL, the new
	// one at its greeting.
	if len(verdicts) == 1 && (verdicts[0].Command != classify.CmdMAIL || se.Verdict.Command != classify.CmdConnect) {
		t.Errorf("stalled at %q then %q, want MAIL then CONNECT", verdicts[0].Command, se.Verdict.Command)
	}
	if res.Ambiguous {
		t.Error("a stall before the final dot is not ambiguous")
	}

	proxy.RemoveToxic(t, toxic)
	after, err := s.Send(ctx, skMsg(t, "after the stall", "", "bob@example.com"))
	if err != nil {
		t.Fatalf("after the stall: %v", err)
	}
	// The failed message, sent again: the same Message-ID, stored once.
	again, err := s.Send(ctx, stalled)
	if err != nil {
		t.Fatalf("the stalled message, again: %v", err)
	}
	if again.MessageID != res.MessageID {
		t.Errorf("resent as %s, first sent as %s", again.MessageID, res.MessageID)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d.open() != 0 {
		t.Errorf("%d connections still open after Close", d.open())
	}

	copies := txCopies(srv)
	for _, id := range []string{before.MessageID, res.MessageID, after.MessageID} {
		if copies[id] != 1 {
			t.Errorf("message %s stored %d times, want 1", id, copies[id])
		}
	}
	if len(srv.Messages()) != 3 {
		t.Errorf("server stored %d messages, want 3", len(srv.Messages()))
	}
}
