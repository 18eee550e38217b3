package classify

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postwise/postwise/classify/internal/seed"
)

func loadSeed(t testing.TB) []seed.Code {
	t.Helper()
	codes, err := seed.Load("data")
	if err != nil {
		t.Fatal(err)
	}
	return codes
}

// TestSeedCodesDescribed proves that every row of the seed table made it
// into the generated table, with each of its meanings under the commands
// reply-contexts.tsv names, and that every seed sentence is used or
// explicitly dropped.
func TestSeedCodesDescribed(t *testing.T) {
	codes := loadSeed(t)
	if len(codes) != 33 {
		t.Fatalf("seed table has %d codes, want 33", len(codes))
	}
	if got := SeedCodes(); len(got) != len(codes) {
		t.Fatalf("SeedCodes() has %d codes, data has %d", len(got), len(codes))
	}
	for _, c := range codes {
		t.Run(fmt.Sprint(c.Code), func(t *testing.T) {
			if got := Describe(c.Code); got != c.Default {
				t.Errorf("Describe(%d) = %q, want %q", c.Code, got, c.Default)
			}
			for cmd, want := range c.ByCommand {
				if got := DescribeReply(c.Code, cmd); got != want {
					t.Errorf("DescribeReply(%d, %s) = %q, want %q", c.Code, cmd, got, want)
				}
			}
			// Every sentence of the seed's text is a meaning of the code,
			// or was dropped with a reason.
			for i, s := range c.Sentences {
				if _, dropped := c.Dropped[i+1]; dropped {
					continue
				}
				found := s == Describe(c.Code)
				for cmd := range c.ByCommand {
					found = found || s == DescribeReply(c.Code, cmd)
				}
				if !found {
					t.Errorf("sentence %q of %d is not a description", s, c.Code)
				}
			}
		})
	}
}

// TestDescribeByCommand pins the meanings the seed table merges.
func TestDescribeByCommand(t *testing.T) {
	tests := []struct {
		code    int
		command string
		want    string
	}{
		{220, CmdConnect, "Domain service ready"},
		{220, CmdSTARTTLS, "Ready to start TLS"},
		{250, CmdMAIL, "Requested mail action okay, completed"},
		{250, CmdETRN, "OK, queuing for node <x> started"},
		{251, CmdRCPT, "User not local, will forward to <forward-path>"},
		{251, CmdETRN, "OK, no messages waiting for node <x>"},
		{252, CmdVRFY, "Cannot VRFY user (e.g., info is not local), but will take message for this user and attempt delivery"},
		{252, CmdETRN, "OK, pending messages for node <x> started"},
		{253, CmdETRN, "OK, <n> pending messages for node <x> started"},
		{354, CmdDATA, "Start mail input; end with <CRLF>.<CRLF>"},
		{450, CmdRCPT, "Requested mail action not taken: mailbox unavailable"},
		{450, CmdATRN, "ATRN request refused"},
		{451, CmdDataEnd, "Requested action aborted: local error in processing"},
		{451, CmdATRN, "Unable to process ATRN request now"},
		{454, CmdSTARTTLS, "TLS not available due to temporary reason"},
		{454, CmdAUTH, "Temporary authentication failure"},
		{459, CmdETRN, "Node <x> not allowed: <reason>"},
		{500, CmdEHLO, "Syntax error"},
		{530, CmdMAIL, "Authentication required"},
		{530, CmdRCPT, "Must issue a STARTTLS command first"},
		{538, CmdAUTH, "Encryption required for requested authentication mechanism"},
		{551, CmdRCPT, "User not local; please try <forward-path>"},
		{554, CmdConnect, "No SMTP service here"}, // RFC 5321 §3.1
		{554, CmdDataEnd, "Transaction failed"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s", tt.code, tt.command), func(t *testing.T) {
			if got := DescribeReply(tt.code, tt.command); got != tt.want {
				t.Errorf("DescribeReply(%d, %s) = %q, want %q", tt.code, tt.command, got, tt.want)
			}
		})
	}
}

func TestDescribeUnlisted(t *testing.T) {
	tests := []struct {
		code int
		want string // a prefix
	}{
		{299, "Positive completion"},
		{334, "Positive intermediate"},
		{471, "Transient negative"},
		{599, "Permanent negative"},
		{0, ""},
		{99, ""},
		{199, ""},
		{600, ""},
		{700, ""},
		{-250, ""},
	}
	for _, tt := range tests {
		got := Describe(tt.code)
		if !strings.HasPrefix(got, tt.want) || (tt.want == "" && got != "") {
			t.Errorf("Describe(%d) = %q, want prefix %q", tt.code, got, tt.want)
		}
	}
}

// TestRegistryDescribed proves every class, subject and enumerated row of the
// IANA registry copy is in the generated tables, under every class it can
// appear with.
func TestRegistryDescribed(t *testing.T) {
	rows, err := seed.LoadRegistry("data/enhanced-status-codes.tsv")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 92 { // 3 classes, 8 subjects, 81 enumerated codes
		t.Fatalf("registry has %d rows, want 92", len(rows))
	}
	for _, r := range rows {
		t.Run(r.Code, func(t *testing.T) {
			if got := DescribeEnhanced(r.Code); got != r.Summary {
				t.Errorf("DescribeEnhanced(%q) = %q, want %q", r.Code, got, r.Summary)
			}
			switch r.Kind {
			case seed.SubjectRow:
				for _, class := range []int{2, 4, 5} {
					code := fmt.Sprintf("%d.%d.YYY", class, r.Subject)
					if got := DescribeEnhanced(code); got != r.Summary {
						t.Errorf("DescribeEnhanced(%q) = %q, want %q", code, got, r.Summary)
					}
				}
			case seed.DetailRow:
				for _, class := range []int{2, 4, 5} {
					code := fmt.Sprintf("%d.%d.%d", class, r.Subject, r.Detail)
					if got := DescribeEnhanced(code); got != r.Summary {
						t.Errorf("DescribeEnhanced(%q) = %q, want %q", code, got, r.Summary)
					}
				}
			}
		})
	}
}

func TestDescribeEnhancedFallbacks(t *testing.T) {
	tests := []struct{ code, want string }{
		{"5.1.99", "Addressing Status"},           // unlisted detail: the subject
		{"4.9.1", "Persistent Transient Failure"}, // unlisted subject: the class
		{"4.7.500", "Security or Policy Status"},  // Microsoft's private details
		{"2.0.0", "Other undefined Status"},
		{"", ""},
		{"5", ""},
		{"5.1", ""},
		{"5.1.", ""},
		{"6.1.1", ""},
		{"5.1.1 ", ""},
		{"5.1111.1", ""},
		{"5.1.1111", ""},
		{"X.XXX.YYY", ""},
		{"5.XXX.1", ""},
		{"a.b.c", ""},
	}
	for _, tt := range tests {
		if got := DescribeEnhanced(tt.code); got != tt.want {
			t.Errorf("DescribeEnhanced(%q) = %q, want %q", tt.code, got, tt.want)
		}
	}
}

// TestGeneratedTablesUpToDate fails when a data file or the generator
// changed without `go generate`.
func TestGeneratedTablesUpToDate(t *testing.T) {
	out := filepath.Join(t.TempDir(), "tables_gen.go")
	cmd := exec.Command("go", "run", "./internal/gen", "-data", "data", "-out", out)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generator: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("tables_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("tables_gen.go is stale: run go generate ./classify")
	}
}
