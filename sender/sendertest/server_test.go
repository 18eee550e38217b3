package sendertest_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/postwise/postwise/sender/sendertest"
	"go.uber.org/goleak"
)

// Close must wait for every goroutine the server started; goleak checks
// that after all tests, including those that left clients stalled.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPlainSend(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()

	to := []string{"b@example.com", "c@example.com"}
	if err := sendMail(srv, "a@example.com", to, body); err != nil {
		t.Fatal(err)
	}

	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Conn != 1 || m.From != "a@example.com" || !slices.Equal(m.To, to) ||
		string(m.Data) != body || m.MessageID != "1@example.com" || m.QueueID != "ST000001" || m.Code != 250 {
		t.Errorf("message = %+v", m)
	}
	if got, want := verbs(srv.Commands()), "EHLO MAIL RCPT RCPT DATA DATA-END QUIT"; got != want {
		t.Errorf("verbs = %q, want %q", got, want)
	}
	if got, want := srv.Commands()[1].Line, "MAIL FROM:<a@example.com> BODY=8BITMIME SMTPUTF8"; got != want {
		t.Errorf("MAIL line = %q, want %q", got, want)
	}
	if srv.Connections() != 1 || len(srv.Rejected()) != 0 {
		t.Errorf("connections = %d, rejected = %d", srv.Connections(), len(srv.Rejected()))
	}
}

func TestDotStuffingAndHostname(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Hostname: "mx.example.net"})
	defer srv.Close()
	c := dialRaw(t, srv)
	c.expect(
		step{"", "220 mx.example.net ESMTP sendertest ready"},
		step{"HELO client\r\n", "250 mx.example.net"},
		step{"MAIL FROM:<>\r\n", "250 2.1.0 Sender OK"},
		step{"RCPT TO:<b@example.com>\r\n", "250 2.1.5 Recipient OK"},
		step{"DATA\r\n", "354 Start mail input; end with <CRLF>.<CRLF>"},
		step{"Subject: x\r\n\r\n..leading dot\r\n.\r\n", "250 2.0.0 OK: queued as ST000001"},
	)
	m := srv.Messages()[0]
	if got, want := string(m.Data), "Subject: x\r\n\r\n.leading dot\r\n"; got != want || m.From != "" || m.MessageID != "" {
		t.Errorf("data = %q, want %q; message %+v", got, want, m)
	}
}

func TestPipelining(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "RCPT", Arg: "c@example.com", Do: sendertest.Reply(550, "5.1.1", "No such user")},
	}})
	defer srv.Close()
	c := dialRaw(t, srv)
	c.expect(step{"", "220 localhost ESMTP sendertest ready"})

	// RFC 2920: one write, replies in order, the refused recipient in the
	// middle answered in its place.
	c.send("EHLO client\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\n" +
		"RCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\nDATA\r\n")
	for _, want := range []string{
		ehloReply,
		"250 2.1.0 Sender OK",
		"250 2.1.5 Recipient OK",
		"550 5.1.1 No such user",
		"250 2.1.5 Recipient OK",
		"354 Start mail input; end with <CRLF>.<CRLF>",
	} {
		if got := c.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	c.send(body + ".\r\nMAIL FROM:<a@example.com>\r\nRSET\r\nNOOP\r\nQUIT\r\n")
	for _, want := range []string{"250 2.0.0 OK: queued as ST000001", "250 2.1.0 Sender OK", "250 2.0.0 OK", "250 2.0.0 OK", "221 2.0.0 Bye", "EOF"} {
		if got := c.reply(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if got := srv.Messages()[0].To; !slices.Equal(got, []string{"b@example.com", "d@example.com"}) {
		t.Errorf("To = %q, want only the accepted recipients", got)
	}
	if got, want := verbs(srv.Commands()), "EHLO MAIL RCPT RCPT RCPT DATA DATA-END MAIL RSET NOOP QUIT"; got != want {
		t.Errorf("verbs = %q, want %q", got, want)
	}
}

// TestScriptedReply checks, per command, that a Reply rule is what the
// client reads, and that it has the effect of a real reply with that code.
func TestScriptedReply(t *testing.T) {
	const greet = "220 localhost ESMTP sendertest ready"
	tests := []struct {
		name      string
		rule      sendertest.Rule
		steps     []step
		delivered int
		rejected  []int // codes of rejected messages
	}{
		{
			name: "CONNECT 554 then only QUIT",
			rule: sendertest.Rule{Command: "CONNECT", Do: sendertest.Reply(554, "5.7.1", "Go away")},
			steps: []step{
				{"", "554 5.7.1 Go away"},
				{"EHLO client\r\n", "503 5.5.1 Service refused, send QUIT"},
				{"QUIT\r\n", "221 2.0.0 Bye"},
				{"", "EOF"},
			},
		},
		{
			name:  "CONNECT 421 closes",
			rule:  sendertest.Rule{Command: "CONNECT", Do: sendertest.Reply(421, "4.3.2", "Try later")},
			steps: []step{{"", "421 4.3.2 Try later"}, {"", "EOF"}},
		},
		{
			name: "EHLO multi-line capabilities",
			rule: sendertest.Rule{Command: "EHLO", Do: sendertest.Reply(250, "", "mx\nSIZE 10\nDSN")},
			steps: []step{
				{"", greet},
				{"EHLO client\r\n", "250-mx\n250-SIZE 10\n250 DSN"},
				{"MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Sender OK"},
			},
		},
		{
			name:  "EHLO refused, HELO works",
			rule:  sendertest.Rule{Command: "EHLO", Do: sendertest.Reply(502, "5.5.1", "Say HELO")},
			steps: []step{{"", greet}, {"EHLO client\r\n", "502 5.5.1 Say HELO"}, {"HELO client\r\n", "250 localhost"}},
		},
		{
			name: "MAIL 451 leaves no transaction",
			rule: sendertest.Rule{Command: "MAIL", Do: sendertest.Reply(451, "4.3.0", "Try again")},
			steps: []step{
				{"", greet},
				{"EHLO client\r\n", ehloReply},
				{"MAIL FROM:<a@example.com>\r\n", "451 4.3.0 Try again"},
				{"RCPT TO:<b@example.com>\r\n", "503 5.5.1 Send MAIL first"},
			},
		},
		{
			name: "RCPT refused for one recipient",
			rule: sendertest.Rule{Command: "RCPT", Arg: "BOB@", Do: sendertest.Reply(550, "5.1.1", "Unknown\nuser")},
			steps: []step{
				{"", greet},
				{"EHLO client\r\n", ehloReply},
				{"MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Sender OK"},
				{"RCPT TO:<bob@example.com>\r\n", "550-5.1.1 Unknown\n550 5.1.1 user"},
				{"RCPT TO:<carol@example.com>\r\n", "250 2.1.5 Recipient OK"},
				{"DATA\r\n", "354 Start mail input; end with <CRLF>.<CRLF>"},
				{body + ".\r\n", "250 2.0.0 OK: queued as ST000001"},
			},
			delivered: 1,
		},
		{
			name: "DATA 554 reads no content",
			rule: sendertest.Rule{Command: "DATA", Do: sendertest.Reply(554, "5.3.4", "No thanks")},
			steps: []step{
				{"", greet},
				{"EHLO client\r\n", ehloReply},
				{"MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Sender OK"},
				{"RCPT TO:<b@example.com>\r\n", "250 2.1.5 Recipient OK"},
				{"DATA\r\n", "554 5.3.4 No thanks"},
				{"NOOP\r\n", "250 2.0.0 OK"},
			},
		},
		{
			name: "DATA custom 354",
			rule: sendertest.Rule{Command: "DATA", Do: sendertest.Reply(354, "", "Go on")},
			steps: []step{
				{"", greet},
				{"EHLO client\r\n", ehloReply},
				{"MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Sender OK"},
				{"RCPT TO:<b@example.com>\r\n", "250 2.1.5 Recipient OK"},
				{"DATA\r\n", "354 Go on"},
				{body + ".\r\n", "250 2.0.0 OK: queued as ST000001"},
			},
			delivered: 1,
		},
		{
			name: "DATA-END 451 rejects the message",
			rule: sendertest.Rule{Command: "DATA-END", Arg: "subject: hi", Do: sendertest.Reply(451, "4.3.0", "Queue full")},
			steps: []step{
				{"", greet},
				{"EHLO client\r\n", ehloReply},
				{"MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Sender OK"},
				{"RCPT TO:<b@example.com>\r\n", "250 2.1.5 Recipient OK"},
				{"DATA\r\n", "354 Start mail input; end with <CRLF>.<CRLF>"},
				{body + ".\r\n", "451 4.3.0 Queue full"},
				{"RCPT TO:<b@example.com>\r\n", "503 5.5.1 Send MAIL first"},
			},
			rejected: []int{451},
		},
		{
			name:  "RSET 500",
			rule:  sendertest.Rule{Command: "RSET", Do: sendertest.Reply(500, "5.5.2", "What")},
			steps: []step{{"", greet}, {"RSET\r\n", "500 5.5.2 What"}},
		},
		{
			name:  "NOOP 421 closes",
			rule:  sendertest.Rule{Command: "NOOP", Do: sendertest.Reply(421, "4.4.2", "Idle")},
			steps: []step{{"", greet}, {"NOOP\r\n", "421 4.4.2 Idle"}, {"", "EOF"}},
		},
		{
			name:  "QUIT custom, still closes",
			rule:  sendertest.Rule{Command: "quit", Do: sendertest.Reply(221, "", "See you")},
			steps: []step{{"", greet}, {"QUIT\r\n", "221 See you"}, {"", "EOF"}},
		},
		{
			name:  "Raw malformed reply",
			rule:  sendertest.Rule{Command: "NOOP", Times: 1, Do: sendertest.Raw("2x0 garbage\r\n")},
			steps: []step{{"", greet}, {"NOOP\r\n", "2x0 garbage"}, {"NOOP\r\n", "250 2.0.0 OK"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{tt.rule}})
			defer srv.Close()
			dialRaw(t, srv).expect(tt.steps...)
			if got := len(srv.Messages()); got != tt.delivered {
				t.Errorf("delivered %d messages, want %d", got, tt.delivered)
			}
			var codes []int
			for _, m := range srv.Rejected() {
				codes = append(codes, m.Code)
			}
			if !slices.Equal(codes, tt.rejected) {
				t.Errorf("rejected codes = %v, want %v", codes, tt.rejected)
			}
		})
	}
}

func TestDrop(t *testing.T) {
	tests := []struct {
		command  string
		rejected int
	}{
		{"CONNECT", 0}, {"EHLO", 0}, {"MAIL", 0}, {"RCPT", 0}, {"DATA", 0}, {"DATA-END", 1},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
				{Command: tt.command, Times: 1, Do: sendertest.Drop()},
			}})
			defer srv.Close()
			if err := sendMail(srv, "a@example.com", []string{"b@example.com"}, body); err == nil {
				t.Fatal("first send succeeded through a dropped connection")
			}
			rejected := srv.Rejected()
			if len(rejected) != tt.rejected || len(srv.Messages()) != 0 {
				t.Fatalf("rejected %d, delivered %d", len(rejected), len(srv.Messages()))
			}
			if tt.rejected > 0 && (rejected[0].Code != 0 || rejected[0].MessageID != "1@example.com") {
				t.Errorf("rejected message = %+v, want Code 0", rejected[0])
			}
			// The rule is used up: the retry on a new connection succeeds.
			if err := sendMail(srv, "a@example.com", []string{"b@example.com"}, body); err != nil {
				t.Fatal(err)
			}
			if m := srv.Messages(); len(m) != 1 || m[0].Conn != 2 {
				t.Errorf("messages = %+v, want one on connection 2", m)
			}
		})
	}
}

func TestStallUntilClientGivesUp(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "DATA-END", Do: sendertest.Stall()},
	}})
	defer srv.Close()
	c := dialRaw(t, srv)
	c.expect(
		step{"", "220 localhost ESMTP sendertest ready"},
		step{"HELO client\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n", "250 localhost"},
		step{"", "250 2.1.0 Sender OK"},
		step{"", "250 2.1.5 Recipient OK"},
		step{"", "354 Start mail input; end with <CRLF>.<CRLF>"},
	)
	c.send(body + ".\r\nNOOP\r\n")
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
	if _, err := c.r.ReadByte(); err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("read = %v, want a timeout", err)
	}
	// The message is on record as soon as the server chose not to answer.
	if r := srv.Rejected(); len(r) != 1 || r[0].Code != 0 {
		t.Fatalf("rejected = %+v, want one with Code 0", r)
	}
	c.conn.Close() // the client gives up; the server's handler ends
}

func TestStallEndedByClose(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "CONNECT", Do: sendertest.Stall()},
	}})
	c := dialRaw(t, srv)
	c.send("EHLO client\r\n")
	srv.Close() // must not wait for the client
	if got := c.reply(); got != "EOF" {
		t.Errorf("got %q, want EOF", got)
	}
}

func TestDelay(t *testing.T) {
	const d = 20 * time.Millisecond
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "NOOP", Times: 1, Do: sendertest.Delay(d, sendertest.Reply(250, "2.0.0", "Slow"))},
		{Command: "NOOP", Times: 1, Do: sendertest.Delay(d, sendertest.Default())},
		{Command: "RSET", Do: sendertest.Delay(time.Hour, sendertest.Default())},
	}})
	c := dialRaw(t, srv)
	c.expect(step{"", "220 localhost ESMTP sendertest ready"})
	c.expect(
		step{"NOOP\r\n", "250 2.0.0 Slow"},
		step{"NOOP\r\n", "250 2.0.0 OK"},
		step{"NOOP\r\n", "250 2.0.0 OK"}, // both rules used up
	)
	c.send("RSET\r\n")
	start := time.Now()
	srv.Close() // cuts the hour short
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Close took %v during a Delay", elapsed)
	}
	if got := c.reply(); got != "EOF" {
		t.Errorf("got %q, want EOF", got)
	}
}

func TestDelayWaits(t *testing.T) {
	const d = 20 * time.Millisecond
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "NOOP", Do: sendertest.Delay(d, sendertest.Default())},
	}})
	defer srv.Close()
	c := dialRaw(t, srv)
	c.expect(step{"", "220 localhost ESMTP sendertest ready"})
	start := time.Now()
	c.expect(step{"NOOP\r\n", "250 2.0.0 OK"})
	if elapsed := time.Since(start); elapsed < d {
		t.Errorf("reply came after %v, want at least %v", elapsed, d)
	}
}

// TestTimesAcrossConnections: "451 twice, then 250", where each attempt is
// a new connection, as a retrying client makes them.
func TestTimesAcrossConnections(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "RCPT", Times: 2, Do: sendertest.Reply(451, "4.7.1", "Greylisted, try again later")},
	}})
	defer srv.Close()
	for i := range 3 {
		err := sendMail(srv, "a@example.com", []string{"b@example.com"}, body)
		if i < 2 {
			if !isReply(err, 451, "4.7.1") {
				t.Fatalf("attempt %d: err = %v, want a 451", i+1, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("attempt 3: %v", err)
		}
	}
	if m := srv.Messages(); len(m) != 1 || m[0].Conn != 3 {
		t.Errorf("messages = %+v, want one, on connection 3", m)
	}
	if srv.Connections() != 3 {
		t.Errorf("connections = %d, want 3", srv.Connections())
	}
}

func TestMaxRecipients(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{MaxRecipients: 2})
	defer srv.Close()
	dialRaw(t, srv).expect(
		step{"", "220 localhost ESMTP sendertest ready"},
		step{"EHLO client\r\n", ehloReply},
		step{"MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Sender OK"},
		step{"RCPT TO:<b@example.com>\r\n", "250 2.1.5 Recipient OK"},
		step{"RCPT TO:<c@example.com>\r\n", "250 2.1.5 Recipient OK"},
		step{"RCPT TO:<d@example.com>\r\n", "452 4.5.3 Too many recipients"},
		step{"DATA\r\n", "354 Start mail input; end with <CRLF>.<CRLF>"},
		step{body + ".\r\n", "250 2.0.0 OK: queued as ST000001"},
		// A new transaction starts counting again.
		step{"MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Sender OK"},
		step{"RCPT TO:<d@example.com>\r\n", "250 2.1.5 Recipient OK"},
	)
	if got := srv.Messages()[0].To; !slices.Equal(got, []string{"b@example.com", "c@example.com"}) {
		t.Errorf("To = %q", got)
	}
}

func TestRulesChangeWhileRunning(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			srv.AddRule(sendertest.Rule{Command: "VRFY", Do: sendertest.Reply(550, "5.0.0", "x")})
			srv.SetRules()
		}
	}()
	for range 5 {
		if err := sendMail(srv, "a@example.com", []string{"b@example.com"}, body); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	srv.SetRules(sendertest.Rule{Command: "MAIL", Do: sendertest.Reply(550, "5.7.1", "Blocked")})
	if err := sendMail(srv, "a@example.com", []string{"b@example.com"}, body); err == nil {
		t.Fatal("send succeeded after SetRules blocked MAIL")
	}
	srv.Reset()
	if len(srv.Messages()) != 0 || len(srv.Commands()) != 0 || srv.Connections() != 6 {
		t.Errorf("after Reset: %d messages, %d commands, %d connections", len(srv.Messages()), len(srv.Commands()), srv.Connections())
	}
}

func TestCloseWaitsForIdleConnections(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{})
	for range 3 {
		dialRaw(t, srv).expect(step{"", "220 localhost ESMTP sendertest ready"})
	}
	srv.Close()
	srv.Close() // idempotent
	if err := goleak.Find(); err != nil {
		t.Error(err)
	}
}

func TestUnstartedServer(t *testing.T) {
	srv := sendertest.NewUnstartedServer(sendertest.Options{})
	defer srv.Close()
	if srv.Host() != "127.0.0.1" || srv.Port() == 0 {
		t.Fatalf("Addr = %q", srv.Addr)
	}
	srv.AddRule(sendertest.Rule{Command: "CONNECT", Do: sendertest.Reply(220, "", "custom")})
	srv.Start()
	dialRaw(t, srv).expect(step{"", "220 custom"})
}

func TestUnstartedServerClose(t *testing.T) {
	sendertest.NewUnstartedServer(sendertest.Options{}).Close()
}

func TestCommandErrors(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()
	dialRaw(t, srv).expect(
		step{"", "220 localhost ESMTP sendertest ready"},
		step{"MAIL FROM:<a@example.com>\r\n", "503 5.5.1 Send EHLO first"},
		step{"EHLO\r\n", "501 5.5.4 EHLO requires a domain or address"},
		step{"FOO\r\n", "500 5.5.2 Command not recognized"},
		step{"DATA-END\r\n", "500 5.5.2 Command not recognized"},
		step{"CONNECT\r\n", "500 5.5.2 Command not recognized"},
		step{"EHLO client\r\n", ehloReply},
		step{"MAIL FROM:a@example.com\r\n", "250 2.1.0 Sender OK"},
		step{"MAIL FROM:<a@example.com>\r\n", "503 5.5.1 Nested MAIL command"},
		step{"DATA\r\n", "554 5.5.1 No valid recipients"},
		step{"RCPT bob\r\n", "501 5.5.2 Syntax: RCPT TO:<address>"},
		step{"STARTTLS\r\n", "502 5.5.1 STARTTLS not available"},
		step{"AUTH PLAIN\r\n", "502 5.5.1 AUTH not available"},
	)
}

func TestLineTooLong(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()
	dialRaw(t, srv).expect(
		step{"", "220 localhost ESMTP sendertest ready"},
		step{"NOOP " + strings.Repeat("x", 70<<10) + "\r\n", "500 5.5.6 Line too long"},
		step{"", "EOF"},
	)
}
