package sendertest

import "strings"

// defaultReply is the server's unscripted answer to verb: a small, strict
// enough RFC 5321 server. It reports false when the connection broke (only
// AUTH, which reads more lines, can fail).
func (s *session) defaultReply(verb, arg string) (reply, bool) {
	o := &s.srv.opts
	if s.refused && verb != "QUIT" {
		return reply{503, "5.5.1", "Service refused, send QUIT"}, true
	}
	switch verb {
	case "CONNECT":
		return reply{220, "", o.Hostname + " ESMTP sendertest ready"}, true
	case "EHLO", "HELO":
		if strings.TrimSpace(arg) == "" {
			return reply{501, "5.5.4", verb + " requires a domain or address"}, true
		}
		if verb == "HELO" {
			return reply{250, "", o.Hostname}, true
		}
		return reply{250, "", strings.Join(s.extensions(), "\n")}, true
	case "STARTTLS":
		switch {
		case !o.TLS:
			return reply{502, "5.5.1", "STARTTLS not available"}, true
		case s.tls:
			return reply{503, "5.5.1", "TLS already active"}, true
		case arg != "":
			return reply{501, "5.5.4", "STARTTLS takes no argument"}, true
		}
		return reply{220, "2.0.0", "Ready to start TLS"}, true
	case "AUTH":
		return s.auth(arg)
	case "MAIL":
		switch {
		case !s.greeted:
			return reply{503, "5.5.1", "Send EHLO first"}, true
		case s.inTx:
			return reply{503, "5.5.1", "Nested MAIL command"}, true
		case o.Username != "" && !s.authed:
			return reply{530, "5.7.0", "Authentication required"}, true
		}
		if _, ok := parsePath(arg, "FROM:"); !ok {
			return reply{501, "5.5.2", "Syntax: MAIL FROM:<address>"}, true
		}
		return reply{250, "2.1.0", "Sender OK"}, true
	case "RCPT":
		if !s.inTx {
			return reply{503, "5.5.1", "Send MAIL first"}, true
		}
		if _, ok := parsePath(arg, "TO:"); !ok {
			return reply{501, "5.5.2", "Syntax: RCPT TO:<address>"}, true
		}
		if o.MaxRecipients > 0 && len(s.rcpts) >= o.MaxRecipients {
			return reply{452, "4.5.3", "Too many recipients"}, true
		}
		return reply{250, "2.1.5", "Recipient OK"}, true
	case "DATA":
		switch {
		case !s.inTx:
			return reply{503, "5.5.1", "Send MAIL first"}, true
		case len(s.rcpts) == 0:
			return reply{554, "5.5.1", "No valid recipients"}, true // RFC 2920 §3.1
		case arg != "":
			return reply{501, "5.5.4", "DATA takes no argument"}, true
		}
		return reply{354, "", "Start mail input; end with <CRLF>.<CRLF>"}, true
	case "DATA-END":
		return reply{250, "2.0.0", "OK: queued as " + s.msg.QueueID}, true
	case "RSET", "NOOP":
		return reply{250, "2.0.0", "OK"}, true
	case "VRFY":
		return reply{252, "2.5.0", "Cannot VRFY user, but will accept message"}, true
	case "QUIT":
		return reply{221, "2.0.0", "Bye"}, true
	}
	return reply{500, "5.5.2", "Command not recognized"}, true
}

// extensions lists the EHLO reply lines after the greeting line.
func (s *session) extensions() []string {
	o := &s.srv.opts
	ext := []string{o.Hostname, "PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"}
	if o.TLS && !s.tls {
		ext = append(ext, "STARTTLS")
	}
	if o.Username != "" {
		ext = append(ext, "AUTH PLAIN LOGIN")
	}
	return ext
}
