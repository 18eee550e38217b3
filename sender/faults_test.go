package sender_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
)

const (
	user     = "notifications@example.com"
	password = "s3cret-Pa55word"
)

// fault is one cell of the matrix: a command and what the server does there
// the first time it sees it.
type fault struct {
	command string
	kind    string // "4xx", "421", "5xx", "drop", "stall"
}

// expect is what the send must do about it.
type expect struct {
	attempts  int
	class     classify.Class
	action    classify.Action
	reason    classify.Reason
	command   string // the command the deciding reply answered ("" allowed)
	delivered bool
	sentinel  error // for errors.Is when not delivered
	ambiguous bool
}

// actionFor builds the server's behaviour: realistic codes for each command.
func actionFor(f fault) sendertest.Action {
	switch f.kind {
	case "421":
		return sendertest.Reply(421, "4.3.2", "Service shutting down, closing channel")
	case "drop":
		return sendertest.Drop()
	case "stall":
		return sendertest.Stall()
	case "4xx":
		switch f.command {
		case "STARTTLS", "AUTH":
			return sendertest.Reply(454, "4.7.0", "Temporary failure, try again")
		}
		return sendertest.Reply(451, "4.3.0", "Temporary local problem, try again")
	}
	switch f.command { // 5xx
	case "CONNECT":
		return sendertest.Reply(554, "5.3.2", "No SMTP service here")
	case "STARTTLS":
		return sendertest.Reply(554, "5.7.3", "TLS not possible")
	case "AUTH":
		return sendertest.Reply(535, "5.7.8", "Authentication credentials invalid")
	case "RCPT":
		return sendertest.Reply(550, "5.1.1", "No such user")
	case "DATA":
		return sendertest.Reply(554, "5.5.1", "No valid recipients")
	case "DATA-END":
		return sendertest.Reply(554, "5.7.1", "Message refused by policy")
	}
	return sendertest.Reply(550, "5.7.1", "Refused by policy")
}

func TestFaultMatrix(t *testing.T) {
	transient := func(command string, action classify.Action, reason classify.Reason) expect {
		return expect{attempts: 2, class: classify.Transient, action: action, reason: reason, command: command, delivered: true}
	}
	lostAt := func(command string) expect {
		return transient(command, classify.Reconnect, classify.ReasonConnectionLost)
	}
	stallAt := func(command string) expect { return transient(command, classify.Reconnect, classify.ReasonTimeout) }
	refusedMsg := func(command string, reason classify.Reason) expect {
		return expect{attempts: 1, class: classify.Permanent, action: classify.FailMessage, reason: reason, command: command, sentinel: sender.ErrMessageRejected}
	}

	tests := []struct {
		fault
		expect
	}{
		{fault{"CONNECT", "4xx"}, transient("CONNECT", classify.Retry, classify.ReasonServiceUnavailable)},
		{fault{"CONNECT", "421"}, transient("CONNECT", classify.Reconnect, classify.ReasonServiceUnavailable)},
		{fault{"CONNECT", "5xx"}, refusedMsg("CONNECT", classify.ReasonNoService)},
		{fault{"CONNECT", "drop"}, lostAt("CONNECT")},
		{fault{"CONNECT", "stall"}, stallAt("CONNECT")},

		{fault{"EHLO", "4xx"}, transient("EHLO", classify.Retry, classify.ReasonLocalError)},
		{fault{"EHLO", "421"}, transient("EHLO", classify.Reconnect, classify.ReasonServiceUnavailable)},
		{fault{"EHLO", "5xx"}, refusedMsg("EHLO", classify.ReasonPolicy)},
		{fault{"EHLO", "drop"}, lostAt("EHLO")},
		{fault{"EHLO", "stall"}, stallAt("EHLO")},

		{fault{"STARTTLS", "4xx"}, transient("STARTTLS", classify.Retry, classify.ReasonTLSUnavailable)},
		{fault{"STARTTLS", "421"}, transient("STARTTLS", classify.Reconnect, classify.ReasonServiceUnavailable)},
		{fault{"STARTTLS", "5xx"}, refusedMsg("STARTTLS", classify.ReasonTLSUnavailable)},
		{fault{"STARTTLS", "drop"}, lostAt("STARTTLS")},
		{fault{"STARTTLS", "stall"}, stallAt("STARTTLS")},

		{fault{"AUTH", "4xx"}, transient("AUTH", classify.Retry, classify.ReasonAuthTemporary)},
		{fault{"AUTH", "421"}, transient("AUTH", classify.Reconnect, classify.ReasonServiceUnavailable)},
		{fault{"AUTH", "5xx"}, refusedMsg("AUTH", classify.ReasonAuthFailed)},
		{fault{"AUTH", "drop"}, lostAt("AUTH")},
		{fault{"AUTH", "stall"}, stallAt("AUTH")},

		{fault{"MAIL", "4xx"}, transient("MAIL", classify.Retry, classify.ReasonLocalError)},
		{fault{"MAIL", "421"}, transient("MAIL", classify.Reconnect, classify.ReasonServiceUnavailable)},
		{fault{"MAIL", "5xx"}, refusedMsg("MAIL", classify.ReasonPolicy)},
		{fault{"MAIL", "drop"}, lostAt("MAIL")},
		{fault{"MAIL", "stall"}, stallAt("MAIL")},

		{fault{"RCPT", "4xx"}, transient("RCPT", classify.Retry, classify.ReasonLocalError)},
		{fault{"RCPT", "421"}, transient("RCPT", classify.Reconnect, classify.ReasonServiceUnavailable)},
		{fault{"RCPT", "5xx"}, expect{attempts: 1, class: classify.Permanent, action: classify.FailRecipient, reason: classify.ReasonBadMailbox, command: "RCPT", sentinel: sender.ErrRecipientsRejected}},
		{fault{"RCPT", "drop"}, lostAt("RCPT")},
		{fault{"RCPT", "stall"}, stallAt("RCPT")},

		{fault{"DATA", "4xx"}, transient("DATA", classify.Retry, classify.ReasonLocalError)},
		{fault{"DATA", "421"}, transient("DATA", classify.Reconnect, classify.ReasonServiceUnavailable)},
		{fault{"DATA", "5xx"}, refusedMsg("DATA", classify.ReasonTransactionFailed)},
		{fault{"DATA", "drop"}, lostAt("DATA")},
		{fault{"DATA", "stall"}, stallAt("DATA")},

		{fault{"DATA-END", "4xx"}, transient("DATA-END", classify.Retry, classify.ReasonLocalError)},
		{fault{"DATA-END", "421"}, transient("DATA-END", classify.Reconnect, classify.ReasonServiceUnavailable)},
		{fault{"DATA-END", "5xx"}, refusedMsg("DATA-END", classify.ReasonPolicy)},
		{fault{"DATA-END", "drop"}, func() expect { e := lostAt("DATA-END"); e.ambiguous = true; return e }()},
		{fault{"DATA-END", "stall"}, func() expect { e := stallAt("DATA-END"); e.ambiguous = true; return e }()},
	}

	for _, tt := range tests {
		t.Run(tt.fault.command+"/"+tt.kind, func(t *testing.T) {
			t.Parallel()
			rules := []sendertest.Rule{{Command: tt.fault.command, Times: 1, Do: actionFor(tt.fault)}}
			if tt.fault.command == "EHLO" && tt.kind != "drop" && tt.kind != "stall" {
				// go-mail falls back to HELO when EHLO is refused; a server
				// that refuses one refuses the other.
				rules = append(rules, sendertest.Rule{Command: "HELO", Times: 1, Do: actionFor(tt.fault)})
			}
			srv := sendertest.NewServer(sendertest.Options{TLS: true, Username: user, Password: password, Rules: rules})
			defer srv.Close()
			s, rec := newSender(t, srv, sender.Options{CommandTimeout: 300 * time.Millisecond, Retry: retry.Policy{MaxAttempts: 3}},
				mail.WithTLSConfig(srv.ClientTLSConfig()), mail.WithSMTPAuth(mail.SMTPAuthPlain),
				mail.WithUsername(user), mail.WithPassword(password), mail.WithTimeout(300*time.Millisecond))

			res, err := s.Send(context.Background(), newMsg(t, "bob@example.com"))
			if res == nil {
				t.Fatalf("no Result; err %v", err)
			}

			// The verdict on the fault: from the retry hook when the send
			// retried, from the error when it did not.
			var v classify.Verdict
			if got := rec.get(); len(got) > 0 {
				v = got[0]
			} else {
				var se *sender.Error
				if !errors.As(err, &se) {
					t.Fatalf("no retry and no *sender.Error: %v", err)
				}
				v = se.Verdict
			}
			if v.Class != tt.class || v.Action != tt.action || v.Reason != tt.reason || v.Command != tt.expect.command {
				t.Errorf("verdict %v/%v/%q at %q, want %v/%v/%q at %q",
					v.Class, v.Action, v.Reason, v.Command, tt.class, tt.action, tt.reason, tt.expect.command)
			}
			if res.Attempts != tt.attempts {
				t.Errorf("%d attempts, want %d", res.Attempts, tt.attempts)
			}
			if res.Ambiguous != tt.ambiguous {
				t.Errorf("Ambiguous = %v, want %v", res.Ambiguous, tt.ambiguous)
			}

			msgs := srv.Messages()
			if tt.delivered {
				if err != nil {
					t.Fatalf("Send: %v", err)
				}
				if len(msgs) != 1 || fmt.Sprint(msgs[0].To) != "[bob@example.com]" || msgs[0].MessageID != res.MessageID {
					t.Fatalf("server has %d messages %+v, want exactly the one to bob", len(msgs), msgs)
				}
				if res.Recipients[0].Status != sender.Delivered || res.Recipients[0].Attempt != 2 {
					t.Errorf("recipient %+v, want delivered at attempt 2", res.Recipients[0])
				}
			} else {
				if !errors.Is(err, tt.sentinel) {
					t.Errorf("err = %v, want %v", err, tt.sentinel)
				}
				if tt.sentinel == sender.ErrMessageRejected && !errors.Is(err, retry.ErrPermanent) {
					t.Errorf("err = %v, want retry.ErrPermanent", err)
				}
				if len(msgs) != 0 {
					t.Errorf("server stored %d messages, want none", len(msgs))
				}
				if res.Recipients[0].Status != sender.Rejected {
					t.Errorf("recipient %+v, want rejected", res.Recipients[0])
				}
			}
			// A connection that failed is never reused: each attempt that met
			// the fault below the transaction used a connection of its own.
			if tt.delivered && srv.Connections() != 2 && !(tt.fault.command == "RCPT" || tt.fault.command == "DATA" || tt.fault.command == "DATA-END" || tt.fault.command == "MAIL") {
				t.Errorf("%d connections, want 2", srv.Connections())
			}
			for _, c := range srv.Commands() {
				if c.Verb == "AUTH" && c.Line != "AUTH PLAIN "+sendertest.Redacted {
					t.Errorf("AUTH line %q", c.Line)
				}
			}
		})
	}
}
