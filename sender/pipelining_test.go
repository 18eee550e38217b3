package sender_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
)

// wire records, for each connection the Sender dials, every Write the
// client makes and every Read, with the bytes, below go-mail and the
// Sender's own wrappers: the bytes as the network carries them. The client
// uses a connection from one goroutine at a time, so the order of events
// is the order on the wire; the mutex is for the test reading them.
type wire struct {
	mu    sync.Mutex
	conns [][]wireEvent // by connection, in dial order
}

type wireEvent struct {
	read bool   // a Read, not a Write
	data []byte // the bytes written, or read
}

// dial is an Options.DialContext.
func (w *wire) dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conns = append(w.conns, nil)
	return &wireConn{Conn: nc, w: w, n: len(w.conns) - 1}, nil
}

func (w *wire) add(n int, e wireEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.conns[n] = append(w.conns[n], e)
}

type wireConn struct {
	net.Conn
	w *wire
	n int
}

func (c *wireConn) Write(p []byte) (int, error) {
	c.w.add(c.n, wireEvent{data: bytes.Clone(p)})
	return c.Conn.Write(p)
}

func (c *wireConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.add(c.n, wireEvent{read: true, data: bytes.Clone(p[:n])})
	return n, err
}

// connections returns how many connections were dialed.
func (w *wire) connections() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.conns)
}

// writes counts the Write calls on connection conn from event from on.
func (w *wire) writes(conn, from int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, e := range w.conns[conn][from:] {
		if !e.read {
			n++
		}
	}
	return n
}

// mark returns a position in connection conn's events (counting from 0),
// for flights and roundTrips from there on.
func (w *wire) mark(conn int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.conns[conn])
}

// flights returns what the client wrote on connection conn from event
// from on, one string per flight: all the writes between two reads, which
// the client sent without waiting for the server.
func (w *wire) flights(conn, from int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var (
		out     []string
		current []byte
		open    bool
	)
	for _, e := range w.conns[conn][from:] {
		if e.read {
			if open {
				out = append(out, string(current))
				current, open = nil, false
			}
			continue
		}
		current, open = append(current, e.data...), true
	}
	if open {
		out = append(out, string(current))
	}
	return out
}

// roundTrips counts, on connection conn from event from on, the times the
// client read after it had written: each is one wait for the server.
func (w *wire) roundTrips(conn, from int) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, wrote := 0, false
	for _, e := range w.conns[conn][from:] {
		switch {
		case !e.read:
			wrote = true
		case wrote:
			n, wrote = n+1, false
		}
	}
	return n
}

const wireHELO = "client.example.com"

// newWireSender returns a Sender for srv whose connections w records, with
// one connection at most so that sends reuse it.
func newWireSender(t *testing.T, srv *sendertest.Server, w *wire, pipelining bool) *sender.Sender {
	t.Helper()
	s, _ := newSender(t, srv, sender.Options{
		MaxConnections:    1,
		DisablePipelining: !pipelining,
		DialContext:       w.dial,
		MailOptions:       []mail.Option{mail.WithHELO(wireHELO)},
	})
	return s
}

// wireBody is the message content as it goes on the wire after DATA:
// dot-stuffed (RFC 5321 §4.5.2), then the final dot.
func wireBody(data []byte) string {
	var b strings.Builder
	for line := range strings.SplitAfterSeq(string(data), "\n") {
		if strings.HasPrefix(line, ".") {
			b.WriteByte('.')
		}
		b.WriteString(line)
	}
	return b.String() + ".\r\n"
}

// mailLine is the MAIL command of alice's messages to sendertest, which
// offers 8BITMIME.
const mailLine = "MAIL FROM:<alice@example.com> BODY=8BITMIME\r\n"

func rcptLine(addr string) string { return "RCPT TO:<" + addr + ">\r\n" }

// envelope is the flight of MAIL, the RCPTs and DATA, pipelined.
func envelope(rcpts ...string) string {
	s := mailLine
	for _, r := range rcpts {
		s += rcptLine(r)
	}
	return s + "DATA\r\n"
}

// conversation returns connection conn from event from on as turns: "C: "
// and the exact bytes of each client flight, "S: " and the codes of the
// replies the client read before its next flight ("S: 250 250 354").
func (w *wire) conversation(conn, from int) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var (
		out  []string
		turn []byte
		read bool
	)
	end := func() {
		switch {
		case len(turn) == 0:
		case read:
			out = append(out, "S: "+replyCodes(string(turn)))
		default:
			out = append(out, "C: "+string(turn))
		}
		turn = nil
	}
	for _, e := range w.conns[conn][from:] {
		if e.read != read {
			end()
			read = e.read
		}
		turn = append(turn, e.data...)
	}
	end()
	return out
}

// replyCodes returns the codes of the replies in s, one per reply (the
// last line of a multi-line reply), separated by spaces.
func replyCodes(s string) string {
	var codes []string
	for line := range strings.SplitSeq(strings.TrimSuffix(s, "\r\n"), "\r\n") {
		if len(line) == 3 || len(line) > 3 && line[3] == ' ' {
			codes = append(codes, line[:3])
		} else if len(line) < 4 || line[3] != '-' {
			codes = append(codes, "?"+line) // malformed or cut short
		}
	}
	return strings.Join(codes, " ")
}

func checkConversation(t *testing.T, what string, got, want []string) {
	t.Helper()
	if fmt.Sprintf("%q", got) == fmt.Sprintf("%q", want) {
		return
	}
	var b strings.Builder
	for i := range max(len(got), len(want)) {
		g, w := "(none)", "(none)"
		if i < len(got) {
			g = fmt.Sprintf("%q", got[i])
		}
		if i < len(want) {
			w = fmt.Sprintf("%q", want[i])
		}
		mark := " "
		if g != w {
			mark = "!"
		}
		fmt.Fprintf(&b, "%s turn %d:\n    got  %s\n    want %s\n", mark, i+1, g, w)
	}
	t.Errorf("%s: the conversation differs:\n%s", what, b.String())
}

// dialPhase is the conversation up to the first transaction: greeting,
// EHLO and its reply.
var dialPhase = []string{"S: 220", "C: EHLO " + wireHELO + "\r\n", "S: 250"}

// client is a client turn of a conversation.
func client(s string) string { return "C: " + s }

// server is a server turn of a conversation: the codes of its replies.
func server(codes string) string { return "S: " + codes }

// turns builds an expected conversation.
func turns(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

const (
	bob   = "bob@example.com"
	carol = "carol@example.com"
	dave  = "dave@example.com"
)

// storedBody returns the wire form of the i-th message srv stored.
func storedBody(t *testing.T, srv *sendertest.Server, i int) string {
	t.Helper()
	msgs := srv.Messages()
	if len(msgs) <= i {
		t.Fatalf("the server stored %d messages, want at least %d", len(msgs), i+1)
	}
	return wireBody(msgs[i].Data)
}

// checkRecipients compares each recipient's status and deciding reply
// (code and command) with want, "bob@example.com delivered 250 DATA-END".
func checkRecipients(t *testing.T, res *sender.Result, want ...string) {
	t.Helper()
	var got []string
	for _, r := range res.Recipients {
		got = append(got, fmt.Sprintf("%s %v %d %s", r.Address, r.Status, r.Verdict.Code, r.Verdict.Command))
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Errorf("recipients:\n got %q\nwant %q", got, want)
	}
}

func TestPipeliningTranscript(t *testing.T) {
	long := strings.Repeat("A line of a long message, to fill more than one write buffer.\r\n", 200)
	tests := []struct {
		name       string
		pipelining bool
		body       string
		want       func(body string) []string
	}{
		{"pipelining", true, "", func(body string) []string {
			return turns(dialPhase, []string{
				client(envelope(bob, carol)), server("250 250 250 354"),
				client(body), server("250"),
			})
		}},
		{"pipelining/long body", true, long, func(body string) []string {
			return turns(dialPhase, []string{
				client(envelope(bob, carol)), server("250 250 250 354"),
				client(body), server("250"),
			})
		}},
		{"no pipelining", false, "", func(body string) []string {
			return turns(dialPhase, []string{
				client(mailLine), server("250"),
				client(rcptLine(bob)), server("250"),
				client(rcptLine(carol)), server("250"),
				client("DATA\r\n"), server("354"),
				client(body), server("250"),
			})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sendertest.NewServer(sendertest.Options{})
			defer srv.Close()
			w := &wire{}
			s := newWireSender(t, srv, w, tt.pipelining)
			msg := newMsg(t, bob, carol)
			if tt.body != "" {
				msg.SetBodyString(mail.TypeTextPlain, tt.body)
			}
			if _, err := s.Send(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			body := storedBody(t, srv, 0)
			checkConversation(t, "connection 1", w.conversation(0, 0), tt.want(body))
			if !strings.HasSuffix(body, "\r\n.\r\n") {
				t.Errorf("the body flight ends %q, want the final dot", body[max(0, len(body)-10):])
			}
			// The body goes out through a 4 KiB buffer: one Write for a
			// short message, several for a long one, but one flight either
			// way.
			writes := w.writes(0, 0) - len(w.flights(0, 0))
			if short := len(body) < 4096; short != (writes == 0) {
				t.Errorf("a %d-byte body took %d writes beyond one per flight", len(body), writes)
			}
		})
	}
}

func TestPipeliningRefusedMAIL(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
				{Command: "MAIL", Times: 1, Do: sendertest.Reply(550, "5.7.1", "Refused by policy")},
			}})
			defer srv.Close()
			w := &wire{}
			s := newWireSender(t, srv, w, pipelining)

			res, err := s.Send(context.Background(), newMsg(t, bob, carol))
			if !errors.Is(err, sender.ErrMessageRejected) || res.Attempts != 1 {
				t.Fatalf("err = %v after %d attempts, want ErrMessageRejected after 1", err, res.Attempts)
			}
			checkRecipients(t, res, "bob@example.com rejected 550 MAIL", "carol@example.com rejected 550 MAIL")
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("the server stored %d messages", n)
			}
			// Pipelined, the RCPTs and DATA were already sent: their 503s are
			// read and nothing follows. No transaction was opened, so no
			// RSET.
			want := []string{client(envelope(bob, carol)), server("550 503 503 503")}
			if !pipelining {
				want = []string{client(mailLine), server("550")}
			}
			checkConversation(t, "connection 1", w.conversation(0, 0), turns(dialPhase, want))

			// The connection is still in step: the next message goes out on it.
			from := w.mark(0)
			if _, err := s.Send(context.Background(), newMsg(t, dave)); err != nil {
				t.Fatal(err)
			}
			if w.connections() != 1 || srv.Connections() != 1 {
				t.Errorf("%d connections, want the first one kept", srv.Connections())
			}
			if got := w.conversation(0, from); len(got) == 0 || got[0] != client(firstTurn(pipelining, dave)) {
				t.Errorf("the next send began %q", got)
			}
		})
	}
}

// firstTurn is the first client flight of a transaction to rcpts.
func firstTurn(pipelining bool, rcpts ...string) string {
	if pipelining {
		return envelope(rcpts...)
	}
	return mailLine
}

func TestPipeliningSomeRecipientsRefused(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
				{Command: "RCPT", Arg: carol, Do: sendertest.Reply(550, "5.1.1", "No such user")},
			}})
			defer srv.Close()
			w := &wire{}
			s := newWireSender(t, srv, w, pipelining)

			res, err := s.Send(context.Background(), newMsg(t, bob, carol, dave))
			if !errors.Is(err, sender.ErrRecipientsRejected) || errors.Is(err, sender.ErrMessageRejected) {
				t.Errorf("err = %v, want ErrRecipientsRejected only", err)
			}
			checkRecipients(t, res,
				"bob@example.com delivered 250 DATA-END",
				"carol@example.com rejected 550 RCPT",
				"dave@example.com delivered 250 DATA-END")
			msgs := srv.Messages()
			if len(msgs) != 1 || fmt.Sprint(msgs[0].To) != "[bob@example.com dave@example.com]" {
				t.Fatalf("the server stored %+v, want one message to bob and dave", msgs)
			}
			body := wireBody(msgs[0].Data)
			want := []string{
				client(envelope(bob, carol, dave)), server("250 250 550 250 354"),
				client(body), server("250"),
			}
			if !pipelining {
				want = []string{
					client(mailLine), server("250"),
					client(rcptLine(bob)), server("250"),
					client(rcptLine(carol)), server("550"),
					client(rcptLine(dave)), server("250"),
					client("DATA\r\n"), server("354"),
					client(body), server("250"),
				}
			}
			checkConversation(t, "connection 1", w.conversation(0, 0), turns(dialPhase, want))
		})
	}
}

func TestPipeliningAllRecipientsRefused(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
				{Command: "RCPT", Do: sendertest.Reply(550, "5.1.1", "No such user")},
			}})
			defer srv.Close()
			w := &wire{}
			s := newWireSender(t, srv, w, pipelining)

			res, err := s.Send(context.Background(), newMsg(t, bob, carol))
			if !errors.Is(err, sender.ErrRecipientsRejected) || errors.Is(err, sender.ErrMessageRejected) || res.Attempts != 1 {
				t.Errorf("err = %v after %d attempts, want ErrRecipientsRejected only, after 1", err, res.Attempts)
			}
			checkRecipients(t, res, "bob@example.com rejected 550 RCPT", "carol@example.com rejected 550 RCPT")
			if n := len(srv.Messages()) + len(srv.Rejected()); n != 0 {
				t.Errorf("the server received %d messages", n)
			}
			// MAIL opened a transaction: RSET closes it. Pipelined, DATA was
			// sent and refused (RFC 2920 §3.1) and no body follows; without
			// pipelining, DATA is never sent.
			want := []string{
				client(envelope(bob, carol)), server("250 550 550 554"),
				client("RSET\r\n"), server("250"),
			}
			if !pipelining {
				want = []string{
					client(mailLine), server("250"),
					client(rcptLine(bob)), server("550"),
					client(rcptLine(carol)), server("550"),
					client("RSET\r\n"), server("250"),
				}
			}
			checkConversation(t, "connection 1", w.conversation(0, 0), turns(dialPhase, want))
		})
	}
}

func TestPipeliningServiceClosingMidGroup(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
				{Command: "RCPT", Arg: carol, Times: 1, Do: sendertest.Reply(421, "4.3.2", "Service shutting down, closing channel")},
			}})
			defer srv.Close()
			w := &wire{}
			s := newWireSender(t, srv, w, pipelining)

			res, err := s.Send(context.Background(), newMsg(t, bob, carol, dave))
			if err != nil || res.Attempts != 2 {
				t.Fatalf("err = %v after %d attempts, want delivered at the second", err, res.Attempts)
			}
			checkRecipients(t, res,
				"bob@example.com delivered 250 DATA-END",
				"carol@example.com delivered 250 DATA-END",
				"dave@example.com delivered 250 DATA-END")
			for _, r := range res.Recipients {
				if r.Attempt != 2 {
					t.Errorf("%s decided at attempt %d, want 2", r.Address, r.Attempt)
				}
			}
			msgs := srv.Messages()
			if len(msgs) != 1 || msgs[0].Conn != 2 || fmt.Sprint(msgs[0].To) != "[bob@example.com carol@example.com dave@example.com]" {
				t.Fatalf("the server stored %+v, want one copy for each recipient, on connection 2", msgs)
			}
			if srv.Connections() != 2 || w.connections() != 2 {
				t.Errorf("%d connections (%d dialed), want 2", srv.Connections(), w.connections())
			}

			// After the 421 the first connection carries nothing more, not
			// even QUIT: the server has closed it.
			first := []string{client(envelope(bob, carol, dave)), server("250 250 421")}
			if !pipelining {
				first = []string{
					client(mailLine), server("250"),
					client(rcptLine(bob)), server("250"),
					client(rcptLine(carol)), server("421"),
				}
			}
			checkConversation(t, "connection 1", w.conversation(0, 0), turns(dialPhase, first))
			if pipelining {
				body := wireBody(msgs[0].Data)
				checkConversation(t, "connection 2", w.conversation(1, 0), turns(dialPhase, []string{
					client(envelope(bob, carol, dave)), server("250 250 250 250 354"),
					client(body), server("250"),
				}))
			}
		})
	}
}

func TestPipeliningLateReplies(t *testing.T) {
	// Each reply comes 50 ms after its command was read, one after another:
	// the client must pair each with its own command, not with whatever
	// has arrived.
	late := func(a sendertest.Action) sendertest.Action { return sendertest.Delay(50*time.Millisecond, a) }
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "MAIL", Do: late(sendertest.Default())},
		{Command: "RCPT", Arg: carol, Do: late(sendertest.Reply(550, "5.1.1", "No such user"))},
		{Command: "RCPT", Do: late(sendertest.Default())},
	}})
	defer srv.Close()
	w := &wire{}
	s := newWireSender(t, srv, w, true)

	res, err := s.Send(context.Background(), newMsg(t, bob, carol, dave))
	if !errors.Is(err, sender.ErrRecipientsRejected) || res.Attempts != 1 {
		t.Errorf("err = %v after %d attempts, want ErrRecipientsRejected after 1", err, res.Attempts)
	}
	checkRecipients(t, res,
		"bob@example.com delivered 250 DATA-END",
		"carol@example.com rejected 550 RCPT",
		"dave@example.com delivered 250 DATA-END")
	if r := res.Recipients[1]; r.Reply != "No such user" || r.Verdict.Enhanced != "5.1.1" {
		t.Errorf("carol's deciding reply %q (%s), want the 550's", r.Reply, r.Verdict.Enhanced)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || fmt.Sprint(msgs[0].To) != "[bob@example.com dave@example.com]" {
		t.Fatalf("the server stored %+v, want one message to bob and dave", msgs)
	}
	checkConversation(t, "connection 1", w.conversation(0, 0), turns(dialPhase, []string{
		client(envelope(bob, carol, dave)), server("250 250 550 250 354"),
		client(wireBody(msgs[0].Data)), server("250"),
	}))
}

func TestPipeliningIntermediateReplyWithoutRecipients(t *testing.T) {
	// A server that answers DATA with 354 although it accepted no
	// recipient (RFC 2920 §3.1 says it must not) gets an empty message, not
	// the body, and the transaction is then reset.
	for _, end := range []struct {
		name string
		do   sendertest.Action
		code string
	}{
		{"refused", sendertest.Reply(554, "5.5.1", "No valid recipients"), "554"},
		{"accepted", sendertest.Default(), "250"},
	} {
		t.Run("empty message "+end.name, func(t *testing.T) {
			srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
				{Command: "RCPT", Do: sendertest.Reply(550, "5.1.1", "No such user")},
				{Command: "DATA", Do: sendertest.Reply(354, "", "go ahead")},
				{Command: "DATA-END", Do: end.do},
			}})
			defer srv.Close()
			w := &wire{}
			s := newWireSender(t, srv, w, true)

			res, err := s.Send(context.Background(), newMsg(t, bob, carol))
			if !errors.Is(err, sender.ErrRecipientsRejected) || errors.Is(err, sender.ErrMessageRejected) || res.Attempts != 1 {
				t.Errorf("err = %v after %d attempts, want ErrRecipientsRejected only, after 1", err, res.Attempts)
			}
			checkRecipients(t, res, "bob@example.com rejected 550 RCPT", "carol@example.com rejected 550 RCPT")
			if res.Response != "" {
				t.Errorf("Response = %q: the empty message's reply was taken for a delivery", res.Response)
			}
			for _, m := range append(srv.Messages(), srv.Rejected()...) {
				if len(m.Data) != 0 || len(m.To) != 0 {
					t.Errorf("the server received %q for %v, want an empty message for nobody", m.Data, m.To)
				}
			}
			checkConversation(t, "connection 1", w.conversation(0, 0), turns(dialPhase, []string{
				client(envelope(bob, carol)), server("250 550 550 354"),
				client(".\r\n"), server(end.code),
				client("RSET\r\n"), server("250"),
			}))
		})
	}
}

func TestPipeliningNothingExtraOnAKeptConnection(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := sendertest.NewServer(sendertest.Options{})
			defer srv.Close()
			w := &wire{}
			s := newWireSender(t, srv, w, pipelining)
			for range 2 {
				if _, err := s.Send(context.Background(), newMsg(t, bob)); err != nil {
					t.Fatal(err)
				}
			}
			var want []string
			for i := range 2 {
				body := storedBody(t, srv, i)
				if pipelining {
					want = append(want, client(envelope(bob)), server("250 250 354"), client(body), server("250"))
				} else {
					want = append(want,
						client(mailLine), server("250"),
						client(rcptLine(bob)), server("250"),
						client("DATA\r\n"), server("354"),
						client(body), server("250"))
				}
			}
			checkConversation(t, "the kept connection", w.conversation(0, 0), turns(dialPhase, want))
			if w.connections() != 1 {
				t.Errorf("%d connections, want 1", w.connections())
			}
		})
	}
}

func TestPipeliningRoundTrips(t *testing.T) {
	for _, n := range []int{1, 5} {
		for _, pipelining := range []bool{true, false} {
			want := 3 + n // MAIL, each RCPT, DATA, the final dot
			if pipelining {
				want = 2 // MAIL to DATA, the final dot
			}
			t.Run(fmt.Sprintf("recipients=%d/pipelining=%v", n, pipelining), func(t *testing.T) {
				srv := sendertest.NewServer(sendertest.Options{})
				defer srv.Close()
				w := &wire{}
				s := newWireSender(t, srv, w, pipelining)
				var to []string
				for i := range n {
					to = append(to, fmt.Sprintf("rcpt%d@example.com", i))
				}
				if _, err := s.Send(context.Background(), newMsg(t, to...)); err != nil {
					t.Fatal(err)
				}
				// The second message, on the kept connection: no dial phase.
				from := w.mark(0)
				if _, err := s.Send(context.Background(), newMsg(t, to...)); err != nil {
					t.Fatal(err)
				}
				if got := w.roundTrips(0, from); got != want {
					t.Errorf("%d round trips, want %d", got, want)
				}
				if got := len(w.flights(0, from)); got != want {
					t.Errorf("%d flights, want %d", got, want)
				}
				if w.connections() != 1 {
					t.Errorf("%d connections, want 1", w.connections())
				}
			})
		}
	}
}

// TestPipeliningGroupFitsTheWindow sends to many recipients through small
// TCP windows. A client whose writes block must keep each pipelined group
// within the window (RFC 2920 §3.1): otherwise the server, blocked writing
// replies the client does not read yet, stops reading, the client blocks
// writing the rest of the group, and both wait until the timeout.
func TestPipeliningGroupFitsTheWindow(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			srv := newSmallWindowServer(t)
			s, err := sender.New(sender.Options{
				Host: "127.0.0.1", Port: srv.port, MaxConnections: 1,
				CommandTimeout: 2 * time.Second, DisablePipelining: !pipelining,
				Retry:       retry.Policy{MaxAttempts: 1},
				MailOptions: []mail.Option{mail.WithTLSPolicy(mail.NoTLS)},
				DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
					var d net.Dialer
					c, err := d.DialContext(ctx, network, address)
					if err == nil {
						smallWindow(c)
					}
					return c, err
				},
				Telemetry: noTelemetry,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			var to []string
			for i := range 1500 {
				to = append(to, fmt.Sprintf("recipient-%04d@example.com", i))
			}
			res, err := s.Send(context.Background(), newMsg(t, to...))
			if err != nil {
				t.Errorf("%d recipients through a 4 KiB window: %.200v", len(to), err)
			}
			if res != nil && len(res.Delivered()) != len(to) {
				t.Errorf("%d of %d recipients delivered", len(res.Delivered()), len(to))
			}
		})
	}
}

// smallWindow shrinks a TCP connection's socket buffers, and so its
// window, as a loaded host or a small-memory relay has them; it also turns
// off Linux's buffer autotuning, which loopback tests otherwise hide
// behind.
func smallWindow(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
		tc.SetWriteBuffer(4096)
	}
}

// smallWindowServer is a minimal pipelining SMTP server with small socket
// buffers that writes each reply as soon as it has read the command, with a
// blocking write, as many servers do. sendertest cannot be given small
// buffers: its sockets autotune.
type smallWindowServer struct {
	port int
}

func newSmallWindowServer(t *testing.T) *smallWindowServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			smallWindow(c)
			wg.Go(func() { serveSmallWindow(c) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return &smallWindowServer{port: ln.Addr().(*net.TCPAddr).Port}
}

func serveSmallWindow(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	reply := func(s string) bool { _, err := io.WriteString(c, s); return err == nil }
	if !reply("220 small ESMTP\r\n") {
		return
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			if !reply("250-small\r\n250 PIPELINING\r\n") {
				return
			}
		case "MAIL":
			if !reply("250 2.1.0 Sender OK\r\n") {
				return
			}
		case "RCPT":
			if !reply("250 2.1.5 Recipient OK\r\n") {
				return
			}
		case "DATA":
			if !reply("354 Go ahead\r\n") {
				return
			}
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			if !reply("250 2.0.0 Queued\r\n") {
				return
			}
		case "QUIT":
			reply("221 2.0.0 Bye\r\n")
			return
		default:
			if !reply("250 2.0.0 OK\r\n") {
				return
			}
		}
	}
}
