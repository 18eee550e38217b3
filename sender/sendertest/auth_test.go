package sendertest_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/postwise/postwise/sender/sendertest"
	"github.com/wneessen/go-mail/smtp"
)

func TestAuth(t *testing.T) {
	const user, pass = "alice", "s3cret-pa55"
	tests := []struct {
		name    string
		auth    smtp.Auth
		wantErr bool // 535 5.7.8
	}{
		{"PLAIN", smtp.PlainAuth("", user, pass, "127.0.0.1", false), false},
		{"PLAIN wrong password", smtp.PlainAuth("", user, "wrong-pa55", "127.0.0.1", false), true},
		{"LOGIN", smtp.LoginAuth(user, pass, "127.0.0.1", false), false},
		{"LOGIN wrong user", smtp.LoginAuth("mallory", pass, "127.0.0.1", false), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sendertest.NewServer(sendertest.Options{Username: user, Password: pass})
			defer srv.Close()
			c, err := smtp.Dial(srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
				t.Fatalf("AUTH extension = %v %q", ok, mechs)
			}
			err = c.Auth(tt.auth)
			if !tt.wantErr {
				if err != nil {
					t.Fatal(err)
				}
				if err := transact(c, "a@example.com", []string{"b@example.com"}, body); err != nil {
					t.Fatal(err)
				}
			} else if !isReply(err, 535, "5.7.8") {
				t.Fatalf("err = %v, want 535 5.7.8", err)
			}
			assertNoCredentials(t, srv.Commands(), pass, "wrong-pa55")
		})
	}
}

// assertNoCredentials fails if any secret appears in the transcript, in
// clear or in base64 (alone, or inside a PLAIN response).
func assertNoCredentials(t *testing.T, cmds []sendertest.Command, secrets ...string) {
	t.Helper()
	var transcript strings.Builder
	for _, c := range cmds {
		transcript.WriteString(c.Line + "\n")
	}
	for _, s := range secrets {
		for _, form := range []string{
			s,
			base64.StdEncoding.EncodeToString([]byte(s)),
			base64.StdEncoding.EncodeToString([]byte("\x00alice\x00" + s)),
		} {
			if strings.Contains(transcript.String(), form) {
				t.Fatalf("transcript holds a credential %q:\n%s", form, transcript.String())
			}
		}
	}
	if !strings.Contains(transcript.String(), sendertest.Redacted) {
		t.Fatalf("transcript has no redacted line:\n%s", transcript.String())
	}
}

func TestAuthTranscript(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{Username: "alice", Password: "pw"})
	defer srv.Close()
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pw"))
	c := dialRaw(t, srv)
	c.expect(
		step{"", "220 localhost ESMTP sendertest ready"},
		step{"EHLO client\r\n", "250-localhost\n250-PIPELINING\n250-8BITMIME\n250-ENHANCEDSTATUSCODES\n250-SMTPUTF8\n250 AUTH PLAIN LOGIN"},
		step{"MAIL FROM:<a@example.com>\r\n", "530 5.7.0 Authentication required"},
		step{"AUTH CRAM-MD5\r\n", "504 5.5.4 Unrecognized authentication mechanism"},
		step{"AUTH LOGIN\r\n", "334 VXNlcm5hbWU6"},
		step{"*\r\n", "501 5.0.0 Authentication cancelled"},
		step{"AUTH PLAIN\r\n", "334"},
		step{"not base64!\r\n", "501 5.5.2 Invalid base64"},
		step{"AUTH PLAIN " + plain + "\r\n", "235 2.7.0 Authentication successful"},
		step{"AUTH PLAIN " + plain + "\r\n", "503 5.5.1 Already authenticated"},
		step{"MAIL FROM:<a@example.com>\r\n", "250 2.1.0 Sender OK"},
	)
	var lines []string
	for _, cmd := range srv.Commands() {
		lines = append(lines, cmd.Verb+"|"+cmd.Line)
	}
	want := []string{
		"EHLO|EHLO client",
		"MAIL|MAIL FROM:<a@example.com>",
		"AUTH|AUTH CRAM-MD5",
		"AUTH|AUTH LOGIN",
		"|*",
		"AUTH|AUTH PLAIN",
		"|[redacted]",
		"AUTH|AUTH PLAIN [redacted]",
		"AUTH|AUTH PLAIN [redacted]",
		"MAIL|MAIL FROM:<a@example.com>",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestAuthScripted(t *testing.T) {
	srv := sendertest.NewServer(sendertest.Options{
		Username: "alice", Password: "pw",
		Rules: []sendertest.Rule{{Command: "AUTH", Arg: "plain", Times: 1, Do: sendertest.Reply(454, "4.7.0", "Temporary authentication failure")}},
	})
	defer srv.Close()
	dialRaw(t, srv).expect(
		step{"", "220 localhost ESMTP sendertest ready"},
		step{"HELO client\r\n", "250 localhost"},
		step{"AUTH PLAIN AGFsaWNlAHB3\r\n", "454 4.7.0 Temporary authentication failure"},
		step{"AUTH PLAIN AGFsaWNlAHB3\r\n", "235 2.7.0 Authentication successful"},
	)
}
