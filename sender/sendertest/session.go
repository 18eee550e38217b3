package sendertest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"slices"
	"strings"
)

// maxLine bounds one line, commands and message lines alike: far above
// RFC 5321's 1000 octets, low enough that a runaway client cannot exhaust
// memory. Longer message lines are still read, in pieces.
const maxLine = 64 << 10

// The server is written by hand rather than on github.com/emersion/go-smtp:
// go-smtp's Session can script only MAIL, RCPT and the reply after the
// final dot. It writes the greeting and the EHLO, STARTTLS, DATA (354),
// RSET, NOOP and QUIT replies itself, and once STARTTLS runs a wrapper
// around its connection sees only ciphertext, losing the transcript.

// A session serves one connection. It runs on a single goroutine, reading
// one line at a time from a buffered reader, so pipelined commands (RFC
// 2920) that arrive in one segment are answered one by one, in order.
type session struct {
	srv  *Server
	id   int
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	tls  bool

	refused bool // the greeting was negative: only QUIT is served (RFC 5321 §3.1)
	greeted bool
	authed  bool
	inTx    bool
	from    string
	rcpts   []string
	msg     *Message // read after DATA, waiting for its DATA-END reply
}

func newSession(srv *Server, c net.Conn, id int) *session {
	_, isTLS := c.(*tls.Conn)
	return &session{
		srv:  srv,
		id:   id,
		conn: c,
		r:    bufio.NewReaderSize(c, maxLine),
		w:    bufio.NewWriter(c),
		tls:  isTLS,
	}
}

func (s *session) run() {
	defer func() { s.conn.Close() }() // s.conn changes on STARTTLS
	if !s.answer("CONNECT", "") {
		return
	}
	for {
		line, err := s.r.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			s.write(reply{code: 500, enhanced: "5.5.6", text: "Line too long"})
			return
		}
		if err != nil {
			return
		}
		text := trimEOL(line)
		verb, arg, _ := strings.Cut(text, " ")
		verb = strings.ToUpper(verb)
		s.record(verb, redact(verb, text))
		if verb == "CONNECT" || verb == "DATA-END" {
			// Names of server events, not commands: a client sending one
			// must not fire their rules.
			verb = ""
		}
		if !s.answer(verb, arg) {
			return
		}
	}
}

// answer replies to one command, scripted or not, and reports whether the
// connection stays open.
func (s *session) answer(verb, arg string) bool {
	matchArg := arg
	switch verb {
	case "AUTH":
		matchArg, _, _ = strings.Cut(arg, " ") // the mechanism, never the credentials
	case "DATA-END":
		matchArg = string(s.msg.Data)
	}
	act, _ := s.srv.match(verb, matchArg)
	return s.perform(verb, arg, act)
}

func (s *session) perform(verb, arg string, act Action) bool {
	var r reply
	switch act.kind {
	case actDrop:
		s.commit(verb, arg, 0)
		return false
	case actStall:
		s.commit(verb, arg, 0)
		// Read and ignore until the client gives up or Close closes the
		// connection: either ends the copy.
		io.Copy(io.Discard, s.r)
		return false
	case actDelay:
		return s.srv.sleep(act.wait) && s.perform(verb, arg, *act.then)
	case actRaw:
		s.commit(verb, arg, 0)
		s.w.WriteString(act.raw)
		return s.w.Flush() == nil
	case actReply:
		r = act.reply
	default:
		var ok bool
		if r, ok = s.defaultReply(verb, arg); !ok {
			return false
		}
	}
	// State first, so a test that has read the reply sees its effect.
	s.commit(verb, arg, r.code)
	if s.write(r) != nil || r.code == 421 {
		return false
	}
	return s.after(verb, r.code)
}

// commit applies the effect of answering verb with code; code 0 means no
// reply was given.
func (s *session) commit(verb, arg string, code int) {
	ok := code >= 200 && code < 300
	switch verb {
	case "CONNECT":
		s.refused = code >= 400
	case "EHLO", "HELO":
		if ok {
			s.greeted = true
			s.resetTx() // RFC 5321 §4.1.4: EHLO implies RSET
		}
	case "AUTH":
		s.authed = s.authed || ok
	case "MAIL":
		if ok {
			s.resetTx()
			s.inTx = true
			s.from, _ = parsePath(arg, "FROM:")
		}
	case "RCPT":
		if ok {
			to, _ := parsePath(arg, "TO:")
			s.rcpts = append(s.rcpts, to)
		}
	case "RSET":
		if ok {
			s.resetTx()
		}
	case "DATA-END":
		s.msg.Code = code
		s.srv.store(*s.msg)
		s.resetTx()
	}
}

// after does what follows a reply on the wire; it reports whether the
// connection stays open.
func (s *session) after(verb string, code int) bool {
	switch {
	case verb == "QUIT":
		return false
	case verb == "DATA" && code == 354:
		if !s.readMessage() {
			return false
		}
		return s.answer("DATA-END", "")
	case verb == "STARTTLS" && code == 220:
		return s.startTLS()
	}
	return true
}

func (s *session) resetTx() {
	s.inTx, s.from, s.rcpts, s.msg = false, "", nil, nil
}

// readMessage reads message content up to the final dot (RFC 5321 §4.5.2).
func (s *session) readMessage() bool {
	var data bytes.Buffer
	atLineStart := true
	for {
		chunk, err := s.r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return false
		}
		if atLineStart {
			if trimEOL(chunk) == "." && err == nil {
				break
			}
			chunk = bytes.TrimPrefix(chunk, []byte(".")) // undo dot-stuffing
		}
		data.Write(chunk)
		atLineStart = err == nil
	}
	s.record("DATA-END", ".")
	s.msg = &Message{
		Conn:      s.id,
		From:      s.from,
		To:        slices.Clone(s.rcpts),
		Data:      data.Bytes(),
		MessageID: messageID(data.Bytes()),
		QueueID:   s.srv.nextQueueID(),
	}
	return true
}

func (s *session) startTLS() bool {
	// RFC 3207 §5: anything the client pipelined after STARTTLS arrived in
	// plaintext and must not be obeyed once TLS is up (CVE-2011-0411).
	s.r.Discard(s.r.Buffered())
	tc := tls.Server(s.conn, s.srv.tlsState().server)
	if err := tc.Handshake(); err != nil {
		return false
	}
	s.conn, s.tls = tc, true
	s.r.Reset(tc)
	s.w.Reset(tc)
	// RFC 3207 §4.2: the client starts over with EHLO.
	s.greeted, s.authed = false, false
	s.resetTx()
	return true
}

func (s *session) write(r reply) error {
	s.w.WriteString(r.String())
	return s.w.Flush()
}

func (s *session) record(verb, line string) {
	s.srv.record(Command{Conn: s.id, Verb: verb, Line: line, TLS: s.tls})
}

// readLine reads one line of an exchange inside a command (AUTH).
func (s *session) readLine() (string, bool) {
	line, err := s.r.ReadSlice('\n')
	if err != nil {
		return "", false
	}
	return trimEOL(line), true
}

func trimEOL(b []byte) string {
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
}

// redact hides the initial response of "AUTH mechanism initial-response".
func redact(verb, line string) string {
	if verb != "AUTH" {
		return line
	}
	f := strings.SplitN(line, " ", 3)
	if len(f) < 3 {
		return line
	}
	return f[0] + " " + f[1] + " " + Redacted
}

// parsePath extracts the address from "FROM:<addr> params" or
// "TO:<addr> params". It is lenient, as a test server should be: a space
// after the colon and a missing pair of brackets are accepted.
func parsePath(arg, prefix string) (string, bool) {
	if len(arg) < len(prefix) || !strings.EqualFold(arg[:len(prefix)], prefix) {
		return "", false
	}
	rest := strings.TrimLeft(arg[len(prefix):], " ")
	if strings.HasPrefix(rest, "<") {
		addr, _, ok := strings.Cut(rest[1:], ">")
		return addr, ok
	}
	addr, _, _ := strings.Cut(rest, " ")
	return addr, addr != ""
}
