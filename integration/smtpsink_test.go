//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/internal/testservers"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/retry/retrytest"
	"github.com/postwise/postwise/sender"
)

// skMaxAttempts is the retry budget of the fault matrix: smtp-sink faults
// every time, so a transient cell uses all of it.
const skMaxAttempts = 3

// skCell is one cell of the matrix: an smtp-sink fault option (-r soft
// reject 450 4.3.0, -f hard reject 500 5.3.0, -Q 421 and disconnect, -q
// disconnect without a reply) at some commands, as smtp-sink names them.
type skCell struct {
	flag, cmds string
	atMostOnce bool
	skWant
}

// skWant is what the Sender must make of it.
type skWant struct {
	class     classify.Class
	action    classify.Action
	reason    classify.Reason
	command   string // the command the deciding reply (or loss) answered
	attempts  int
	dials     int // connections opened: one per attempt when each one failed
	sentinels []error
	ambiguous bool
	delivered bool
	captured  int // SMTPSink.Count: transactions smtp-sink got up to the final dot
}

func TestSMTPSinkFaults(t *testing.T) {
	skVerifyNoLeaks(t)

	soft := func(command string) skWant { // 450 4.3.0 "Error: command failed"
		// 450 means "mailbox unavailable" only where there is an address;
		// a refused greeting is a service unavailable for now.
		reason := classify.ReasonNone
		switch command {
		case classify.CmdMAIL, classify.CmdRCPT:
			reason = classify.ReasonMailboxUnavailable
		case classify.CmdConnect:
			reason = classify.ReasonServiceUnavailable
		}
		return skWant{class: classify.Transient, action: classify.Retry, reason: reason, command: command,
			attempts: skMaxAttempts, sentinels: []error{sender.ErrDeferred, retry.ErrAttemptsExhausted}}
	}
	hard := func(command string) skWant { // 500 5.3.0 "Error: command failed"
		reason := classify.ReasonSyntax
		if command == classify.CmdConnect {
			reason = classify.ReasonNoService // RFC 5321 §3.1: a refused greeting
		}
		return skWant{class: classify.Permanent, action: classify.FailMessage, reason: reason, command: command,
			attempts: 1, dials: 1, sentinels: []error{sender.ErrMessageRejected, retry.ErrPermanent}}
	}
	// 421 and a silent disconnect lose the connection: every attempt
	// opens a new one.
	gone := func(command string) skWant {
		return skWant{class: classify.Transient, action: classify.Reconnect, reason: classify.ReasonServiceUnavailable, command: command,
			attempts: skMaxAttempts, dials: skMaxAttempts, sentinels: []error{sender.ErrDeferred, retry.ErrAttemptsExhausted}}
	}
	lost := func(command string) skWant {
		w := gone(command)
		w.reason = classify.ReasonConnectionLost
		return w
	}
	with := func(w skWant, f func(*skWant)) skWant { f(&w); return w }
	// A transaction refused for now (MAIL, RCPT, DATA, the final dot)
	// ends with RSET, and the connection stays in the pool: all attempts
	// use the one connection.
	oneConn := func(w skWant) skWant { return with(w, func(w *skWant) { w.dials = 1 }) }
	// A greeting or EHLO refusal fails the dial: each attempt dials anew.
	perAttempt := func(w skWant) skWant { return with(w, func(w *skWant) { w.dials = w.attempts }) }
	// smtp-sink writes the capture file before it answers the final dot, so
	// every transaction that got that far is captured, faulted or not.
	captured := func(w skWant) skWant { return with(w, func(w *skWant) { w.captured = w.attempts }) }
	delivered := skWant{class: classify.Success, action: classify.Done, command: classify.CmdDataEnd,
		attempts: 1, dials: 1, delivered: true, captured: 1}

	cells := []skCell{
		// CONNECT. -r and -f send a 450/500 greeting and then go on serving
		// the session; go-mail gives up at the greeting and the Sender
		// closes the connection. -Q says 421 and closes; -q just closes.
		{flag: "-r", cmds: "CONNECT", skWant: perAttempt(soft(classify.CmdConnect))},
		{flag: "-f", cmds: "CONNECT", skWant: hard(classify.CmdConnect)},
		{flag: "-Q", cmds: "CONNECT", skWant: gone(classify.CmdConnect)},
		{flag: "-q", cmds: "CONNECT", skWant: lost(classify.CmdConnect)},

		// EHLO. smtp-sink faults EHLO and HELO separately. go-mail answers
		// a refused EHLO with HELO, which smtp-sink accepts unless it is
		// faulted too: -r/-f EHLO alone is a successful plain-SMTP session
		// (X-Client-Proto: SMTP in the capture), not a failure.
		{flag: "-r", cmds: "EHLO", skWant: delivered},
		{flag: "-f", cmds: "EHLO", skWant: delivered},
		// With both refused, the Sender blames the first refusal, EHLO's.
		{flag: "-r", cmds: "EHLO,HELO", skWant: perAttempt(soft(classify.CmdEHLO))},
		{flag: "-f", cmds: "EHLO,HELO", skWant: hard(classify.CmdEHLO)},
		// -Q/-q EHLO end the session: go-mail's HELO fallback meets a closed
		// connection, and the EHLO reply (or its absence) decides.
		{flag: "-Q", cmds: "EHLO", skWant: gone(classify.CmdEHLO)},
		{flag: "-q", cmds: "EHLO", skWant: lost(classify.CmdEHLO)},

		{flag: "-r", cmds: "MAIL", skWant: oneConn(soft(classify.CmdMAIL))},
		{flag: "-f", cmds: "MAIL", skWant: hard(classify.CmdMAIL)},
		{flag: "-Q", cmds: "MAIL", skWant: gone(classify.CmdMAIL)},
		{flag: "-q", cmds: "MAIL", skWant: lost(classify.CmdMAIL)},

		{flag: "-r", cmds: "RCPT", skWant: oneConn(soft(classify.CmdRCPT))},
		// A 5xx to RCPT refuses that recipient, not the message.
		{flag: "-f", cmds: "RCPT", skWant: with(hard(classify.CmdRCPT), func(w *skWant) {
			w.action, w.sentinels = classify.FailRecipient, []error{sender.ErrRecipientsRejected}
		})},
		{flag: "-Q", cmds: "RCPT", skWant: gone(classify.CmdRCPT)},
		{flag: "-q", cmds: "RCPT", skWant: lost(classify.CmdRCPT)},

		{flag: "-r", cmds: "DATA", skWant: oneConn(soft(classify.CmdDATA))},
		{flag: "-f", cmds: "DATA", skWant: hard(classify.CmdDATA)},
		{flag: "-Q", cmds: "DATA", skWant: gone(classify.CmdDATA)},
		{flag: "-q", cmds: "DATA", skWant: lost(classify.CmdDATA)},

		{flag: "-r", cmds: ".", skWant: captured(oneConn(soft(classify.CmdDataEnd)))},
		{flag: "-f", cmds: ".", skWant: captured(hard(classify.CmdDataEnd))},
		// A 421 after the final dot is a reply: the message was refused, so
		// the resend is not a possible duplicate.
		{flag: "-Q", cmds: ".", skWant: captured(gone(classify.CmdDataEnd))},
		// Silence after the final dot: the server may have the message (and
		// smtp-sink does). At-least-once sends it again, with the same
		// Message-ID, every attempt.
		{flag: "-q", cmds: ".", skWant: captured(with(lost(classify.CmdDataEnd), func(w *skWant) { w.ambiguous = true }))},
		// At-most-once stops after the first loss and reports it.
		{flag: "-q", cmds: ".", atMostOnce: true, skWant: with(lost(classify.CmdDataEnd), func(w *skWant) {
			w.ambiguous, w.attempts, w.dials, w.captured = true, 1, 1, 1
			w.sentinels = []error{sender.ErrAmbiguous}
		})},
	}

	for _, c := range cells {
		name := c.flag + " " + c.cmds
		if c.atMostOnce {
			name += " at-most-once"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			skRunCell(t, c)
		})
	}
}

func skRunCell(t *testing.T, c skCell) {
	sink := testservers.StartSMTPSink(t, "-v", c.flag, c.cmds)
	d := &skDialer{}
	verdicts := &skVerdicts{}
	clock := retrytest.NewClock()
	s := skNewSender(t, sink.Addr, d, sender.Options{
		Retry:          retry.Policy{MaxAttempts: skMaxAttempts, Clock: clock, OnRetry: verdicts.hook},
		CommandTimeout: 10 * time.Second, // smtp-sink never stalls here; a hang is a bug
		AtMostOnce:     c.atMostOnce,
	})

	res, err := s.Send(context.Background(), skMsg(t, "smtp-sink "+c.flag+" "+c.cmds, "", "bob@example.com"))
	if cerr := s.Close(); cerr != nil {
		t.Errorf("Close: %v", cerr)
	}
	if res == nil {
		t.Fatalf("no Result; err %v", err)
	}

	// The verdict that decided: the error's, or the final dot's reply.
	var v classify.Verdict
	var se *sender.Error
	switch {
	case errors.As(err, &se):
		v = se.Verdict
		if se.Attempts != res.Attempts {
			t.Errorf("Error.Attempts %d, Result.Attempts %d", se.Attempts, res.Attempts)
		}
	case err != nil:
		t.Fatalf("err %v is not a *sender.Error", err)
	default:
		v = res.Recipients[0].Verdict
	}
	if v.Class != c.class || v.Action != c.action || v.Reason != c.reason || v.Command != c.command {
		t.Errorf("verdict %v/%v/%q at %q, want %v/%v/%q at %q (%v)",
			v.Class, v.Action, v.Reason, v.Command, c.class, c.action, c.reason, c.command, v)
	}
	// Every retry saw the same fault: smtp-sink faults every time.
	for i, rv := range verdicts.get() {
		if rv.Class != c.class || rv.Action != c.action || rv.Reason != c.reason || rv.Command != c.command {
			t.Errorf("retry %d after verdict %v at %q, want the same fault every time", i+1, rv, rv.Command)
		}
	}
	if n := len(verdicts.get()); n != c.attempts-1 {
		t.Errorf("%d retries, want %d", n, c.attempts-1)
	}
	if res.Attempts != c.attempts {
		t.Errorf("%d attempts, want %d", res.Attempts, c.attempts)
	}
	if res.Ambiguous != c.ambiguous {
		t.Errorf("Ambiguous = %v, want %v", res.Ambiguous, c.ambiguous)
	}

	if c.delivered {
		if err != nil {
			t.Fatalf("Send: %v", err)
		}
		if got := res.Delivered(); fmt.Sprint(got) != "[bob@example.com]" {
			t.Errorf("Delivered() = %v", got)
		}
	} else {
		for _, want := range c.sentinels {
			if !errors.Is(err, want) {
				t.Errorf("err = %v, want errors.Is %v", err, want)
			}
		}
		if got := res.Delivered(); len(got) != 0 {
			t.Errorf("Delivered() = %v, want none", got)
		}
		st := res.Recipients[0].Status
		switch {
		case c.atMostOnce && c.ambiguous:
			if st != sender.Unknown {
				t.Errorf("recipient %v, want Unknown", st)
			}
		case c.class == classify.Permanent:
			if st != sender.Rejected {
				t.Errorf("recipient %v, want Rejected", st)
			}
		default:
			if st != sender.Deferred {
				t.Errorf("recipient %v, want Deferred", st)
			}
		}
	}

	// A failed connection is never reused, and none is left open.
	if got := d.dials(); got != c.dials {
		t.Errorf("%d connections opened, want %d", got, c.dials)
	}
	if n := d.open(); n != 0 {
		t.Errorf("%d connections still open after Close", n)
	}

	// The same from smtp-sink's side (-v logs each session and command):
	// its sessions, and the RSETs that kept a connection fit for reuse
	// after a refused RCPT or DATA. A refused MAIL opened no transaction,
	// and a reply to the final dot ended it, so neither needs one.
	wantResets := 0
	if c.cmds == "RCPT" || c.cmds == "DATA" {
		switch c.flag {
		case "-r":
			wantResets = c.attempts
		case "-f":
			wantResets = 1
		}
	}
	var sessions, resets int
	skWaitFor(t, 5*time.Second, func() bool {
		out := sink.Output()
		sessions, resets = strings.Count(out, ": connect ("), strings.Count(out, ": RSET\n")
		return sessions >= c.dials && resets >= wantResets
	})
	if sessions != c.dials || resets != wantResets {
		t.Errorf("smtp-sink saw %d sessions and %d RSETs, want %d and %d", sessions, resets, c.dials, wantResets)
	}

	// What smtp-sink captured: each transaction that reached the final dot,
	// each one the same message.
	var msgs []string
	skWaitFor(t, 5*time.Second, func() bool { msgs = sink.Messages(t); return len(msgs) >= c.captured })
	if len(msgs) != c.captured {
		t.Errorf("smtp-sink captured %d messages, want %d", len(msgs), c.captured)
	}
	for _, m := range msgs {
		if id := skMessageID(m); id != res.MessageID {
			t.Errorf("captured Message-ID %q, want %q", id, res.MessageID)
		}
		if !strings.Contains(m, "X-Rcpt-Args: <bob@example.com>") {
			t.Errorf("capture without bob's RCPT:\n%s", m)
		}
		// -r/-f EHLO: the session went on after go-mail's HELO fallback.
		wantProto := "ESMTP"
		if strings.Contains(c.cmds, "EHLO") {
			wantProto = "SMTP"
		}
		if !strings.Contains(m, "X-Client-Proto: "+wantProto+"\n") {
			t.Errorf("capture not over %s:\n%s", wantProto, m)
		}
	}
	if t.Failed() {
		t.Logf("result %+v\nerr %v", res, err)
	}
}

// skWaitFor polls cond until it holds or timeout passes; the caller checks
// the outcome. smtp-sink writes its capture files on its own schedule.
func skWaitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSMTPSinkAdvertisesPipelining checks smtp-sink's EHLO reply: it offers
// PIPELINING unless -r or -f is given (both imply -p), whatever the
// command they name; -Q and -q leave it on.
func TestSMTPSinkAdvertisesPipelining(t *testing.T) {
	skVerifyNoLeaks(t)
	for _, tt := range []struct {
		args       []string
		pipelining bool
	}{
		{nil, true},
		{[]string{"-r", "RCPT"}, false},
		{[]string{"-f", "QUIT"}, false},
		{[]string{"-Q", "RCPT"}, true},
		{[]string{"-q", "RCPT"}, true},
		{[]string{"-p"}, false},
	} {
		t.Run(fmt.Sprint(tt.args), func(t *testing.T) {
			t.Parallel()
			sink := testservers.StartSMTPSink(t, tt.args...)
			conn, err := textproto.Dial("tcp", sink.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, _, err := conn.ReadResponse(220); err != nil {
				t.Fatalf("greeting: %v", err)
			}
			id, err := conn.Cmd("EHLO client.example.com")
			if err != nil {
				t.Fatal(err)
			}
			conn.StartResponse(id)
			_, msg, err := conn.ReadResponse(250)
			conn.EndResponse(id)
			if err != nil {
				t.Fatalf("EHLO: %v", err)
			}
			if got := strings.Contains(msg, "\nPIPELINING"); got != tt.pipelining {
				t.Errorf("PIPELINING offered: %v, want %v; EHLO reply:\n%s", got, tt.pipelining, msg)
			}
			conn.Cmd("QUIT")
		})
	}
}

// TestSMTPSinkDelivers sends several messages through one Sender, with
// PIPELINING (smtp-sink offers it) and without, and counts the round trips
// on the one connection they share: MAIL, RCPT and DATA in one flight and
// the body in a second with PIPELINING; one per command without.
func TestSMTPSinkDelivers(t *testing.T) {
	skVerifyNoLeaks(t)
	const messages = 5
	rcpts := []string{"bob@example.com", "carol@example.com", "dave@example.com"}
	for _, tt := range []struct {
		name       string
		disable    bool
		perMessage int64
	}{
		{"pipelining", false, 2},
		{"without pipelining", true, int64(3 + len(rcpts))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sink := testservers.StartSMTPSink(t)
			d := &skDialer{}
			s := skNewSender(t, sink.Addr, d, sender.Options{DisablePipelining: tt.disable, Retry: retry.Policy{MaxAttempts: 1}})

			ids := map[string]bool{}
			var afterFirst int64
			for i := range messages {
				res, err := s.Send(context.Background(), skMsg(t, fmt.Sprintf("message %d", i), "", rcpts...))
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if res.Attempts != 1 || len(res.Delivered()) != len(rcpts) || res.Response == "" {
					t.Errorf("message %d: %d attempts, delivered %v, response %q", i, res.Attempts, res.Delivered(), res.Response)
				}
				ids[res.MessageID] = true
				if i == 0 {
					afterFirst = d.roundTrips()
				}
			}
			// Messages after the first ride the pooled connection.
			if got := (d.roundTrips() - afterFirst) / (messages - 1); got != tt.perMessage || (d.roundTrips()-afterFirst)%(messages-1) != 0 {
				t.Errorf("%d round trips for %d messages on a kept connection, want %d each", d.roundTrips()-afterFirst, messages-1, tt.perMessage)
			}
			// The first paid for EHLO too (the greeting needs no write).
			if afterFirst != 1+tt.perMessage {
				t.Errorf("first message: %d round trips, want %d", afterFirst, 1+tt.perMessage)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if d.dials() != 1 || d.open() != 0 {
				t.Errorf("%d connections, %d left open; want one, closed", d.dials(), d.open())
			}

			var msgs []string
			skWaitFor(t, 5*time.Second, func() bool { msgs = sink.Messages(t); return len(msgs) >= messages })
			got := map[string]int{}
			for _, m := range msgs {
				got[skMessageID(m)]++
				if n := strings.Count(m, "X-Rcpt-Args: "); n != len(rcpts) {
					t.Errorf("capture with %d recipients, want %d", n, len(rcpts))
				}
			}
			if len(msgs) != messages || len(got) != messages {
				t.Errorf("smtp-sink captured %d messages with %d Message-IDs, want %d", len(msgs), len(got), messages)
			}
			for id, n := range got {
				if !ids[id] || n != 1 {
					t.Errorf("Message-ID %q captured %d times (sent: %v)", id, n, ids[id])
				}
			}
		})
	}
}
