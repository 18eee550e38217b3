package classify

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"net/textproto"
	"os"
	"syscall"
	"testing"
	"time"
)

func textprotoError(code int, msg string) error { return &textproto.Error{Code: code, Msg: msg} }

// sendError has the methods of go-mail's *mail.SendError and, like it, no
// Unwrap.
type sendError struct {
	code int
	esc  string
}

func (e *sendError) Error() string              { return "sending SMTP RCPT TO command: " + fmt.Sprint(e.code) }
func (e *sendError) ErrorCode() int             { return e.code }
func (e *sendError) EnhancedStatusCode() string { return e.esc }

func TestClassifyErrors(t *testing.T) {
	refused := dialClosedPort(t)
	timeout := readTimeout(t)
	certErr := untrustedCertificate(t)

	tests := []struct {
		name string
		err  error
		want
		source    Source
		code      int
		command   string
		ambiguous bool
	}{
		{"nil", nil, want{Success, Done, ReasonNone}, FromServer, 0, "", false},
		{"textproto", textprotoError(550, "5.1.1 No such user"), want{Permanent, FailMessage, ReasonBadMailbox}, FromServer, 550, "", false},
		{"textproto with command", &CommandError{CmdRCPT, textprotoError(550, "5.1.1 No such user")}, want{Permanent, FailRecipient, ReasonBadMailbox}, FromServer, 550, CmdRCPT, false},
		{"wrapped twice", fmt.Errorf("send: %w", fmt.Errorf("attempt 2: %w", &CommandError{CmdRCPT, textprotoError(451, "4.7.1 greylisted")})), want{Transient, Retry, ReasonGreylisted}, FromServer, 451, CmdRCPT, false},
		{"joined", errors.Join(errors.New("other"), textprotoError(421, "4.4.2 bye")), want{Transient, Reconnect, ReasonServiceUnavailable}, FromServer, 421, "", false},
		{"go-mail SendError", &sendError{552, "5.2.2"}, want{Permanent, FailMessage, ReasonMailboxFull}, FromServer, 552, "", false},
		{"go-mail SendError in command", &CommandError{CmdRCPT, &sendError{450, "4.2.1"}}, want{Transient, Retry, ReasonMailboxUnavailable}, FromServer, 450, CmdRCPT, false},
		{"go-mail SendError without code", &sendError{0, ""}, want{Permanent, FailMessage, ReasonInvalidInput}, FromClient, 0, "", false},
		{"go-mail hello error", fmt.Errorf("smtp: EHLO/HELO exchange failed. EHLO response: %w, HELO response: %w", textprotoError(502, "5.5.1 no"), textprotoError(550, "5.7.1 go away")), want{Permanent, FailMessage, ReasonNotImplemented}, FromServer, 502, "", false},
		{"parse error", &CommandError{CmdMAIL, &ParseError{Reason: "code is not three digits"}}, want{Transient, Reconnect, ReasonProtocolError}, FromServer, 0, CmdMAIL, false},
		{"textproto protocol error", &CommandError{CmdRCPT, textproto.ProtocolError("short response: 25")}, want{Transient, Reconnect, ReasonProtocolError}, FromServer, 0, CmdRCPT, false},
		{"EOF", &CommandError{CmdRCPT, io.EOF}, want{Transient, Reconnect, ReasonConnectionLost}, FromNetwork, 0, CmdRCPT, false},
		{"unexpected EOF", io.ErrUnexpectedEOF, want{Transient, Reconnect, ReasonConnectionLost}, FromNetwork, 0, "", false},
		{"closed", net.ErrClosed, want{Transient, Reconnect, ReasonConnectionLost}, FromNetwork, 0, "", false},
		{"reset", &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, want{Transient, Reconnect, ReasonConnectionLost}, FromNetwork, 0, "", false},
		{"broken pipe", &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.EPIPE)}, want{Transient, Reconnect, ReasonConnectionLost}, FromNetwork, 0, "", false},
		{"refused", refused, want{Transient, Reconnect, ReasonConnectionRefused}, FromNetwork, 0, "", false},
		{"timeout", timeout, want{Transient, Reconnect, ReasonTimeout}, FromNetwork, 0, "", false},
		{"EOF after the dot", &CommandError{CmdDataEnd, io.EOF}, want{Transient, Reconnect, ReasonConnectionLost}, FromNetwork, 0, CmdDataEnd, true},
		{"timeout after the dot", &CommandError{CmdDataEnd, timeout}, want{Transient, Reconnect, ReasonTimeout}, FromNetwork, 0, CmdDataEnd, true},
		{"4xx after the dot is not ambiguous", &CommandError{CmdDataEnd, textprotoError(451, "4.3.0 try later")}, want{Transient, Retry, ReasonLocalError}, FromServer, 451, CmdDataEnd, false},
		{"dns not found", &net.DNSError{Err: "no such host", Name: "mx.invalid", IsNotFound: true}, want{Permanent, FailMessage, ReasonDNSNotFound}, FromNetwork, 0, "", false},
		{"dns temporary", &net.DNSError{Err: "server misbehaving", Name: "mx.example", IsTemporary: true}, want{Transient, Reconnect, ReasonDNSTemporary}, FromNetwork, 0, "", false},
		{"dns timeout", &net.DNSError{Err: "i/o timeout", Name: "mx.example", IsTimeout: true}, want{Transient, Reconnect, ReasonDNSTemporary}, FromNetwork, 0, "", false},
		{"certificate", &CommandError{CmdSTARTTLS, certErr}, want{Permanent, FailMessage, ReasonCertificate}, FromNetwork, 0, CmdSTARTTLS, false},
		{"canceled", fmt.Errorf("dial: %w", context.Canceled), want{Permanent, FailMessage, ReasonCanceled}, FromClient, 0, "", false},
		{"deadline", &CommandError{CmdRCPT, context.DeadlineExceeded}, want{Permanent, FailMessage, ReasonDeadline}, FromClient, 0, CmdRCPT, false},
		{"local", errors.New("smtp: A line must not contain CR or LF"), want{Permanent, FailMessage, ReasonInvalidInput}, FromClient, 0, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Classify(tt.err)
			if v.Class != tt.class || v.Action != tt.action || v.Reason != tt.reason {
				t.Errorf("Classify(%v) = %v/%v/%q, want %v/%v/%q", tt.err, v.Class, v.Action, v.Reason, tt.class, tt.action, tt.reason)
			}
			if v.Source != tt.source || v.Code != tt.code || v.Command != tt.command || v.Ambiguous != tt.ambiguous {
				t.Errorf("Classify(%v) = source %v code %d command %q ambiguous %v; want %v %d %q %v",
					tt.err, v.Source, v.Code, v.Command, v.Ambiguous, tt.source, tt.code, tt.command, tt.ambiguous)
			}
			if v.Description == "" {
				t.Errorf("Classify(%v) has no description", tt.err)
			}
		})
	}
}

func TestCommandError(t *testing.T) {
	inner := io.EOF
	err := &CommandError{Command: CmdRCPT, Err: inner}
	if !errors.Is(err, io.EOF) {
		t.Error("CommandError does not unwrap")
	}
	if got := err.Error(); got != "smtp RCPT: EOF" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&CommandError{Command: CmdMAIL}).Error(); got != "smtp MAIL: <nil>" {
		t.Errorf("Error() = %q", got)
	}
}

// dialClosedPort returns the error of a real connection refused on loopback.
func dialClosedPort(t *testing.T) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
		t.Fatal("dial to a closed port succeeded")
	}
	return err
}

// readTimeout returns the error of a real read deadline passing.
func readTimeout(t *testing.T) error {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	a.SetReadDeadline(time.Now().Add(time.Millisecond))
	_, err := a.Read(make([]byte, 1))
	if err == nil {
		t.Fatal("read did not time out")
	}
	return err
}

// untrustedCertificate returns the error of a real TLS handshake with a
// server whose certificate the client does not trust.
func untrustedCertificate(t *testing.T) error {
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	srv.StartTLS()
	defer srv.Close()
	conn, err := tls.Dial("tcp", srv.Listener.Addr().String(), &tls.Config{ServerName: "example.com"})
	if err == nil {
		conn.Close()
		t.Fatal("handshake with an untrusted certificate succeeded")
	}
	return err
}
