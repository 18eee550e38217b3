package classify_test

import (
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"strings"
	"time"

	"github.com/postwise/postwise/classify"
)

func ExampleParse() {
	r, err := classify.Parse("550-5.1.1 The email account that you tried to reach does not exist.\r\n" +
		"550 5.1.1 Please try double-checking the recipient's email address.\r\n")
	if err != nil {
		panic(err)
	}
	fmt.Println(r.Code, r.Enhanced)
	fmt.Println(strings.Count(r.Text, "\n")+1, "lines of text")

	_, err = classify.Parse("700 not a reply")
	var pe *classify.ParseError
	fmt.Println(errors.As(err, &pe), pe.Reason)
	// Output:
	// 550 5.1.1
	// 2 lines of text
	// true code outside 200-599
}

func ExampleClassifyReply() {
	v := classify.ClassifyReply(classify.Reply{
		Code: 451, Enhanced: "4.7.1", Text: "Greylisted, please retry later", Command: classify.CmdRCPT,
	})
	fmt.Println(v.Class, v.Action, v.Reason, v.RetryAfter)
	fmt.Println(v.Description)
	fmt.Println(v.EnhancedDescription)
	// Output:
	// transient retry greylisted 5m0s
	// Requested action aborted: local error in processing
	// Delivery not authorized, message refused
}

func ExampleClassify() {
	// What a client sees when the server refuses one recipient, and when
	// the connection drops right after the message's final dot.
	refused := &classify.CommandError{
		Command: classify.CmdRCPT,
		Err:     &textproto.Error{Code: 550, Msg: "5.1.1 No such user"},
	}
	lost := fmt.Errorf("send: %w", &classify.CommandError{Command: classify.CmdDataEnd, Err: io.EOF})

	for _, err := range []error{refused, lost} {
		v := classify.Classify(err)
		fmt.Printf("%s: %s, retry %v, ambiguous %v\n", v.Command, v.Action, v.Retryable(), v.Ambiguous)
	}
	// Output:
	// RCPT: fail-recipient, retry false, ambiguous false
	// DATA-END: reconnect, retry true, ambiguous true
}

func ExampleDescribeReply() {
	fmt.Println(classify.DescribeReply(250, classify.CmdMAIL))
	fmt.Println(classify.DescribeReply(250, classify.CmdETRN))
	fmt.Println(classify.DescribeEnhanced("5.7.26"))
	// Output:
	// Requested mail action okay, completed
	// OK, queuing for node <x> started
	// Multiple authentication checks failed
}

func ExampleNew() {
	// A provider answers "550 5.7.1 ... try again later" when it is busy.
	c := classify.New(classify.Options{Rules: []classify.Rule{
		func(r classify.Reply) (classify.Verdict, bool) {
			if r.Code == 550 && strings.Contains(r.Text, "try again later") {
				return classify.Verdict{Class: classify.Transient, Action: classify.Retry, RetryAfter: time.Minute}, true
			}
			return classify.Verdict{}, false
		},
	}})
	v := c.ClassifyReply(classify.Reply{Code: 550, Enhanced: "5.7.1", Text: "busy, try again later", Command: classify.CmdMAIL})
	fmt.Println(v.Class, v.Action, v.RetryAfter, v.Code)
	// Output:
	// transient retry 1m0s 550
}
