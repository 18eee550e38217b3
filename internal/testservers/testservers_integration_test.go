//go:build integration

package testservers_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postwise/postwise/internal/testservers"
)

// message builds a small RFC 5322 message with the given Message-ID.
func message(id, subject string) []byte {
	return []byte("From: sender@example.test\r\n" +
		"To: rcpt@example.test\r\n" +
		"Subject: " + subject + "\r\n" +
		"Message-ID: <" + id + ">\r\n" +
		"Date: " + time.Now().Format(time.RFC1123Z) + "\r\n" +
		"\r\n" +
		"hello from testservers\r\n")
}

// sendOn sends one message on an open client and resets it for the next.
func sendOn(c *smtp.Client, id string) error {
	if err := c.Mail("sender@example.test"); err != nil {
		return err
	}
	if err := c.Rcpt("rcpt@example.test"); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(message(id, "test "+id)); err != nil {
		return err
	}
	return w.Close()
}

// code returns the SMTP reply code of err, or 0.
func code(err error) int {
	var tpErr *textproto.Error
	if errors.As(err, &tpErr) {
		return tpErr.Code
	}
	return 0
}

func dialSMTP(t *testing.T, addr string) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Hello("client.example.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	return c
}

func TestMailpit(t *testing.T) {
	m := testservers.StartMailpit(t, testservers.MailpitOptions{AuthAcceptAny: true, AuthAllowInsecure: true})

	t.Run("deliver and count with paging", func(t *testing.T) {
		const n = 260 // more than one API page (250)
		c := dialSMTP(t, m.SMTPAddr)
		if err := c.Auth(smtp.PlainAuth("", "user", "any-password", "127.0.0.1")); err != nil {
			t.Fatalf("AUTH PLAIN with any password: %v", err)
		}
		for i := range n {
			if err := sendOn(c, fmt.Sprintf("msg-%d@testservers", i)); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
		if err := c.Quit(); err != nil {
			t.Fatalf("QUIT: %v", err)
		}
		if got := m.Count(t); got != n {
			t.Fatalf("Count = %d, want %d", got, n)
		}
		ids := m.MessageIDs(t)
		if len(ids) != n {
			t.Fatalf("%d distinct Message-IDs, want %d", len(ids), n)
		}
		for i := range n {
			id := fmt.Sprintf("msg-%d@testservers", i)
			if ids[id] != 1 {
				t.Errorf("Message-ID %s seen %d times, want 1", id, ids[id])
			}
		}
		msgs := m.Messages(t)
		if len(msgs) != n || msgs[0].Username != "user" || msgs[0].Subject == "" {
			t.Errorf("Messages: %d messages, first %+v", len(msgs), msgs[0])
		}
		m.DeleteAll(t)
		if got := m.Count(t); got != 0 {
			t.Fatalf("Count after DeleteAll = %d, want 0", got)
		}
	})

	t.Run("chaos", func(t *testing.T) {
		got := m.SetChaos(t, testservers.Chaos{Recipient: testservers.ChaosTrigger{ErrorCode: 550, Probability: 100}})
		if got.Recipient != (testservers.ChaosTrigger{ErrorCode: 550, Probability: 100}) || got.Sender.Probability != 0 {
			t.Fatalf("SetChaos applied %+v", got)
		}
		if g := m.GetChaos(t); g != got {
			t.Fatalf("GetChaos = %+v, want %+v", g, got)
		}
		c := dialSMTP(t, m.SMTPAddr)
		if err := sendOn(c, "chaos-rcpt@testservers"); code(err) != 550 {
			t.Fatalf("with a 100%% RCPT trigger: err = %v, want a 550 reply", err)
		}
		_ = c.Reset()

		m.SetChaos(t, testservers.Chaos{Sender: testservers.ChaosTrigger{ErrorCode: 451, Probability: 100}})
		if err := sendOn(c, "chaos-mail@testservers"); code(err) != 451 {
			t.Fatalf("with a 100%% MAIL trigger: err = %v, want a 451 reply", err)
		}
		_ = c.Reset()

		m.ResetChaos(t)
		if err := sendOn(c, "chaos-off@testservers"); err != nil {
			t.Fatalf("after ResetChaos: %v", err)
		}
		if got := m.Count(t); got != 1 {
			t.Fatalf("Count = %d, want 1 (only the send after ResetChaos)", got)
		}
	})

	t.Run("chaos at start and probability", func(t *testing.T) {
		m2 := testservers.StartMailpit(t, testservers.MailpitOptions{
			Chaos: &testservers.Chaos{Sender: testservers.ChaosTrigger{Probability: 30}},
		})
		if g := m2.GetChaos(t); g.Sender != (testservers.ChaosTrigger{ErrorCode: 451, Probability: 30}) {
			t.Fatalf("GetChaos = %+v, want Sender 451 at 30%%", g)
		}
		c := dialSMTP(t, m2.SMTPAddr)
		const n = 200
		failed := 0
		for i := range n {
			err := sendOn(c, fmt.Sprintf("p-%d@testservers", i))
			switch {
			case err == nil:
			case code(err) == 451:
				failed++
				_ = c.Reset()
			default:
				t.Fatalf("send %d: %v", i, err)
			}
		}
		// 30% of 200 is 60; the binomial standard deviation is about 6.5.
		if failed < 25 || failed > 100 {
			t.Errorf("%d of %d sends got 451, want about 60", failed, n)
		}
		if got := m2.Count(t); got != n-failed {
			t.Errorf("Count = %d, want %d", got, n-failed)
		}
	})
}

// smtpConv runs a raw SMTP conversation: it reads the greeting, then sends
// each command and reads one (possibly multi-line) reply. It returns the
// reply codes seen and the error that ended it (io.EOF for a disconnect).
func smtpConv(t *testing.T, addr string, cmds ...string) (codes []int, err error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	tp := textproto.NewConn(conn)
	read := func() error {
		c, _, err := tp.ReadResponse(0)
		if c != 0 {
			codes = append(codes, c)
		}
		if err != nil && c != 0 {
			return nil // a reply, just not 2xx/3xx
		}
		return err
	}
	if err := read(); err != nil {
		return codes, err
	}
	for _, cmd := range cmds {
		if err := tp.PrintfLine("%s", cmd); err != nil {
			return codes, err
		}
		if err := read(); err != nil {
			return codes, err
		}
	}
	return codes, nil
}

var fullSession = []string{
	"EHLO client.example.test",
	"MAIL FROM:<sender@example.test>",
	"RCPT TO:<rcpt@example.test>",
	"DATA",
	"Subject: sink test\r\nMessage-ID: <sink@testservers>\r\n\r\nhello\r\n.",
	"QUIT",
}

func TestSMTPSink(t *testing.T) {
	t.Run("accepts and captures", func(t *testing.T) {
		s := testservers.StartSMTPSink(t)
		codes, err := smtpConv(t, s.Addr, fullSession...)
		if err != nil {
			t.Fatalf("conversation: %v (codes %v)", err, codes)
		}
		want := []int{220, 250, 250, 250, 354, 250, 221}
		if fmt.Sprint(codes) != fmt.Sprint(want) {
			t.Fatalf("codes %v, want %v", codes, want)
		}
		c := dialSMTP(t, s.Addr)
		if err := sendOn(c, "netsmtp@testservers"); err != nil {
			t.Fatalf("net/smtp send: %v", err)
		}
		c.Quit()
		waitFor(t, func() bool { return s.Count(t) == 2 })
		found := 0
		for _, m := range s.Messages(t) {
			if strings.Contains(m, "Message-ID: <sink@testservers>") && strings.Contains(m, "X-Rcpt-Args: <rcpt@example.test>") {
				found++
			}
		}
		if found != 1 {
			t.Errorf("the raw session's message was captured %d times, want 1:\n%q", found, s.Messages(t))
		}
	})

	// Each fault, at each command: the reply codes up to the fault and how the
	// conversation ended.
	faults := []struct {
		flag, cmd string
		codes     []int
		eof       bool // the server closed the connection
		captured  int  // what SMTPSink.Count reports afterwards
	}{
		// A rejected greeting does not end the session: smtp-sink goes on
		// serving commands, so the client must QUIT by itself.
		{"-r", "connect", []int{450}, false, 1},
		{"-f", "connect", []int{500}, false, 1},
		{"-Q", "connect", []int{421}, true, 0},
		{"-q", "connect", nil, true, 0},
		{"-r", "ehlo", []int{220, 450}, false, 1},
		{"-f", "mail", []int{220, 250, 500}, false, 0},
		{"-r", "rcpt", []int{220, 250, 250, 450}, false, 0},
		{"-Q", "data", []int{220, 250, 250, 250, 421}, true, 0},
		{"-q", "rcpt", []int{220, 250, 250}, true, 0},
		// A fault at the final dot comes after smtp-sink captured the data.
		{"-r", ".", []int{220, 250, 250, 250, 354, 450}, false, 1},
		{"-f", ".", []int{220, 250, 250, 250, 354, 500}, false, 1},
		{"-Q", ".", []int{220, 250, 250, 250, 354, 421}, true, 1},
		{"-q", ".", []int{220, 250, 250, 250, 354}, true, 1},
	}
	for _, f := range faults {
		t.Run(f.flag+" "+f.cmd, func(t *testing.T) {
			s := testservers.StartSMTPSink(t, f.flag, f.cmd)
			codes, err := smtpConv(t, s.Addr, fullSession...)
			n := len(f.codes)
			if len(codes) < n || fmt.Sprint(codes[:n]) != fmt.Sprint(f.codes) {
				t.Fatalf("codes %v (err %v), want prefix %v", codes, err, f.codes)
			}
			if f.eof && !errors.Is(err, io.EOF) && !isReset(err) {
				t.Fatalf("codes %v, err %v: want the server to close the connection", codes, err)
			}
			if !f.eof && err != nil {
				t.Fatalf("codes %v, err %v: want the session to go on", codes, err)
			}
			if f.captured > 0 {
				waitFor(t, func() bool { return s.Count(t) == f.captured })
			} else if got := s.Count(t); got != 0 {
				t.Fatalf("captured %d, want 0", got)
			}
			t.Logf("%s %s: codes %v, end %v", f.flag, f.cmd, codes, err)
		})
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// echoServer accepts connections and echoes lines back.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// roundTrip writes one line through conn and reads it back.
func roundTrip(conn net.Conn, r *bufio.Reader) (time.Duration, error) {
	start := time.Now()
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if line != "ping\n" {
		return 0, fmt.Errorf("read %q", line)
	}
	return time.Since(start), nil
}

func TestToxiproxy(t *testing.T) {
	tp := testservers.StartToxiproxy(t)
	p := tp.NewProxy(t, "echo", echoServer(t))

	conn, err := net.Dial("tcp", p.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	base, err := roundTrip(conn, r)
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}

	name := p.Latency(t, "downstream", 300*time.Millisecond, 0)
	d, err := roundTrip(conn, r)
	if err != nil {
		t.Fatalf("with latency: %v", err)
	}
	if d < 300*time.Millisecond {
		t.Fatalf("round trip %v with a 300ms latency toxic (baseline %v)", d, base)
	}
	p.RemoveToxic(t, name)
	if d, err := roundTrip(conn, r); err != nil || d > 250*time.Millisecond {
		t.Fatalf("after removing the toxic: %v, %v", d, err)
	}
	t.Logf("baseline %v, with 300ms latency %v", base, d)

	// A stalled server: data stops flowing, the connection stays open.
	p.Timeout(t, "downstream", 0)
	conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := roundTrip(conn, r); !isTimeout(err) {
		t.Fatalf("with a timeout toxic: err = %v, want a read timeout", err)
	}
	p.RemoveAllToxics(t)
	conn.Close()

	// A reset: the connection dies with RST.
	p.ResetPeer(t, "downstream", 0)
	conn2, err := net.Dial("tcp", p.Listen)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	conn2.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := roundTrip(conn2, bufio.NewReader(conn2)); err == nil {
		t.Fatal("with a reset_peer toxic: round trip succeeded")
	} else {
		t.Logf("reset_peer: %v", err)
	}
	tp.Reset(t)

	// SMTP through the proxy, with a slicer cutting replies into small pieces.
	s := testservers.StartSMTPSink(t)
	sp := tp.NewProxy(t, "smtp", s.Addr)
	sp.Slicer(t, "downstream", 3, 1, time.Millisecond)
	c := dialSMTP(t, sp.Listen)
	if err := sendOn(c, "proxied@testservers"); err != nil {
		t.Fatalf("SMTP through toxiproxy: %v", err)
	}
	c.Quit()
	waitFor(t, func() bool { return s.Count(t) == 1 })
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestJaeger(t *testing.T) {
	j := testservers.StartJaeger(t)
	const service = "testservers-check"
	traceID := "5b8efff798038103d269b633813fc60c"
	now := time.Now()
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":%q}}]},
"scopeSpans":[{"scope":{"name":"testservers"},"spans":[
{"traceId":%q,"spanId":"eee19b7ec3c1b174","name":"parent","kind":3,"startTimeUnixNano":"%d","endTimeUnixNano":"%d",
 "attributes":[{"key":"smtp.reply.code","value":{"intValue":"250"}}]},
{"traceId":%q,"spanId":"eee19b7ec3c1b175","parentSpanId":"eee19b7ec3c1b174","name":"child","kind":3,"startTimeUnixNano":"%d","endTimeUnixNano":"%d"}
]}]}]}`, service, traceID, now.UnixNano(), now.Add(20*time.Millisecond).UnixNano(),
		traceID, now.Add(time.Millisecond).UnixNano(), now.Add(10*time.Millisecond).UnixNano())
	resp, err := http.Post(j.OTLPHTTPEndpoint+"/v1/traces", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatalf("OTLP/HTTP export: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("OTLP/HTTP export: %s: %s", resp.Status, b)
	}

	trs := j.WaitTraces(t, service, 30*time.Second, func(trs []testservers.JaegerTrace) bool {
		return len(trs) == 1 && len(trs[0].Spans) == 2
	})
	tr := trs[0]
	if tr.TraceID != traceID {
		t.Errorf("traceID %s, want %s", tr.TraceID, traceID)
	}
	parent, ok1 := tr.Span("parent")
	child, ok2 := tr.Span("child")
	if !ok1 || !ok2 {
		t.Fatalf("spans %+v", tr.Spans)
	}
	if child.Parent() != parent.SpanID {
		t.Errorf("child's parent %q, want %q", child.Parent(), parent.SpanID)
	}
	if v, ok := parent.Tag("smtp.reply.code"); !ok || fmt.Sprint(v) != "250" {
		t.Errorf("tag smtp.reply.code = %v (%v), tags %+v", v, ok, parent.Tags)
	}
	if got := tr.Processes[parent.ProcessID].ServiceName; got != service {
		t.Errorf("service %q, want %q", got, service)
	}
	if svcs := j.Services(t); !strings.Contains(fmt.Sprint(svcs), service) {
		t.Errorf("services %v", svcs)
	}
	if raw := j.TracesJSON(t, service); !bytes.Contains(raw, []byte(traceID)) {
		t.Errorf("TracesJSON: %s", raw)
	}
}
