package classify

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/postwise/postwise/classify/internal/seed"
)

type want struct {
	class  Class
	action Action
	reason Reason
}

// TestSeedCodeVerdicts classifies every code of the seed table as a reply to
// the command that produces it.
func TestSeedCodeVerdicts(t *testing.T) {
	tests := []struct {
		code    int
		command string
		want
	}{
		{211, "HELP", want{Success, Done, ReasonNone}},
		{214, "HELP", want{Success, Done, ReasonNone}},
		{220, CmdConnect, want{Success, Done, ReasonNone}},
		{220, CmdSTARTTLS, want{Success, Done, ReasonNone}},
		{221, CmdQUIT, want{Success, Done, ReasonNone}},
		{250, CmdMAIL, want{Success, Done, ReasonNone}},
		{250, CmdETRN, want{Success, Done, ReasonNone}},
		{251, CmdRCPT, want{Success, Done, ReasonNone}},
		{252, CmdVRFY, want{Success, Done, ReasonNone}},
		{253, CmdETRN, want{Success, Done, ReasonNone}},
		{354, CmdDATA, want{Intermediate, Proceed, ReasonNone}},
		{355, "BDAT", want{Intermediate, Proceed, ReasonNone}},
		{421, CmdMAIL, want{Transient, Reconnect, ReasonServiceUnavailable}},
		{432, CmdAUTH, want{Transient, FailMessage, ReasonPasswordTransition}},
		{450, CmdRCPT, want{Transient, Retry, ReasonMailboxUnavailable}},
		{450, CmdATRN, want{Transient, Retry, ReasonNone}},
		{450, CmdConnect, want{Transient, Retry, ReasonServiceUnavailable}},
		{500, CmdConnect, want{Permanent, FailMessage, ReasonNoService}},
		{451, CmdDataEnd, want{Transient, Retry, ReasonLocalError}},
		{451, CmdATRN, want{Transient, Retry, ReasonLocalError}},
		{452, CmdMAIL, want{Transient, Retry, ReasonStorage}},
		{452, CmdRCPT, want{Transient, SendRestNow, ReasonTooManyRecipients}},
		{453, CmdATRN, want{Transient, Retry, ReasonNone}},
		{454, CmdSTARTTLS, want{Transient, Retry, ReasonTLSUnavailable}},
		{454, CmdAUTH, want{Transient, Retry, ReasonAuthTemporary}},
		{458, CmdETRN, want{Transient, Retry, ReasonNone}},
		{459, CmdETRN, want{Transient, Retry, ReasonNone}},
		{500, CmdEHLO, want{Permanent, FailMessage, ReasonSyntax}},
		{501, CmdMAIL, want{Permanent, FailMessage, ReasonSyntax}},
		{502, CmdEHLO, want{Permanent, FailMessage, ReasonNotImplemented}},
		{503, CmdDATA, want{Permanent, FailMessage, ReasonBadSequence}},
		{504, CmdAUTH, want{Permanent, FailMessage, ReasonAuthFailed}},
		{521, CmdConnect, want{Permanent, FailMessage, ReasonNoService}},
		{530, CmdMAIL, want{Permanent, FailMessage, ReasonAuthRequired}},
		{534, CmdAUTH, want{Permanent, FailMessage, ReasonAuthTooWeak}},
		{538, CmdAUTH, want{Permanent, FailMessage, ReasonTLSRequired}},
		{550, CmdRCPT, want{Permanent, FailRecipient, ReasonBadMailbox}},
		{550, CmdMAIL, want{Permanent, FailMessage, ReasonSenderRejected}},
		{551, CmdRCPT, want{Permanent, FailRecipient, ReasonBadMailbox}},
		{552, CmdRCPT, want{Permanent, FailRecipient, ReasonMailboxFull}},
		{552, CmdDataEnd, want{Permanent, FailMessage, ReasonMessageTooBig}},
		{553, CmdRCPT, want{Permanent, FailRecipient, ReasonBadMailbox}},
		{553, CmdMAIL, want{Permanent, FailMessage, ReasonSenderRejected}},
		{554, CmdConnect, want{Permanent, FailMessage, ReasonNoService}},
		{554, CmdDataEnd, want{Permanent, FailMessage, ReasonTransactionFailed}},
	}
	seen := map[int]bool{}
	for _, tt := range tests {
		seen[tt.code] = true
		t.Run(fmt.Sprintf("%d/%s", tt.code, tt.command), func(t *testing.T) {
			r := Reply{Code: tt.code, Command: tt.command, Text: "server text"}
			v := ClassifyReply(r)
			check(t, r, v, tt.want)
			if v.Description != DescribeReply(tt.code, tt.command) || v.Description == "" {
				t.Errorf("Description = %q, want %q", v.Description, DescribeReply(tt.code, tt.command))
			}
			if v.Source != FromServer || v.Code != tt.code || v.Command != tt.command {
				t.Errorf("verdict %+v does not carry the reply's source, code and command", v)
			}
		})
	}
	for _, c := range SeedCodes() {
		if !seen[c] {
			t.Errorf("seed code %d has no verdict test", c)
		}
	}
}

// TestRules covers each rule of the package documentation.
func TestRules(t *testing.T) {
	tests := []struct {
		name  string
		reply string
		cmd   string
		want
		retryAfter time.Duration
		conflict   bool
	}{
		// The first digit decides; the basic code wins over the enhanced class.
		{"unknown 2xx", "299 whatever", CmdMAIL, want{Success, Done, ReasonNone}, 0, false},
		{"unknown 4xx", "479 whatever", CmdMAIL, want{Transient, Retry, ReasonNone}, 0, false},
		{"unknown 5xx", "599 whatever", CmdDataEnd, want{Permanent, FailMessage, ReasonNone}, 0, false},
		{"microsoft 451 5.7.500", "451 5.7.500 Access denied", CmdRCPT, want{Transient, Retry, ReasonLocalError}, 0, true},
		{"550 4.4.7", "550 4.4.7 Message expired", CmdDataEnd, want{Permanent, FailMessage, ReasonNone}, 0, true},
		{"agreeing classes", "550 5.1.1 No such user", CmdRCPT, want{Permanent, FailRecipient, ReasonBadMailbox}, 0, false},

		// 421 needs a new connection.
		{"421 greeting", "421 4.3.2 Service shutting down", CmdConnect, want{Transient, Reconnect, ReasonServiceUnavailable}, 0, false},
		{"421 at data end", "421 Timeout", CmdDataEnd, want{Transient, Reconnect, ReasonServiceUnavailable}, 0, false},
		{"421 rate limit", "421 4.7.0 Try again later, closing connection", CmdMAIL, want{Transient, Reconnect, ReasonRateLimited}, DefaultRateLimitDelay, false},

		// Too many recipients: send the rest now.
		{"452 4.5.3", "452 4.5.3 Too many recipients", CmdRCPT, want{Transient, SendRestNow, ReasonTooManyRecipients}, 0, false},
		{"452 bare on RCPT", "452 Too many recipients", CmdRCPT, want{Transient, SendRestNow, ReasonTooManyRecipients}, 0, false},
		{"451 4.5.3", "451 4.5.3 Too many recipients", CmdRCPT, want{Transient, SendRestNow, ReasonTooManyRecipients}, 0, false},
		{"552 5.5.3", "552 5.5.3 Too many recipients", CmdRCPT, want{Transient, SendRestNow, ReasonTooManyRecipients}, 0, false},
		{"452 4.3.1 on RCPT is storage", "452 4.3.1 Insufficient system storage", CmdRCPT, want{Transient, Retry, ReasonStorage}, 0, false},
		{"452 on MAIL is storage", "452 Insufficient system storage", CmdMAIL, want{Transient, Retry, ReasonStorage}, 0, false},

		// Greylisting and rate limiting carry delay hints.
		{"greylist 4.7.1", "451 4.7.1 Please try again later", CmdRCPT, want{Transient, Retry, ReasonGreylisted}, DefaultGreylistDelay, false},
		{"greylist wording", "450 Greylisted, see http://postgrey.schweikert.ch/help/example.com.html", CmdRCPT, want{Transient, Retry, ReasonGreylisted}, DefaultGreylistDelay, false},
		{"greylist with seconds", "451 4.7.1 Greylisting in action, please come back in 60 seconds", CmdRCPT, want{Transient, Retry, ReasonGreylisted}, time.Minute, false},
		{"graylist with minutes", "450 4.2.0 Graylisted, retry in 2 minutes", CmdRCPT, want{Transient, Retry, ReasonGreylisted}, 2 * time.Minute, false},
		{"absurd hint capped", "451 4.7.1 greylisted, retry in 99999 hours", CmdRCPT, want{Transient, Retry, ReasonGreylisted}, DefaultMaxRetryAfter, false},
		{"rate 4.7.0", "450 4.7.0 Try again later", CmdMAIL, want{Transient, Retry, ReasonRateLimited}, DefaultRateLimitDelay, false},
		{"rate 4.7.28", "451 4.7.28 Mail flood detected", CmdDataEnd, want{Transient, Retry, ReasonRateLimited}, DefaultRateLimitDelay, false},
		{"gmail too quickly", "450 4.2.1 The user you are trying to contact is receiving mail too quickly", CmdRCPT, want{Transient, Retry, ReasonRateLimited}, DefaultRateLimitDelay, false},
		{"rate limit wording", "451 Rate limit exceeded, wait 30 s", CmdMAIL, want{Transient, Retry, ReasonRateLimited}, 30 * time.Second, false},
		{"numbers that are not delays", "451 4.7.0 limit 100 messages per hour", CmdMAIL, want{Transient, Retry, ReasonRateLimited}, DefaultRateLimitDelay, false},
		{"mailbox full 4.2.2", "452 4.2.2 Mailbox full", CmdRCPT, want{Transient, Retry, ReasonMailboxFull}, 0, false},

		// Authentication and TLS: permanent; 454 transient.
		{"530", "530 5.7.0 Authentication required", CmdMAIL, want{Permanent, FailMessage, ReasonAuthRequired}, 0, false},
		{"530 starttls", "530 5.7.0 Must issue a STARTTLS command first", CmdMAIL, want{Permanent, FailMessage, ReasonTLSRequired}, 0, false},
		{"530 on RCPT fails the message", "530 5.7.0 Authentication required", CmdRCPT, want{Permanent, FailMessage, ReasonAuthRequired}, 0, false},
		{"534", "534 5.7.9 Authentication mechanism is too weak", CmdAUTH, want{Permanent, FailMessage, ReasonAuthTooWeak}, 0, false},
		{"535", "535 5.7.8 Authentication credentials invalid", CmdAUTH, want{Permanent, FailMessage, ReasonAuthFailed}, 0, false},
		{"538", "538 5.7.11 Encryption required", CmdAUTH, want{Permanent, FailMessage, ReasonTLSRequired}, 0, false},
		{"454 auth", "454 4.7.0 Temporary authentication failure", CmdAUTH, want{Transient, Retry, ReasonAuthTemporary}, 0, false},
		{"454 starttls", "454 4.7.0 TLS not available", CmdSTARTTLS, want{Transient, Retry, ReasonTLSUnavailable}, 0, false},
		{"432", "432 4.7.12 A password transition is needed", CmdAUTH, want{Transient, FailMessage, ReasonPasswordTransition}, 0, false},
		{"5xx after STARTTLS", "501 5.5.4 Syntax error", CmdSTARTTLS, want{Permanent, FailMessage, ReasonTLSUnavailable}, 0, false},
		{"REQUIRETLS", "550 5.7.30 REQUIRETLS support required", CmdMAIL, want{Permanent, FailMessage, ReasonTLSRequired}, 0, false},

		// Recipient-only and message failures.
		{"policy on RCPT", "550 5.7.1 Relaying denied", CmdRCPT, want{Permanent, FailRecipient, ReasonPolicy}, 0, false},
		{"mailbox full permanent", "552 5.2.2 Mailbox full", CmdRCPT, want{Permanent, FailRecipient, ReasonMailboxFull}, 0, false},
		{"null MX recipient", "556 5.1.10 Recipient address has null MX", CmdRCPT, want{Permanent, FailRecipient, ReasonNoService}, 0, false},
		{"message too big", "552 5.3.4 Message too big for system", CmdDataEnd, want{Permanent, FailMessage, ReasonMessageTooBig}, 0, false},
		{"SIZE at MAIL", "552 5.3.4 Message size exceeds fixed limit", CmdMAIL, want{Permanent, FailMessage, ReasonMessageTooBig}, 0, false},
		{"DMARC at data end", "550 5.7.26 Unauthenticated email is not accepted", CmdDataEnd, want{Permanent, FailMessage, ReasonPolicy}, 0, false},
		{"5xx at EHLO", "550 5.7.1 Go away", CmdEHLO, want{Permanent, FailMessage, ReasonPolicy}, 0, false},
		{"no command known", "550 5.1.1 No such user", "", want{Permanent, FailMessage, ReasonBadMailbox}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Parse(tt.reply)
			if err != nil {
				t.Fatal(err)
			}
			r.Command = tt.cmd
			v := ClassifyReply(r)
			check(t, r, v, tt.want)
			if v.RetryAfter != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", v.RetryAfter, tt.retryAfter)
			}
			if v.Conflict != tt.conflict {
				t.Errorf("Conflict = %v, want %v", v.Conflict, tt.conflict)
			}
			if r.Enhanced != "" && v.EnhancedDescription == "" {
				t.Errorf("no EnhancedDescription for %q", r.Enhanced)
			}
			if v.Description != DescribeReply(r.Code, r.Command) {
				t.Errorf("Description = %q, want the table's %q", v.Description, DescribeReply(r.Code, r.Command))
			}
		})
	}
}

// TestRegistryVerdicts classifies every enumerated code of the registry with
// a basic code of each class: the basic code decides the class, the
// registry describes the enhanced code, and a disagreement is marked.
func TestRegistryVerdicts(t *testing.T) {
	rows, err := seed.LoadRegistry("data/enhanced-status-codes.tsv")
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		if row.Kind != seed.DetailRow {
			continue
		}
		for _, class := range []int{2, 4, 5} {
			enh := strconv.Itoa(class) + "." + strconv.Itoa(row.Subject) + "." + strconv.Itoa(row.Detail)
			for _, basic := range []int{250, 451, 550} {
				r := Reply{Code: basic, Enhanced: enh, Command: CmdRCPT}
				t.Run(enh+"/"+strconv.Itoa(basic), func(t *testing.T) {
					v := ClassifyReply(r)
					if v.EnhancedDescription != row.Summary {
						t.Errorf("EnhancedDescription = %q, want %q", v.EnhancedDescription, row.Summary)
					}
					if want := classOfDigit(basic); v.Class != want && !(v.Action == SendRestNow && v.Class == Transient) {
						t.Errorf("Class = %v, want %v (the basic code decides)", v.Class, want)
					}
					if v.Conflict != (class != basic/100) {
						t.Errorf("Conflict = %v for %d %s", v.Conflict, basic, enh)
					}
				})
			}
		}
	}
}

func classOfDigit(code int) Class {
	return [...]Class{2: Success, 3: Intermediate, 4: Transient, 5: Permanent}[code/100]
}

func TestNotAReplyCode(t *testing.T) {
	for _, code := range []int{0, 99, 199, 600, 999} {
		v := ClassifyReply(Reply{Code: code, Command: CmdMAIL})
		if v.Class != Transient || v.Action != Reconnect || v.Reason != ReasonProtocolError {
			t.Errorf("code %d: %v, want a protocol error treated like a lost connection", code, v)
		}
	}
}

func TestCustomRules(t *testing.T) {
	// A provider answers 550 5.7.1 "try again later" to mean it is busy.
	busy := func(r Reply) (Verdict, bool) {
		if r.Code == 550 && r.Enhanced == "5.7.1" && strings.Contains(r.Text, "try again later") {
			return Verdict{Class: Transient, Action: Retry, Reason: ReasonRateLimited, RetryAfter: 10 * time.Minute}, true
		}
		return Verdict{}, false
	}
	never := func(Reply) (Verdict, bool) { return Verdict{}, false }
	c := New(Options{Rules: []Rule{never, busy}})

	v := c.ClassifyReply(Reply{Code: 550, Enhanced: "5.7.1", Text: "busy, try again later", Command: CmdRCPT})
	if v.Class != Transient || v.Action != Retry || v.RetryAfter != 10*time.Minute {
		t.Errorf("custom rule not applied: %v", v)
	}
	if v.Code != 550 || v.Enhanced != "5.7.1" || v.Command != CmdRCPT || v.Description == "" || v.EnhancedDescription == "" {
		t.Errorf("custom verdict not completed from the reply: %+v", v)
	}
	// Other replies still meet the built-in rules.
	if v := c.ClassifyReply(Reply{Code: 550, Enhanced: "5.7.1", Text: "relaying denied", Command: CmdRCPT}); v.Action != FailRecipient {
		t.Errorf("built-in rule not applied after custom rules: %v", v)
	}
	// Rules see replies inside errors too.
	if v := c.Classify(&CommandError{Command: CmdRCPT, Err: textprotoError(550, "5.7.1 try again later")}); v.Action != Retry {
		t.Errorf("custom rule not applied through Classify: %v", v)
	}
}

func TestOptionsDelays(t *testing.T) {
	c := New(Options{GreylistDelay: time.Minute, RateLimitDelay: 5 * time.Second, MaxRetryAfter: 2 * time.Minute})
	if v := c.ClassifyReply(Reply{Code: 451, Enhanced: "4.7.1", Command: CmdRCPT}); v.RetryAfter != time.Minute {
		t.Errorf("greylist RetryAfter = %v, want 1m", v.RetryAfter)
	}
	if v := c.ClassifyReply(Reply{Code: 450, Enhanced: "4.7.0", Command: CmdMAIL}); v.RetryAfter != 5*time.Second {
		t.Errorf("rate-limit RetryAfter = %v, want 5s", v.RetryAfter)
	}
	if v := c.ClassifyReply(Reply{Code: 451, Enhanced: "4.7.1", Text: "retry in 1 hour", Command: CmdRCPT}); v.RetryAfter != 2*time.Minute {
		t.Errorf("capped RetryAfter = %v, want 2m", v.RetryAfter)
	}
	var nilClassifier *Classifier
	if v := nilClassifier.ClassifyReply(Reply{Code: 250}); v.Class != Success {
		t.Errorf("nil Classifier: %v", v)
	}
}

func TestVerdictString(t *testing.T) {
	v := ClassifyReply(Reply{Code: 550, Enhanced: "5.1.1", Command: CmdRCPT})
	want := "permanent/fail-recipient (bad-mailbox) 550 5.1.1 after RCPT: Requested action not taken: mailbox unavailable"
	if got := v.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	for _, s := range []fmt.Stringer{Class(99), Action(99), Source(99)} {
		if !strings.Contains(s.String(), "99") {
			t.Errorf("unknown value prints as %q", s)
		}
	}
}

func check(t *testing.T, r Reply, v Verdict, w want) {
	t.Helper()
	if v.Class != w.class || v.Action != w.action || v.Reason != w.reason {
		t.Errorf("%v after %s: got %v/%v/%q, want %v/%v/%q", r, r.Command, v.Class, v.Action, v.Reason, w.class, w.action, w.reason)
	}
}
