package sendertest

import (
	"bytes"
	"net/mail"
	"slices"
	"strings"
)

// Redacted stands in for every SASL credential in the transcript: the
// initial response of AUTH and each line of the exchange that follows.
const Redacted = "[redacted]"

// A Command is one line the server received outside message content, as
// recorded by (*Server).Commands.
type Command struct {
	// Conn is the number of the connection, counting from 1 in the order
	// the server accepted them.
	Conn int

	// Verb is the command name in upper case ("MAIL"). The final dot of a
	// message is recorded with Verb "DATA-END" and Line "."; a line of an
	// AUTH exchange has an empty Verb.
	Verb string

	// Line is the line exactly as received, without its CRLF, except that
	// credentials are replaced by Redacted: "AUTH PLAIN [redacted]".
	Line string

	// TLS reports whether the line arrived over TLS.
	TLS bool
}

// A Message is one message the server received in full, as recorded by
// (*Server).Messages and (*Server).Rejected.
type Message struct {
	// Conn is the number of the connection the message came on.
	Conn int

	// From is the reverse path of MAIL FROM, without angle brackets.
	From string

	// To lists the recipients the server accepted, in order, without angle
	// brackets. Refused recipients are not listed.
	To []string

	// Data is the content between DATA and the final dot, dot-stuffing
	// removed and line endings as the client sent them.
	Data []byte

	// MessageID is the Message-ID header of Data without angle brackets,
	// or empty when it has none.
	MessageID string

	// QueueID is the identifier given in the default reply to the final
	// dot ("250 2.0.0 OK: queued as ST000001"), unique within the server.
	QueueID string

	// Code is the reply code sent after the final dot; 0 when the server
	// dropped the connection or stalled instead of replying.
	Code int
}

func (m Message) clone() Message {
	m.To = slices.Clone(m.To)
	m.Data = bytes.Clone(m.Data)
	return m
}

// messageID reads the Message-ID header, tolerating content that is not a
// well-formed message (tests send anything).
func messageID(data []byte) string {
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(msg.Header.Get("Message-Id"))
	return strings.TrimSuffix(strings.TrimPrefix(id, "<"), ">")
}
