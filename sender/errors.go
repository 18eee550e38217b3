package sender

import (
	"errors"
	"strconv"
	"strings"

	"github.com/postwise/postwise/classify"
)

// Sentinels for errors.Is on what Send returns.
var (
	// ErrClosed: Send was called after Close.
	ErrClosed = errors.New("sender: closed")
	// ErrInvalidMessage: the message cannot be sent as it is (nil, no
	// sender, a body that cannot be composed); nothing went on the network.
	// go-mail itself refuses malformed addresses, such as one with CR or LF,
	// when they are set.
	ErrInvalidMessage = errors.New("sender: invalid message")
	// ErrNoRecipients: the message has no To, Cc or Bcc address.
	ErrNoRecipients = errors.New("sender: message has no recipients")
	// ErrRecipientsRejected: the server refused some recipients for good;
	// the others may have been delivered (see Result).
	ErrRecipientsRejected = errors.New("sender: recipients rejected")
	// ErrMessageRejected: the server refused the message itself for good
	// (at MAIL, DATA, the final dot, or while connecting: authentication,
	// TLS), so no remaining recipient got it.
	ErrMessageRejected = errors.New("sender: message rejected")
	// ErrDeferred: some recipients were still refused for now when the
	// send gave up; a later send may succeed (see retry.Error's RetryAfter).
	ErrDeferred = errors.New("sender: recipients deferred")
	// ErrAmbiguous: with AtMostOnce, the connection failed after the final
	// dot, so whether the server has the message is unknown.
	ErrAmbiguous = errors.New("sender: delivery ambiguous")
)

// Error is the error of a Send that did not deliver to every recipient.
// It unwraps to a sentinel for each kind of failure (ErrRecipientsRejected,
// ErrDeferred, …), to a *RecipientError for each recipient that was not
// delivered, and to the retry package's *retry.Error, which says why the
// retries stopped (retry.ErrPermanent, retry.ErrRetryAfterTooLong,
// context.Canceled, …).
type Error struct {
	// Verdict is the verdict that ended the send.
	Verdict classify.Verdict
	// Attempts is the number of attempts made.
	Attempts int

	errs []error
}

func (e *Error) Error() string {
	n := 0
	for _, err := range e.errs {
		if _, ok := err.(*RecipientError); ok {
			n++
		}
	}
	var b strings.Builder
	b.WriteString("sender: ")
	b.WriteString(strconv.Itoa(n))
	b.WriteString(" recipient")
	if n != 1 {
		b.WriteByte('s')
	}
	b.WriteString(" not delivered after ")
	b.WriteString(strconv.Itoa(e.Attempts))
	b.WriteString(" attempt")
	if e.Attempts != 1 {
		b.WriteByte('s')
	}
	b.WriteString(": ")
	b.WriteString(e.Verdict.String())
	return b.String()
}

// Unwrap returns the causes: sentinels, recipient errors and the retry error.
func (e *Error) Unwrap() []error { return e.errs }

// RecipientError is the failure of one recipient.
type RecipientError struct {
	Address string
	Status  Status
	Verdict classify.Verdict
}

func (e *RecipientError) Error() string {
	return "sender: " + e.Address + " " + e.Status.String() + ": " + e.Verdict.String()
}

// attemptError ends an attempt with the verdict that decides what the retry
// loop does next.
type attemptError struct {
	verdict classify.Verdict
	err     error
}

func (e *attemptError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return e.verdict.String()
}
func (e *attemptError) Unwrap() error             { return e.err }
func (e *attemptError) Verdict() classify.Verdict { return e.verdict }
