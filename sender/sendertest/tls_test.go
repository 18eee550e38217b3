package sendertest_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/postwise/postwise/sender/sendertest"
	"github.com/wneessen/go-mail/smtp"
)

func TestSTARTTLS(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{TLS: true, Username: "alice", Password: "pw"})
	defer srv.Close()

	c, err := smtp.Dial(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not advertised")
	}
	if err := c.StartTLS(srv.ClientTLSConfig()); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS advertised again under TLS")
	}
	if err := c.Auth(smtp.PlainAuth("", "alice", "pw", "127.0.0.1", false)); err != nil {
		t.Fatal(err)
	}
	if err := transact(c, "a@example.com", []string{"b@example.com"}, body); err != nil {
		t.Fatal(err)
	}

	var got []string
	for _, cmd := range srv.Commands() {
		mark := ""
		if cmd.TLS {
			mark = "tls:"
		}
		got = append(got, mark+cmd.Verb)
	}
	want := "EHLO STARTTLS tls:EHLO tls:AUTH tls:MAIL tls:RCPT tls:DATA tls:DATA-END tls:QUIT"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("commands = %q, want %q", g, want)
	}
	if len(srv.Messages()) != 1 {
		t.Errorf("got %d messages", len(srv.Messages()))
	}
}

func TestSTARTTLSUntrusted(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{TLS: true})
	defer srv.Close()
	c, err := smtp.Dial(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.StartTLS(&tls.Config{ServerName: "127.0.0.1"}); err == nil {
		t.Fatal("handshake succeeded without trusting the certificate")
	}
}

// TestSTARTTLSDiscardsPipelinedPlaintext: RFC 3207 §5, the CVE-2011-0411
// command injection.
func TestSTARTTLSDiscardsPipelinedPlaintext(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{TLS: true})
	defer srv.Close()
	c := dialRaw(t, srv)
	c.expect(step{"", "220 localhost ESMTP sendertest ready"}, step{"HELO client\r\n", "250 localhost"})
	c.expect(step{"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n", "220 2.0.0 Ready to start TLS"})
	tc := tls.Client(c.conn, srv.ClientTLSConfig())
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.conn = tc
	c.r.Reset(tc)
	c.expect(step{"RCPT TO:<b@example.com>\r\n", "503 5.5.1 Send MAIL first"})
	for _, cmd := range srv.Commands() {
		if cmd.Verb == "MAIL" {
			t.Errorf("injected command was read: %+v", cmd)
		}
	}
}

func TestImplicitTLS(t *testing.T) {
	srv := sendertest.NewUnstartedServer(sendertest.Options{TLS: true})
	srv.StartTLS()
	defer srv.Close()
	conn, err := tls.Dial("tcp", srv.Addr, srv.ClientTLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	c, err := smtp.NewClient(conn, srv.Host())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered over implicit TLS")
	}
	if err := transact(c, "a@example.com", []string{"b@example.com"}, body); err != nil {
		t.Fatal(err)
	}
	if cmds := srv.Commands(); len(cmds) == 0 || !cmds[0].TLS {
		t.Errorf("commands = %+v, want TLS", cmds)
	}
}

func TestCertificateCoversHostname(t *testing.T) {
	srv := sendertest.NewUnstartedServer(sendertest.Options{Hostname: "mx.example.net"})
	defer srv.Close()
	cert := srv.Certificate()
	for _, name := range []string{"mx.example.net", "localhost", "127.0.0.1", "::1"} {
		if err := cert.VerifyHostname(name); err != nil {
			t.Error(err)
		}
	}
	if srv.Certificate() != cert {
		t.Error("certificate changed between calls")
	}
}
