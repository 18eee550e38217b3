package sendertest_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/postwise/postwise/sender/sendertest"
	"github.com/wneessen/go-mail/smtp"
)

// rawClient speaks SMTP by hand, to check replies byte for byte.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t *testing.T, srv *sendertest.Server) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	// A safety net so a broken test fails instead of hanging.
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	return &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// reply reads one reply, its lines joined by "\n" without CRLF, or "EOF"
// when the server closed the connection.
func (c *rawClient) reply() string {
	c.t.Helper()
	var lines []string
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || isReset(err) {
				if len(lines) == 0 && line == "" {
					return "EOF"
				}
			}
			c.t.Fatalf("read reply: %v (got %q so far)", err, append(lines, line))
		}
		line = strings.TrimSuffix(line, "\r\n")
		lines = append(lines, line)
		if len(line) < 4 || line[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// isReply reports whether err is the server's reply with code whose text
// starts with the enhanced code, as go-mail's client reports it.
func isReply(err error, code int, enhanced string) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code == code && strings.HasPrefix(te.Msg, enhanced+" ")
}

func isReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}

// expect sends each step's line (if any) and checks the reply that follows.
func (c *rawClient) expect(steps ...step) {
	c.t.Helper()
	for _, s := range steps {
		if s.send != "" {
			c.send(s.send)
		}
		if got := c.reply(); got != s.want {
			c.t.Fatalf("after %q:\n got %q\nwant %q", s.send, got, s.want)
		}
	}
}

type step struct{ send, want string }

const ehloReply = "250-localhost\n250-PIPELINING\n250-8BITMIME\n250-ENHANCEDSTATUSCODES\n250 SMTPUTF8"

// sendMail sends one message with go-mail's SMTP client, the client the
// sender package drives, and returns the first error.
func sendMail(srv *sendertest.Server, from string, to []string, body string) error {
	c, err := smtp.Dial(srv.Addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		return err
	}
	return transact(c, from, to, body)
}

func transact(c *smtp.Client, from string, to []string, body string) error {
	// Bracketed, as go-mail's mail.Client passes addresses.
	if err := c.Mail("<" + from + ">"); err != nil {
		return err
	}
	for _, rcpt := range to {
		if err := c.Rcpt("<" + rcpt + ">"); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, body); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

func verbs(cmds []sendertest.Command) string {
	var v []string
	for _, c := range cmds {
		v = append(v, c.Verb)
	}
	return strings.Join(v, " ")
}

const body = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\nMessage-ID: <1@example.com>\r\n\r\nHello.\r\n"
