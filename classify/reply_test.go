package classify

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Reply
	}{
		{"plain", "250 OK", Reply{Code: 250, Text: "OK"}},
		{"enhanced", "550 5.1.1 User unknown", Reply{Code: 550, Enhanced: "5.1.1", Text: "User unknown"}},
		{"crlf", "451 4.7.1 Greylisted\r\n", Reply{Code: 451, Enhanced: "4.7.1", Text: "Greylisted"}},
		{"lf", "421 4.4.2 Bye\n", Reply{Code: 421, Enhanced: "4.4.2", Text: "Bye"}},
		{"code only", "250", Reply{Code: 250}},
		{"code and space", "250 ", Reply{Code: 250}},
		{"enhanced only", "250 2.0.0", Reply{Code: 250, Enhanced: "2.0.0"}},
		{"three-digit parts", "451 4.7.500 Server busy", Reply{Code: 451, Enhanced: "4.7.500", Text: "Server busy"}},
		{"conflicting classes kept", "550 4.4.7 Expired", Reply{Code: 550, Enhanced: "4.4.7", Text: "Expired"}},
		{"not an enhanced code: four digits", "550 5.1.1111 x", Reply{Code: 550, Text: "5.1.1111 x"}},
		{"not an enhanced code: class 3", "354 3.0.0 go", Reply{Code: 354, Text: "3.0.0 go"}},
		{"not an enhanced code: glued", "250 2.0.0OK", Reply{Code: 250, Text: "2.0.0OK"}},
		{"version number is text", "220 mx.example.com ESMTP 1.2.3", Reply{Code: 220, Text: "mx.example.com ESMTP 1.2.3"}},
		{
			"multi-line", "250-mx.example.com\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
			Reply{Code: 250, Text: "mx.example.com\nPIPELINING\n8BITMIME"},
		},
		{
			"multi-line enhanced repeated", "550-5.7.1 Message rejected\r\n550-5.7.1 see the policy page\r\n550 5.7.1 at example.com",
			Reply{Code: 550, Enhanced: "5.7.1", Text: "Message rejected\nsee the policy page\nat example.com"},
		},
		{
			"multi-line enhanced on first line only", "421-4.7.0 Try again later\n421 closing connection",
			Reply{Code: 421, Enhanced: "4.7.0", Text: "Try again later\nclosing connection"},
		},
		{"multi-line with empty continuation", "250-\r\n250 OK", Reply{Code: 250, Text: "\nOK"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("Parse(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseMalformed(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"line ending only", "\r\n"},
		{"short", "25"},
		{"letters", "abc OK"},
		{"code 099", "099 nope"},
		{"code 199", "199 nope"},
		{"code 700", "700 nope"},
		{"code 600", "600 nope"},
		{"bad separator", "250_OK"},
		{"four digits", "2500 OK"},
		{"sign", "-25 OK"},
		{"continuation without end", "250-first\r\n250-second\r\n"},
		{"end then more", "250 first\r\n250 second"},
		{"codes differ", "250-first\r\n251 second"},
		{"garbage line", "250-first\r\nhello\r\n250 end"},
		{"nul", "\x00\x00\x00"},
		{"too long", "250 " + strings.Repeat("x", MaxReplySize)},
		{"ten megabytes of garbage", strings.Repeat("\xff", 10<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.in)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%.20q) = %v, %v; want a *ParseError", tt.in, r, err)
			}
			if len(pe.Input) > 64 {
				t.Errorf("ParseError keeps %d bytes of input, want at most 64", len(pe.Input))
			}
			if r != (Reply{}) {
				t.Errorf("Parse(%.20q) returned %v with its error", tt.in, r)
			}
		})
	}
}

func TestParseLargeInputBoundedAllocation(t *testing.T) {
	garbage := strings.Repeat("7", 10<<20)
	allocs := testing.AllocsPerRun(10, func() { _, _ = Parse(garbage) })
	if allocs > 2 {
		t.Errorf("Parse of 10 MB allocates %v times, want at most 2", allocs)
	}
}

func TestReplyString(t *testing.T) {
	tests := []struct {
		r    Reply
		want string
	}{
		{Reply{Code: 250}, "250"},
		{Reply{Code: 250, Text: "OK"}, "250 OK"},
		{Reply{Code: 550, Enhanced: "5.1.1", Text: "User unknown", Command: CmdRCPT}, "550 5.1.1 User unknown"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func TestReplyOf(t *testing.T) {
	tests := []struct {
		code int
		msg  string
		want Reply
	}{
		{250, "OK", Reply{Code: 250, Text: "OK"}},
		{550, "5.1.1 User unknown", Reply{Code: 550, Enhanced: "5.1.1", Text: "User unknown"}},
		{550, "5.7.1 one\n5.7.1 two", Reply{Code: 550, Enhanced: "5.7.1", Text: "one\ntwo"}},
		{250, "mx\nPIPELINING", Reply{Code: 250, Text: "mx\nPIPELINING"}},
		{421, "", Reply{Code: 421}},
	}
	for _, tt := range tests {
		if got := ReplyOf(tt.code, tt.msg); got != tt.want {
			t.Errorf("ReplyOf(%d, %q) = %#v, want %#v", tt.code, tt.msg, got, tt.want)
		}
	}
	// ReplyOf agrees with Parse on the same reply.
	parsed, _ := Parse("550-5.7.1 one\r\n550 5.7.1 two\r\n")
	if got := ReplyOf(550, "5.7.1 one\n5.7.1 two"); got != parsed {
		t.Errorf("ReplyOf = %#v, Parse = %#v", got, parsed)
	}
}
