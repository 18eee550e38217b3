package sendertest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A Rule replaces the server's reply to one kind of command. Rules are
// checked in order; the first that matches and is not used up decides the
// reply, and commands no rule matches get the server's normal handling.
//
// A Rule is a plain value; the server copies it when it is added.
type Rule struct {
	// Command names the reply the rule replaces, in any case: CONNECT (the
	// greeting), EHLO, HELO, STARTTLS, AUTH, MAIL, RCPT, DATA (the reply to
	// the DATA command itself), DATA-END (the reply after the final dot),
	// RSET, NOOP, QUIT, or any other verb a client may send.
	Command string

	// Arg, when not empty, must occur in the command's argument, ignoring
	// case: "bob@example.com" matches "TO:<Bob@Example.com>". For AUTH only
	// the mechanism name is matched, never the credentials; for DATA-END the
	// message content is matched (a header such as "Subject: retry me").
	// CONNECT has no argument, so a CONNECT rule with an Arg never matches.
	Arg string

	// Times is how many times the rule fires before it stops matching,
	// counted across all connections of the server. Zero means forever.
	Times int

	// Do is what the server does instead of its normal reply. The zero
	// Action is Default: the normal reply, which still uses up one Time.
	Do Action
}

// An Action is what the server does in answer to a command matched by a
// Rule. Build one with Reply, Raw, Drop, Stall, Delay or Default; the zero
// Action is Default. Actions are immutable values, safe to share.
type Action struct {
	kind  actionKind
	reply reply         // actReply
	raw   string        // actRaw
	wait  time.Duration // actDelay
	then  *Action       // actDelay
}

type actionKind int

const (
	actDefault actionKind = iota
	actReply
	actRaw
	actDrop
	actStall
	actDelay
)

// Default returns the Action that gives the server's normal reply. It is
// useful inside Delay, and to let a rule use up a turn without changing the
// reply ("the first RCPT succeeds, the second is refused").
func Default() Action { return Action{} }

// Reply returns an Action that answers with code, the RFC 3463 enhanced
// status code enhanced (omitted when empty) and text. Each "\n" in text
// starts a new line of a multi-line reply: Reply(550, "5.1.1", "a\nb")
// is written as "550-5.1.1 a" and "550 5.1.1 b".
//
// The reply has the effect a real server's reply with that code has: a 2xx
// to RCPT accepts the recipient, a 4xx or 5xx refuses it; 354 to DATA reads
// the message; 220 to STARTTLS starts the TLS handshake; a 2xx to DATA-END
// stores the message and anything else rejects it; 235 to AUTH
// authenticates without checking credentials. A 421 reply, to any command,
// is followed by closing the connection, as RFC 5321 §3.8 describes.
//
// Reply panics if code is not between 100 and 599; use Raw to send a
// malformed reply.
func Reply(code int, enhanced, text string) Action {
	if code < 100 || code > 599 {
		panic(fmt.Sprintf("sendertest: invalid reply code %d", code))
	}
	return Action{kind: actReply, reply: reply{code: code, enhanced: enhanced, text: text}}
}

// Raw returns an Action that writes s to the client exactly as given, with
// no CRLF added: for malformed or truncated replies. The command it answers
// has no effect on the session, and the connection stays open; at DATA-END
// the transaction ends and the message is recorded by Rejected with Code 0.
func Raw(s string) Action { return Action{kind: actRaw, raw: s} }

// Drop returns an Action that closes the connection without replying, like
// a server that crashed or a network that broke. At DATA-END the message
// is recorded by Rejected with Code 0: the client cannot know whether it
// was delivered.
func Drop() Action { return Action{kind: actDrop} }

// Stall returns an Action that never replies. The connection stays open,
// ignoring everything the client sends, until the client closes it or the
// server is closed: for testing client timeouts. At DATA-END the message is
// recorded by Rejected with Code 0 before the server stalls.
func Stall() Action { return Action{kind: actStall} }

// Delay returns an Action that waits for d and then does then. Closing the
// server cuts the wait short.
func Delay(d time.Duration, then Action) Action {
	return Action{kind: actDelay, wait: d, then: &then}
}

// reply is one SMTP reply, possibly multi-line.
type reply struct {
	code     int
	enhanced string
	text     string
}

// String renders the reply in wire format, each line ending in CRLF.
func (r reply) String() string {
	lines := strings.Split(r.text, "\n")
	var b strings.Builder
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		b.WriteString(strconv.Itoa(r.code))
		sep := " "
		if i < len(lines)-1 {
			sep = "-"
		}
		switch {
		case r.enhanced != "" && line != "":
			b.WriteString(sep + r.enhanced + " " + line)
		case r.enhanced != "":
			b.WriteString(sep + r.enhanced)
		case line != "":
			b.WriteString(sep + line)
		case sep == "-":
			b.WriteString(sep)
		}
		b.WriteString("\r\n")
	}
	return b.String()
}

// script holds the rules and how often each has fired. It is guarded by
// the server's mutex, so counts hold across connections.
type script struct {
	rules []*scriptedRule
}

type scriptedRule struct {
	Rule
	fired int
}

func (sc *script) add(rules ...Rule) {
	for _, r := range rules {
		r.Command = strings.ToUpper(strings.TrimSpace(r.Command))
		sc.rules = append(sc.rules, &scriptedRule{Rule: r})
	}
}

// match returns the action of the first live rule for command and arg and
// uses up one of its Times; ok is false when no rule matches.
func (sc *script) match(command, arg string) (act Action, ok bool) {
	for _, r := range sc.rules {
		if r.Command != command || (r.Times > 0 && r.fired >= r.Times) {
			continue
		}
		if r.Arg != "" && !containsFold(arg, r.Arg) {
			continue
		}
		r.fired++
		return r.Do, true
	}
	return Action{}, false
}

func containsFold(s, substr string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(substr))
}
