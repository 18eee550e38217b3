package sender

import "github.com/postwise/postwise/classify"

// Status is where a recipient stands at the end of a Send.
type Status uint8

const (
	// Pending: no attempt reached a decision for the recipient (the send
	// failed before its RCPT, at MAIL or while connecting).
	Pending Status = iota
	// Delivered: the server accepted the message for the recipient after
	// the final dot; it owns it now.
	Delivered
	// Rejected: the server refused the recipient, or the message, for good.
	Rejected
	// Deferred: the server was still refusing for now when the send gave up.
	Deferred
	// Unknown: the connection failed after the final dot and AtMostOnce was
	// set, so the message was not sent again; the server may have it.
	Unknown
)

var statusNames = [...]string{"pending", "delivered", "rejected", "deferred", "unknown"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Status(?)"
}

// Recipient is one recipient's outcome.
type Recipient struct {
	// Address is the envelope address, without angle brackets.
	Address string
	Status  Status
	// Verdict is the verdict on the reply that decided Status: the reply to
	// the final dot for Delivered, the RCPT (or MAIL, DATA) reply for
	// Rejected and Deferred.
	Verdict classify.Verdict
	// Attempt is the attempt that decided Status, counting from 1.
	Attempt int
	// Reply is the text of the deciding reply. It is the server's and may
	// hold personal data; for Delivered it usually names the queue id.
	Reply string
}

// Result reports a Send: every recipient's outcome and how it got there.
// Send returns one whenever it got past validating the message, with or
// without an error.
type Result struct {
	// MessageID is the message's Message-ID header, without angle brackets;
	// it stays the same across retries, so receivers can drop duplicates.
	MessageID string
	// Recipients lists every envelope recipient, in the message's order.
	Recipients []Recipient
	// Attempts is the number of attempts made.
	Attempts int
	// Response is the server's reply to the final dot of the last
	// successful transaction (it often names the queue id); empty if none
	// succeeded.
	Response string
	// Ambiguous is set when a connection failed after a final dot: the
	// server may have queued a copy before the message was sent again (or,
	// with AtMostOnce, reported Unknown).
	Ambiguous bool
}

// Delivered returns the addresses the server accepted the message for.
func (r *Result) Delivered() []string { return r.with(Delivered) }

// Rejected returns the addresses refused for good.
func (r *Result) Rejected() []string { return r.with(Rejected) }

// Deferred returns the addresses still refused for now when the send gave up.
func (r *Result) Deferred() []string { return r.with(Deferred) }

func (r *Result) with(s Status) []string {
	var out []string
	for _, rc := range r.Recipients {
		if rc.Status == s {
			out = append(out, rc.Address)
		}
	}
	return out
}

// counts returns the recipients delivered, deferred (or never decided) and
// rejected (or unknown).
func (r *Result) counts() (accepted, deferred, rejected int) {
	for _, rc := range r.Recipients {
		switch rc.Status {
		case Delivered:
			accepted++
		case Deferred, Pending:
			deferred++
		default:
			rejected++
		}
	}
	return
}
