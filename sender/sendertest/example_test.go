package sendertest_test

import (
	"errors"
	"fmt"
	"net/smtp"
	"net/textproto"

	"github.com/postwise/postwise/sender/sendertest"
)

func Example() {
	srv := sendertest.NewServer(sendertest.Options{})
	defer srv.Close()

	msg := "From: a@example.com\r\nTo: b@example.com\r\nMessage-ID: <42@example.com>\r\nSubject: hi\r\n\r\nHello.\r\n"
	err := smtp.SendMail(srv.Addr, nil, "a@example.com", []string{"b@example.com"}, []byte(msg))
	if err != nil {
		fmt.Println(err)
		return
	}

	for _, m := range srv.Messages() {
		fmt.Printf("conn %d: %s -> %v, Message-ID %s, queued as %s\n", m.Conn, m.From, m.To, m.MessageID, m.QueueID)
	}
	for _, c := range srv.Commands() {
		fmt.Println(c.Line)
	}
	// Output:
	// conn 1: a@example.com -> [b@example.com], Message-ID 42@example.com, queued as ST000001
	// EHLO localhost
	// MAIL FROM:<a@example.com> BODY=8BITMIME SMTPUTF8
	// RCPT TO:<b@example.com>
	// DATA
	// .
	// QUIT
}

// Greylisting: the first two attempts are deferred, across connections, as
// a retrying client makes them; the third is accepted.
func ExampleRule() {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{{
		Command: "RCPT",
		Arg:     "bob@example.com",
		Times:   2,
		Do:      sendertest.Reply(451, "4.7.1", "Greylisted, try again later"),
	}}})
	defer srv.Close()

	msg := []byte("Subject: hi\r\n\r\nHello.\r\n")
	for attempt := 1; attempt <= 3; attempt++ {
		err := smtp.SendMail(srv.Addr, nil, "a@example.com", []string{"bob@example.com"}, msg)
		fmt.Printf("attempt %d: %s\n", attempt, describe(err))
	}
	fmt.Println("delivered:", len(srv.Messages()), "connections:", srv.Connections())
	// Output:
	// attempt 1: 451 4.7.1 Greylisted, try again later
	// attempt 2: 451 4.7.1 Greylisted, try again later
	// attempt 3: delivered
	// delivered: 1 connections: 3
}

// A multi-line refusal after the final dot: the message is kept by
// Rejected, not Messages.
func ExampleReply() {
	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{{
		Command: "DATA-END",
		Do:      sendertest.Reply(550, "5.7.1", "Message refused\nby policy"),
	}}})
	defer srv.Close()

	err := smtp.SendMail(srv.Addr, nil, "a@example.com", []string{"b@example.com"}, []byte("Subject: x\r\n\r\nspam\r\n"))
	fmt.Println(describe(err))
	fmt.Println("delivered:", len(srv.Messages()), "rejected with:", srv.Rejected()[0].Code)
	// Output:
	// 550 5.7.1 Message refused
	// 5.7.1 by policy
	// delivered: 0 rejected with: 550
}

// describe prints a reply error as net/smtp reports it: the code and the
// reply's text, one line per reply line.
func describe(err error) string {
	var te *textproto.Error
	if errors.As(err, &te) {
		return fmt.Sprintf("%d %s", te.Code, te.Msg)
	}
	if err == nil {
		return "delivered"
	}
	return err.Error()
}
