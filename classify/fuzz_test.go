package classify

import (
	"net/textproto"
	"strconv"
	"strings"
	"testing"
)

var fuzzSeeds = []string{
	"250 OK",
	"550 5.1.1 User unknown\r\n",
	"250-mx.example.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
	"451 4.7.1 Greylisted, retry in 300 seconds",
	"421-4.7.0 Try again later\r\n421 closing",
	"452 4.5.3 Too many recipients",
	"550 4.4.7 Expired",
	"099 nope",
	"700 nope",
	"250",
	"",
	"2",
	"250-\n",
	"550 5.1.",
	"451 4.7.500 x",
	"\xff\xfe\xfd",
}

// FuzzParse checks that Parse never panics, that what it accepts is a reply
// whose class agrees with its first digit, and that known codes are described.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s, "RCPT")
	}
	f.Fuzz(func(t *testing.T, in, command string) {
		r, err := Parse(in)
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("Parse(%q) error %T is not a *ParseError", in, err)
			}
			return
		}
		if r.Code < 200 || r.Code > 599 {
			t.Fatalf("Parse(%q) accepted code %d", in, r.Code)
		}
		if d := strings.TrimRight(in, "\r\n"); len(d) < 3 || d[:3] != strconv.Itoa(r.Code) {
			t.Fatalf("Parse(%q) code %d is not the input's first three digits", in, r.Code)
		}
		if r.Enhanced != "" && r.Enhanced[0] != '2' && r.Enhanced[0] != '4' && r.Enhanced[0] != '5' {
			t.Fatalf("Parse(%q) accepted enhanced code %q", in, r.Enhanced)
		}
		r.Command = command
		checkVerdict(t, r, ClassifyReply(r))
	})
}

// FuzzClassify feeds arbitrary replies through the error path: a
// *textproto.Error inside a *CommandError, as the sender produces them.
func FuzzClassify(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(451, s, "DATA-END")
	}
	f.Fuzz(func(t *testing.T, code int, msg, command string) {
		err := &CommandError{Command: command, Err: &textproto.Error{Code: code, Msg: msg}}
		v := Classify(err)
		if v.Command != command {
			t.Fatalf("Classify lost the command: %q, want %q", v.Command, command)
		}
		if code < 200 || code > 599 {
			if v.Action != Reconnect || v.Reason != ReasonProtocolError {
				t.Fatalf("code %d: %v, want a protocol error", code, v)
			}
			return
		}
		r := ReplyOf(code, msg)
		r.Command = command
		checkVerdict(t, r, v)
	})
}

func checkVerdict(t *testing.T, r Reply, v Verdict) {
	t.Helper()
	want := classOfDigit(r.Code)
	switch {
	case v.Class == want:
	case v.Class == Transient && v.Action == SendRestNow && r.Command == CmdRCPT:
		// the RFC 5321 §4.5.3.1.10 exception: a 5xx recipient limit
	default:
		t.Fatalf("%q after %q: class %v, want %v", r, r.Command, v.Class, want)
	}
	if v.Action == NoAction {
		t.Fatalf("%q: no action", r)
	}
	if v.Description == "" {
		t.Fatalf("%q: no description", r)
	}
	if v.RetryAfter < 0 || v.RetryAfter > DefaultMaxRetryAfter {
		t.Fatalf("%q: RetryAfter %v out of bounds", r, v.RetryAfter)
	}
	if r.Enhanced != "" && v.EnhancedDescription == "" {
		t.Fatalf("%q: enhanced code %q not described", r, r.Enhanced)
	}
	if v.Code != r.Code || v.Enhanced != r.Enhanced {
		t.Fatalf("%q: verdict codes %d %q", r, v.Code, v.Enhanced)
	}
}
