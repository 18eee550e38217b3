package sender_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/wneessen/go-mail"

	"github.com/postwise/postwise/sender"
	"github.com/postwise/postwise/sender/sendertest"
)

func Example() {
	// A test server that does not know mallory.
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "RCPT", Arg: "mallory@", Do: sendertest.Reply(550, "5.1.1", "No such user")},
	}})
	defer srv.Close()

	s, err := sender.New(sender.Options{
		Host:        srv.Host(),
		Port:        srv.Port(),
		MailOptions: []mail.Option{mail.WithTLSPolicy(mail.NoTLS)}, // the test server has no TLS
		Telemetry:   noTelemetry,
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	msg := mail.NewMsg()
	msg.From("alerts@example.com")
	msg.To("dave@example.com", "mallory@example.com")
	msg.Subject("Disk almost full")
	msg.SetBodyString(mail.TypeTextPlain, "The disk of db-1 is 95% full.")

	res, err := s.Send(context.Background(), msg)
	for _, r := range res.Recipients {
		fmt.Println(r.Address, r.Status, r.Verdict.Code, r.Verdict.Description)
	}
	fmt.Println(errors.Is(err, sender.ErrRecipientsRejected), len(srv.Messages()))
	// Output:
	// dave@example.com delivered 250 Requested mail action okay, completed
	// mallory@example.com rejected 550 Requested action not taken: mailbox unavailable
	// true 1
}

func ExampleError() {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
		{Command: "MAIL", Do: sendertest.Reply(550, "5.7.1", "Sender blocked by policy")},
	}})
	defer srv.Close()
	s, _ := sender.New(sender.Options{Host: srv.Host(), Port: srv.Port(),
		MailOptions: []mail.Option{mail.WithTLSPolicy(mail.NoTLS)}, Telemetry: noTelemetry})
	defer s.Close()

	msg := mail.NewMsg()
	msg.From("alerts@example.com")
	msg.To("dave@example.com")
	_, err := s.Send(context.Background(), msg)

	var se *sender.Error
	if errors.As(err, &se) {
		fmt.Println(se.Attempts, se.Verdict.Command, se.Verdict.Code, se.Verdict.Reason)
	}
	fmt.Println(errors.Is(err, sender.ErrMessageRejected))
	// Output:
	// 1 MAIL 550 policy
	// true
}
