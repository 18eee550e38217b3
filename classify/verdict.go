package classify

import (
	"strconv"
	"strings"
	"time"
)

// Class is the kind of answer a reply gives, from the first digit of its
// basic code (RFC 5321 §4.2.1).
type Class uint8

// The classes. The zero Class is Unclassified: no verdict was reached.
const (
	Unclassified Class = iota
	Success            // 2yz: the command succeeded
	Intermediate       // 3yz: go on with the next part of the exchange
	Transient          // 4yz, and lost connections: the same request may succeed later
	Permanent          // 5yz, and local errors: the same request will fail again
)

var classNames = [...]string{"unclassified", "success", "intermediate", "transient", "permanent"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Action is what a client should do after a verdict.
type Action uint8

// The actions. The zero Action is NoAction: no verdict was reached.
const (
	NoAction Action = iota
	// Done: the command succeeded; go on.
	Done
	// Proceed: an intermediate reply (354, 334); send what the server asked for.
	Proceed
	// Retry: try the message (or, after RCPT, this recipient) again later,
	// after the backoff delay and at least RetryAfter.
	Retry
	// Reconnect: the connection is gone or unusable; retry on a new one.
	Reconnect
	// FailMessage: the message cannot be delivered as it is; do not retry.
	FailMessage
	// FailRecipient: this recipient cannot be delivered to; the others may be.
	FailRecipient
	// SendRestNow: the server takes no more recipients in this transaction;
	// finish it, and send the remaining recipients in a new one at once.
	SendRestNow
)

var actionNames = [...]string{"none", "done", "proceed", "retry", "reconnect", "fail-message", "fail-recipient", "send-rest-now"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Retryable reports whether the action asks for another attempt.
func (a Action) Retryable() bool {
	return a == Retry || a == Reconnect || a == SendRestNow
}

// Source says who decided a verdict: the server by a reply, the network by
// failing, or the client itself.
type Source uint8

const (
	FromServer  Source = iota // a reply code decided
	FromNetwork               // the connection failed: reset, timeout, DNS, TLS
	FromClient                // the caller's context, bad input, or configuration
)

var sourceNames = [...]string{"server", "network", "client"}

func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return "Source(" + strconv.Itoa(int(s)) + ")"
}

// Reason is a short machine-readable cause, stable enough to branch on and
// to use as a metric attribute (a small, fixed set of values).
type Reason string

// The reasons. A verdict that fits none of them has ReasonNone.
const (
	ReasonNone               Reason = ""
	ReasonGreylisted         Reason = "greylisted"
	ReasonRateLimited        Reason = "rate-limited"
	ReasonServiceUnavailable Reason = "service-unavailable" // 421 without a more specific cause
	ReasonTooManyRecipients  Reason = "too-many-recipients"
	ReasonMailboxUnavailable Reason = "mailbox-unavailable"
	ReasonMailboxFull        Reason = "mailbox-full"
	ReasonBadMailbox         Reason = "bad-mailbox" // the address does not exist or is not allowed
	ReasonSenderRejected     Reason = "sender-rejected"
	ReasonStorage            Reason = "insufficient-storage"
	ReasonMessageTooBig      Reason = "message-too-big"
	ReasonPolicy             Reason = "policy" // refused by a security or content policy
	ReasonAuthRequired       Reason = "auth-required"
	ReasonAuthFailed         Reason = "auth-failed"
	ReasonAuthTemporary      Reason = "auth-temporary"
	ReasonAuthTooWeak        Reason = "auth-too-weak"
	ReasonPasswordTransition Reason = "password-transition"
	ReasonTLSRequired        Reason = "tls-required"
	ReasonTLSUnavailable     Reason = "tls-unavailable"
	ReasonTLSFailed          Reason = "tls-failed"
	ReasonCertificate        Reason = "certificate"
	ReasonNoService          Reason = "no-mail-service" // 521, 556: the domain takes no mail
	ReasonSyntax             Reason = "syntax-error"
	ReasonNotImplemented     Reason = "not-implemented"
	ReasonBadSequence        Reason = "bad-sequence"
	ReasonTransactionFailed  Reason = "transaction-failed"
	ReasonLocalError         Reason = "local-error" // the server's own processing error (451)
	ReasonConnectionLost     Reason = "connection-lost"
	ReasonConnectionRefused  Reason = "connection-refused"
	ReasonTimeout            Reason = "timeout"
	ReasonDNSNotFound        Reason = "dns-not-found"
	ReasonDNSTemporary       Reason = "dns-temporary"
	ReasonProtocolError      Reason = "protocol-error" // the server sent something that is not a reply
	ReasonCanceled           Reason = "canceled"
	ReasonDeadline           Reason = "deadline"
	ReasonInvalidInput       Reason = "invalid-input" // a local error: bad address, no recipients, …
)

// Verdict is what a reply, or an error, means for the client: its class,
// what to do next, and why. Verdicts are plain values, safe to copy and to
// share between goroutines.
type Verdict struct {
	Class  Class
	Action Action
	Reason Reason
	Source Source

	// Code and Enhanced are the reply's basic and RFC 3463 enhanced codes;
	// 0 and "" when no reply decided (a lost connection, a local error).
	Code     int
	Enhanced string
	// Command is the command the deciding reply answered, as Reply.Command.
	Command string

	// Description is the meaning of Code as an answer to Command, from the
	// seed table; EnhancedDescription is the registry's meaning of Enhanced.
	// Neither ever holds server text. For verdicts no reply decided,
	// Description says what happened ("connection lost").
	Description         string
	EnhancedDescription string

	// RetryAfter is the least delay before a retry can succeed, when the
	// reply says so (greylisting, rate limiting); 0 when it does not.
	RetryAfter time.Duration
	// Conflict is set when the enhanced code's class disagrees with the
	// basic code's (451 5.7.500); the basic code decided.
	Conflict bool
	// Ambiguous is set when the connection failed after the final dot of
	// DATA: the server may have accepted the message.
	Ambiguous bool
}

// Retryable reports whether another attempt may succeed.
func (v Verdict) Retryable() bool { return v.Action.Retryable() }

// String formats the verdict for logs: class, action, reason and the codes.
func (v Verdict) String() string {
	var b strings.Builder
	b.WriteString(v.Class.String())
	b.WriteByte('/')
	b.WriteString(v.Action.String())
	if v.Reason != "" {
		b.WriteString(" (")
		b.WriteString(string(v.Reason))
		b.WriteByte(')')
	}
	if v.Code != 0 {
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(v.Code))
		if v.Enhanced != "" {
			b.WriteByte(' ')
			b.WriteString(v.Enhanced)
		}
	}
	if v.Command != "" {
		b.WriteString(" after ")
		b.WriteString(v.Command)
	}
	if v.Description != "" {
		b.WriteString(": ")
		b.WriteString(v.Description)
	}
	return b.String()
}
