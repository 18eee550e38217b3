package classify

import (
	"strconv"
	"strings"
)

// The commands a Reply can answer, as Reply.Command and Verdict.Command name
// them. CmdConnect is the greeting; CmdDataEnd is the reply after the final
// "." of the message body.
const (
	CmdConnect  = "CONNECT"
	CmdEHLO     = "EHLO"
	CmdHELO     = "HELO"
	CmdSTARTTLS = "STARTTLS"
	CmdAUTH     = "AUTH"
	CmdMAIL     = "MAIL"
	CmdRCPT     = "RCPT"
	CmdDATA     = "DATA"
	CmdDataEnd  = "DATA-END"
	CmdRSET     = "RSET"
	CmdNOOP     = "NOOP"
	CmdQUIT     = "QUIT"
	CmdVRFY     = "VRFY"
	CmdETRN     = "ETRN"
	CmdATRN     = "ATRN"
)

// MaxReplySize bounds the input Parse accepts. RFC 5321 §4.5.3.1.5 limits a
// reply line to 512 octets; this leaves room for long multi-line replies
// while keeping a hostile server from making Parse do unbounded work.
const MaxReplySize = 64 << 10

// Reply is one SMTP reply: its basic code, its RFC 3463 enhanced status
// code when the server gave one, its text, and the command it answered.
type Reply struct {
	Code     int    // the basic reply code, 200–599
	Enhanced string // "5.1.1", or "" when the reply has none
	// Text is the reply's text without the codes; the lines of a multi-line
	// reply are joined by "\n". It is the server's, and may hold personal data.
	Text string
	// Command names what the reply answered (CmdMAIL, CmdRCPT, …); "" when
	// unknown. Parse leaves it empty: only the client knows what it sent.
	Command string
}

// String formats the reply as its first line would appear on the wire,
// without the line ending: "550 5.1.1 User unknown".
func (r Reply) String() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(r.Code))
	if r.Enhanced != "" {
		b.WriteByte(' ')
		b.WriteString(r.Enhanced)
	}
	if r.Text != "" {
		b.WriteByte(' ')
		b.WriteString(r.Text)
	}
	return b.String()
}

// ParseError reports input that is not an SMTP reply. A client that meets
// one cannot trust the rest of the conversation: Classify treats it like a
// lost connection.
type ParseError struct {
	Reason string // what is wrong, e.g. "code is not three digits"
	Input  string // the start of the offending input, at most 64 bytes
}

func (e *ParseError) Error() string {
	return "classify: not an SMTP reply: " + e.Reason + ": " + strconv.Quote(e.Input)
}

func parseError(reason, input string) *ParseError {
	if len(input) > 64 {
		input = input[:64]
	}
	// Clone so that the error does not keep a large input alive.
	return &ParseError{Reason: reason, Input: strings.Clone(input)}
}

// Parse reads one SMTP reply: a single line "250 2.0.0 OK" or a multi-line
// reply ("250-first", …, "250 last") with lines ending in CRLF or LF; one
// trailing line ending is allowed. The enhanced code is taken from the first
// line when it follows the basic code, and stripped from the other lines when
// they repeat it. Parse never panics, does at most linear work on input of
// at most MaxReplySize bytes, and returns a *ParseError for anything that is
// not a reply.
func Parse(line string) (Reply, error) {
	if len(line) > MaxReplySize {
		return Reply{}, parseError("longer than MaxReplySize", line)
	}
	input := line
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return Reply{}, parseError("empty", input)
	}

	var (
		r     Reply
		multi strings.Builder
		lines int
	)
	for rest := line; ; {
		current, next, more := strings.Cut(rest, "\n")
		current = strings.TrimSuffix(current, "\r")
		code, text, last, err := parseLine(current)
		if err != nil {
			return Reply{}, parseError(err.Error(), input)
		}
		if lines == 0 {
			r.Code = code
			r.Enhanced, text = cutEnhanced(text)
		} else {
			if code != r.Code {
				return Reply{}, parseError("lines of one reply carry different codes", input)
			}
			if r.Enhanced != "" {
				if e, t := cutEnhanced(text); e == r.Enhanced {
					text = t
				}
			}
		}
		if last != !more {
			if last {
				return Reply{}, parseError("text after the last line of a reply", input)
			}
			return Reply{}, parseError("multi-line reply has no last line", input)
		}
		switch {
		case lines == 0 && !more:
			r.Text = text // a single line: no copy
		default:
			if lines > 0 {
				multi.WriteByte('\n')
			}
			multi.WriteString(text)
		}
		lines++
		if !more {
			break
		}
		rest = next
	}
	if lines > 1 {
		r.Text = multi.String()
	}
	return r, nil
}

type lineError string

func (e lineError) Error() string { return string(e) }

// parseLine reads "NNN text", "NNN-text" or "NNN". last reports whether the
// line ends the reply.
func parseLine(s string) (code int, text string, last bool, err error) {
	if len(s) < 3 {
		return 0, "", false, lineError("code is not three digits")
	}
	for i := 0; i < 3; i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, "", false, lineError("code is not three digits")
		}
	}
	code = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	if !validCode(code) {
		return 0, "", false, lineError("code outside 200-599")
	}
	if len(s) == 3 {
		return code, "", true, nil
	}
	switch s[3] {
	case ' ':
		return code, s[4:], true, nil
	case '-':
		return code, s[4:], false, nil
	}
	return 0, "", false, lineError("code is not followed by a space or a hyphen")
}

// cutEnhanced splits an RFC 3463 enhanced status code ("5.1.1") off the
// start of a reply's text. Class 2, 4 or 5, subject and detail of one to
// three digits, then a space or the end.
func cutEnhanced(text string) (enhanced, rest string) {
	if len(text) < 5 || text[1] != '.' || (text[0] != '2' && text[0] != '4' && text[0] != '5') {
		return "", text
	}
	_, i, ok := enhancedPart(text, 2, "")
	if !ok || i >= len(text) || text[i] != '.' {
		return "", text
	}
	_, i, ok = enhancedPart(text, i+1, "")
	if !ok {
		return "", text
	}
	switch {
	case i == len(text):
		return text, ""
	case text[i] == ' ':
		return text[:i], text[i+1:]
	}
	return "", text
}

// ReplyOf returns the Reply for a code and message as net/textproto's
// ReadResponse and *textproto.Error give them: the lines' texts joined by
// "\n". The enhanced code is split off the first line and, where the other
// lines repeat it, off them too, as Parse does.
func ReplyOf(code int, msg string) Reply {
	r := Reply{Code: code}
	first, rest, multi := strings.Cut(msg, "\n")
	r.Enhanced, first = cutEnhanced(first)
	if !multi {
		r.Text = first
		return r
	}
	if r.Enhanced == "" {
		r.Text = msg
		return r
	}
	var b strings.Builder
	b.Grow(len(msg))
	b.WriteString(first)
	for _, line := range strings.Split(rest, "\n") {
		if e, t := cutEnhanced(line); e == r.Enhanced {
			line = t
		}
		b.WriteByte('\n')
		b.WriteString(line)
	}
	r.Text = b.String()
	return r
}
