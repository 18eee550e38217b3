// Package demo is the story both examples tell: a local SMTP server that
// greylists one recipient's first try and does not know another, and two
// sends through a postwise Sender that meet those replies.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
	"github.com/postwise/postwise/telemetry"
)

// Run starts the server, makes the two sends with the given telemetry and
// prints what happened to w. It returns the server, which the caller closes.
func Run(ctx context.Context, w io.Writer, tel telemetry.Options) (*sendertest.Server, error) {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "RCPT", Arg: "carol@", Times: 1,
			Do: sendertest.Reply(451, "4.7.1", "Greylisted, please try again in 2 seconds")},
		{Command: "RCPT", Arg: "mallory@",
			Do: sendertest.Reply(550, "5.1.1", "No such user here")},
	}})

	s, err := sender.New(sender.Options{
		Host: srv.Host(),
		Port: srv.Port(),
		// The test server speaks no TLS; a real relay gets go-mail's default,
		// mandatory STARTTLS, and credentials here.
		MailOptions: []mail.Option{mail.WithTLSPolicy(mail.NoTLS)},
		Retry: retry.Policy{
			OnRetry: func(_ context.Context, attempt int, v classify.Verdict, delay time.Duration) {
				fmt.Fprintf(w, "  attempt %d: %d %s %s (%s): retrying in %v\n",
					attempt, v.Code, v.Enhanced, v.Description, v.Reason, delay.Round(time.Millisecond))
			},
		},
		Telemetry: tel,
	})
	if err != nil {
		srv.Close()
		return nil, err
	}
	defer s.Close()

	fmt.Fprintln(w, "1. A password reset for carol, whose server greylists first tries:")
	res, err := s.Send(ctx, message("carol@example.com"))
	report(w, res, err)

	fmt.Fprintln(w, "\n2. An alert for dave and mallory; mallory does not exist:")
	res, err = s.Send(ctx, message("dave@example.com", "mallory@example.com"))
	report(w, res, err)

	fmt.Fprintf(w, "\nThe server received %d messages:\n", len(srv.Messages()))
	for _, m := range srv.Messages() {
		fmt.Fprintf(w, "  to %v, Message-ID %s\n", m.To, m.MessageID)
	}
	return srv, nil
}

func message(to ...string) *mail.Msg {
	m := mail.NewMsg()
	m.From("notifications@example.com")
	m.To(to...)
	m.Subject("Hello from postwise")
	m.SetBodyString(mail.TypeTextPlain, "This message was sent by a postwise example.")
	return m
}

func report(w io.Writer, res *sender.Result, err error) {
	if res == nil {
		fmt.Fprintln(w, "  => not sent:", err)
		return
	}
	for _, r := range res.Recipients {
		fmt.Fprintf(w, "  %-22s %-9s after %d attempt(s): %d %s %s\n",
			r.Address, r.Status, r.Attempt, r.Verdict.Code, r.Verdict.Enhanced, r.Verdict.Description)
	}
	switch {
	case err == nil:
		fmt.Fprintln(w, "  => delivered to everyone")
	case errors.Is(err, sender.ErrRecipientsRejected):
		fmt.Fprintln(w, "  => delivered to the others; refused recipients are reported, never retried:", err)
	default:
		fmt.Fprintln(w, "  => failed:", err)
	}
}
