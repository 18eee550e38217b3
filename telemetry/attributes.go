package telemetry

import (
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/postwise/postwise/classify"
)

// Attribute keys under smtp.*. No OpenTelemetry semantic convention for SMTP
// exists yet; these follow the general naming rules (lower case, dotted
// namespaces, no name that is also a namespace). server.address,
// server.port and error.type come from the semantic conventions
// (semconv v1.43.0). The table in the package doc says where each appears.
const (
	// ReplyCodeKey is the basic reply code (int), as 550.
	ReplyCodeKey = attribute.Key("smtp.reply.code")
	// ReplyEnhancedStatusCodeKey is the RFC 3463 enhanced status code
	// (string), as "5.1.1".
	ReplyEnhancedStatusCodeKey = attribute.Key("smtp.reply.enhanced_status_code")
	// ReplyDescriptionKey is the meaning of the basic code as an answer to its
	// command (string), from classify's tables, never from server text.
	ReplyDescriptionKey = attribute.Key("smtp.reply.description")
	// ReplyEnhancedDescriptionKey is the IANA registry's meaning of the
	// enhanced status code (string).
	ReplyEnhancedDescriptionKey = attribute.Key("smtp.reply.enhanced_description")
	// ReplyClassKey is the verdict's class (string): success, intermediate,
	// transient, permanent, unclassified.
	ReplyClassKey = attribute.Key("smtp.reply.class")
	// ReplyActionKey is what the client did after the reply (string): done,
	// retry, reconnect, fail-message, fail-recipient, send-rest-now, ….
	ReplyActionKey = attribute.Key("smtp.reply.action")
	// ReplyReasonKey is the verdict's machine-readable reason (string), as
	// "greylisted" or "connection-lost"; absent when the verdict has none.
	ReplyReasonKey = attribute.Key("smtp.reply.reason")
	// ReplyTextKey is the server's reply text (string). Opt-in:
	// Options.RecordReplyText.
	ReplyTextKey = attribute.Key("smtp.reply.text")
	// CommandKey is the command a reply answered (string), as classify names
	// it: "MAIL", "RCPT", "DATA-END", ….
	CommandKey = attribute.Key("smtp.command")
	// AttemptKey is the 1-based number of an attempt (int).
	AttemptKey = attribute.Key("smtp.attempt")
	// AttemptsKey is how many attempts a send made (int).
	AttemptsKey = attribute.Key("smtp.attempts")
	// RecipientsCountKey is how many recipients a send was given (int).
	RecipientsCountKey = attribute.Key("smtp.recipients.count")
	// RecipientsAcceptedKey, RecipientsDeferredKey and RecipientsRejectedKey
	// count recipients by outcome (int).
	RecipientsAcceptedKey = attribute.Key("smtp.recipients.accepted")
	RecipientsDeferredKey = attribute.Key("smtp.recipients.deferred")
	RecipientsRejectedKey = attribute.Key("smtp.recipients.rejected")
	// RecipientsAddressesKey lists a send's recipient addresses (string
	// slice). Opt-in: Options.RecordRecipients.
	RecipientsAddressesKey = attribute.Key("smtp.recipients.addresses")
	// RecipientAddressKey is one recipient's address (string). Opt-in:
	// Options.RecordRecipients.
	RecipientAddressKey = attribute.Key("smtp.recipient.address")
	// RecipientOutcomeKey is one recipient's outcome (string):
	// OutcomeAccepted, OutcomeDeferred or OutcomeRejected.
	RecipientOutcomeKey = attribute.Key("smtp.recipient.outcome")
	// RetryDelayKey is the wait before the next attempt, in seconds
	// (float64), as OpenTelemetry expresses durations.
	RetryDelayKey = attribute.Key("smtp.retry.delay")
	// AmbiguousKey is set (bool, true) when the connection failed after the
	// final dot of DATA: the server may have accepted the message. It is
	// absent otherwise.
	AmbiguousKey = attribute.Key("smtp.ambiguous")
)

// The values of RecipientOutcomeKey.
const (
	OutcomeAccepted = "accepted"
	OutcomeDeferred = "deferred"
	OutcomeRejected = "rejected"
)

// Span and span event names.
const (
	SendSpanName    = "smtp.send"    // one per send, covering all attempts
	AttemptSpanName = "smtp.attempt" // one per attempt, child of the send span
	ReplyEvent      = "smtp.reply"   // on the attempt span, per reply read
	RecipientEvent  = "smtp.recipient"
	RetryEvent      = "smtp.retry" // on the send span, per retry decided
)

// Metric names.
const (
	SendDurationMetric    = "smtp.client.send.duration"
	AttemptDurationMetric = "smtp.client.attempt.duration"
	RepliesMetric         = "smtp.client.replies"
	RetriesMetric         = "smtp.client.retries"
	RecipientsMetric      = "smtp.client.recipients"
)

// RecipientOutcome says what a verdict means for one recipient: accepted
// when the action is done, deferred when another attempt may deliver
// (retry, reconnect, send-rest-now: a 5xx with 5.5.3 refuses no one), and
// rejected when it fails the recipient or the message. A verdict with no
// action falls back on its class: success is accepted, transient deferred,
// anything else rejected.
func RecipientOutcome(v classify.Verdict) string {
	switch {
	case v.Action == classify.Done:
		return OutcomeAccepted
	case v.Action.Retryable():
		return OutcomeDeferred
	case v.Action == classify.FailRecipient || v.Action == classify.FailMessage:
		return OutcomeRejected
	case v.Class == classify.Success:
		return OutcomeAccepted
	case v.Class == classify.Transient:
		return OutcomeDeferred
	}
	return OutcomeRejected
}

// errorType is the value of error.type for a failed attempt or send: the
// verdict's reason, a small fixed set; else the reply code, as the HTTP
// conventions do with status codes; else what semconv derives from err
// (an ErrorType method, or the error's type name).
func errorType(err error, v classify.Verdict) attribute.KeyValue {
	switch {
	case v.Reason != "":
		return semconv.ErrorTypeKey.String(string(v.Reason))
	case v.Code != 0:
		return semconv.ErrorTypeKey.String(strconv.Itoa(v.Code))
	}
	return semconv.ErrorType(err)
}

// verdictAttrs appends the deciding reply's attributes, leaving out the
// empty ones so that a backend shows only what is known.
func verdictAttrs(attrs []attribute.KeyValue, v classify.Verdict) []attribute.KeyValue {
	if v.Code != 0 {
		attrs = append(attrs, ReplyCodeKey.Int(v.Code))
	}
	if v.Enhanced != "" {
		attrs = append(attrs, ReplyEnhancedStatusCodeKey.String(v.Enhanced))
	}
	if v.Description != "" {
		attrs = append(attrs, ReplyDescriptionKey.String(v.Description))
	}
	if v.EnhancedDescription != "" {
		attrs = append(attrs, ReplyEnhancedDescriptionKey.String(v.EnhancedDescription))
	}
	if v.Class != classify.Unclassified {
		attrs = append(attrs, ReplyClassKey.String(v.Class.String()))
	}
	if v.Action != classify.NoAction {
		attrs = append(attrs, ReplyActionKey.String(v.Action.String()))
	}
	if v.Reason != "" {
		attrs = append(attrs, ReplyReasonKey.String(string(v.Reason)))
	}
	if v.Command != "" {
		attrs = append(attrs, CommandKey.String(v.Command))
	}
	return attrs
}

// countAttrs appends the recipient counts.
func countAttrs(attrs []attribute.KeyValue, accepted, deferred, rejected int) []attribute.KeyValue {
	return append(attrs,
		RecipientsAcceptedKey.Int(accepted),
		RecipientsDeferredKey.Int(deferred),
		RecipientsRejectedKey.Int(rejected),
	)
}
