package classify

import "time"

// Defaults for Options.
const (
	// DefaultGreylistDelay is the least wait after a greylisting reply that
	// names no delay of its own. Postgrey and rspamd greylist for 5 minutes
	// by default; a retry sooner meets the same 451.
	DefaultGreylistDelay = 5 * time.Minute
	// DefaultRateLimitDelay is the least wait after a rate-limiting reply
	// that names no delay of its own.
	DefaultRateLimitDelay = time.Minute
	// DefaultMaxRetryAfter caps a delay read from a reply's text, so that a
	// server cannot park a message for a day by saying so.
	DefaultMaxRetryAfter = time.Hour
)

// Rule classifies a reply before the built-in rules do: a provider's quirk,
// a local policy. It returns ok false to leave the reply to the next rule.
// Fields of the returned Verdict left zero are filled from the built-in
// verdict (Class, Action, Code, Enhanced, Command, descriptions), so a rule
// may set only what it changes. A Rule must be safe for concurrent use.
type Rule func(r Reply) (v Verdict, ok bool)

// Options configures a Classifier. The zero value is ready to use: no extra
// rules and the documented defaults.
type Options struct {
	// Rules are checked in order before the built-in rules.
	Rules []Rule
	// GreylistDelay is the least RetryAfter of a greylisting reply that
	// names no delay. Zero means DefaultGreylistDelay.
	GreylistDelay time.Duration
	// RateLimitDelay is the least RetryAfter of a rate-limiting reply that
	// names no delay. Zero means DefaultRateLimitDelay.
	RateLimitDelay time.Duration
	// MaxRetryAfter caps delays read from reply text. Zero means
	// DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
}

// Classifier turns replies and errors into verdicts. It is safe for
// concurrent use; the package functions use one with zero Options.
type Classifier struct {
	rules          []Rule
	greylistDelay  time.Duration
	rateLimitDelay time.Duration
	maxRetryAfter  time.Duration
}

var defaultClassifier = New(Options{})

// New returns a Classifier with opts, its zero fields set to the defaults.
func New(opts Options) *Classifier {
	c := &Classifier{
		rules:          append([]Rule(nil), opts.Rules...),
		greylistDelay:  opts.GreylistDelay,
		rateLimitDelay: opts.RateLimitDelay,
		maxRetryAfter:  opts.MaxRetryAfter,
	}
	if c.greylistDelay <= 0 {
		c.greylistDelay = DefaultGreylistDelay
	}
	if c.rateLimitDelay <= 0 {
		c.rateLimitDelay = DefaultRateLimitDelay
	}
	if c.maxRetryAfter <= 0 {
		c.maxRetryAfter = DefaultMaxRetryAfter
	}
	return c
}

// ClassifyReply returns the verdict on r with the package's default
// Classifier.
func ClassifyReply(r Reply) Verdict { return defaultClassifier.ClassifyReply(r) }

// ClassifyReply returns the verdict on r: the rules of Options first, then
// the built-in ones (see the package documentation). It does not allocate.
func (c *Classifier) ClassifyReply(r Reply) Verdict {
	if c == nil {
		c = defaultClassifier
	}
	for _, rule := range c.rules {
		if v, ok := rule(r); ok {
			return fill(v, c.builtin(r))
		}
	}
	return c.builtin(r)
}

// fill completes a rule's verdict with the built-in one.
func fill(v, base Verdict) Verdict {
	if v.Class == Unclassified {
		v.Class = base.Class
	}
	if v.Action == NoAction {
		v.Action = base.Action
	}
	if v.Code == 0 {
		v.Code, v.Enhanced, v.Conflict = base.Code, base.Enhanced, base.Conflict
	}
	if v.Command == "" {
		v.Command = base.Command
	}
	if v.Description == "" {
		v.Description = base.Description
	}
	if v.EnhancedDescription == "" {
		v.EnhancedDescription = base.EnhancedDescription
	}
	return v
}

// enhanced is a parsed enhanced status code; ok false when there is none.
type enhanced struct {
	class, subject, detail int
	ok                     bool
}

func (e enhanced) is(subject, detail int) bool {
	return e.ok && e.subject == subject && e.detail == detail
}

func (c *Classifier) builtin(r Reply) Verdict {
	v := Verdict{Code: r.Code, Enhanced: r.Enhanced, Command: r.Command, Source: FromServer}
	if !validCode(r.Code) {
		v.Class, v.Action, v.Reason = Transient, Reconnect, ReasonProtocolError
		v.Description = "Not an SMTP reply code"
		return v
	}
	v.Description = DescribeReply(r.Code, r.Command)

	var e enhanced
	if class, subject, detail, ok := splitEnhanced(r.Enhanced); ok && class > 0 && subject >= 0 && detail >= 0 {
		e = enhanced{class, subject, detail, true}
		v.EnhancedDescription = describeEnhanced(class, subject, detail)
		v.Conflict = class != r.Code/100
	}

	switch r.Code / 100 {
	case 2:
		v.Class, v.Action = Success, Done
	case 3:
		v.Class, v.Action = Intermediate, Proceed
	case 4:
		v.Class = Transient
		c.transient(&v, r, e)
	default:
		v.Class = Permanent
		c.permanent(&v, r, e)
	}
	return v
}

func (c *Classifier) transient(v *Verdict, r Reply, e enhanced) {
	v.Action = Retry
	switch {
	case r.Code == 421:
		// RFC 5321 §3.8: the server is closing the channel.
		v.Action = Reconnect
		v.Reason = ReasonServiceUnavailable
		if rateLimited(r, e) {
			v.Reason, v.RetryAfter = ReasonRateLimited, c.hint(r.Text, c.rateLimitDelay)
		}
	case r.Code == 432:
		// RFC 4954: the password must be changed first. Retrying the same
		// credentials cannot succeed, whatever the first digit says.
		v.Action, v.Reason = FailMessage, ReasonPasswordTransition
	case r.Code == 454 && r.Command == CmdAUTH:
		v.Reason = ReasonAuthTemporary
	case r.Code == 454 && r.Command == CmdSTARTTLS:
		v.Reason = ReasonTLSUnavailable
	case r.Command == CmdRCPT && (e.is(5, 3) || (r.Code == 452 && !e.ok)):
		// RFC 5321 §4.5.3.1.10: a recipient limit, not a failure of the
		// recipient.
		v.Action, v.Reason = SendRestNow, ReasonTooManyRecipients
	case (r.Code == 450 || r.Code == 451) && (e.is(7, 1) || greylisted(r.Text)):
		v.Reason, v.RetryAfter = ReasonGreylisted, c.hint(r.Text, c.greylistDelay)
	case rateLimited(r, e):
		v.Reason, v.RetryAfter = ReasonRateLimited, c.hint(r.Text, c.rateLimitDelay)
	case r.Command == CmdConnect:
		v.Reason = ReasonServiceUnavailable // a greeting refused for now
	case e.is(2, 2):
		v.Reason = ReasonMailboxFull
	case r.Code == 452 || (e.ok && e.subject == 3 && e.detail == 1):
		v.Reason = ReasonStorage
	case r.Code == 450 && (r.Command == CmdRCPT || r.Command == CmdMAIL || r.Command == ""):
		// "Mailbox unavailable" speaks of an address; after DATA or EHLO
		// there is none to speak of.
		v.Reason = ReasonMailboxUnavailable
	case r.Code == 451:
		v.Reason = ReasonLocalError
	case r.Code == 454:
		v.Reason = ReasonTLSUnavailable
	}
}

func (c *Classifier) permanent(v *Verdict, r Reply, e enhanced) {
	v.Action = FailMessage
	if r.Command == CmdRCPT {
		v.Action = FailRecipient
	}
	switch {
	case r.Command == CmdRCPT && e.is(5, 3):
		// RFC 5321 §4.5.3.1.10: clients should treat a 552 (5.5.3) recipient
		// limit like 452: the recipient is fine, the transaction is full.
		v.Class, v.Action, v.Reason = Transient, SendRestNow, ReasonTooManyRecipients
	case r.Code == 530:
		v.Action, v.Reason = FailMessage, ReasonAuthRequired
		if e.is(7, 10) || e.is(7, 11) || r.Command == CmdSTARTTLS || containsFold(r.Text, "STARTTLS") {
			v.Reason = ReasonTLSRequired
		}
	case r.Code == 534 || e.is(7, 9):
		v.Action, v.Reason = FailMessage, ReasonAuthTooWeak
	case r.Code == 538 || e.is(7, 11) || e.is(7, 10) || e.is(7, 30):
		v.Action, v.Reason = FailMessage, ReasonTLSRequired
	case r.Code == 535 || e.is(7, 8) || r.Command == CmdAUTH:
		v.Action, v.Reason = FailMessage, ReasonAuthFailed
	case r.Command == CmdSTARTTLS:
		v.Reason = ReasonTLSUnavailable
	case r.Code == 521 || r.Code == 556 || e.is(1, 10) || r.Command == CmdConnect:
		// RFC 5321 §3.1: a server refusing its greeting offers no service.
		v.Reason = ReasonNoService
	case r.Code == 500 || r.Code == 501:
		v.Reason = ReasonSyntax
	case r.Code == 502 || r.Code == 504:
		v.Reason = ReasonNotImplemented
	case r.Code == 503:
		v.Reason = ReasonBadSequence
	case e.is(2, 2):
		v.Reason = ReasonMailboxFull
	case e.is(3, 4) || e.is(2, 3) || (r.Code == 552 && r.Command != CmdRCPT):
		v.Reason = ReasonMessageTooBig
	case r.Code == 552:
		v.Reason = ReasonMailboxFull
	case e.ok && e.subject == 7:
		v.Reason = ReasonPolicy
	case r.Command == CmdRCPT:
		v.Reason = ReasonBadMailbox
	case r.Command == CmdMAIL:
		v.Reason = ReasonSenderRejected
	case e.ok && e.subject == 1:
		v.Reason = ReasonBadMailbox
	case r.Code == 554:
		v.Reason = ReasonTransactionFailed
	}
}

// rateLimited recognises the rate-limit replies of the big providers:
// 4.7.0 ("try again later"), 4.7.28 (mail flood), and 4.2.1 or no enhanced
// code with wording such as "receiving mail too quickly".
func rateLimited(r Reply, e enhanced) bool {
	if e.is(7, 0) || e.is(7, 28) {
		return true
	}
	return containsFold(r.Text, "too quickly") || containsFold(r.Text, "rate limit") ||
		containsFold(r.Text, "ratelimit") || containsFold(r.Text, "too many connections") ||
		containsFold(r.Text, "too many messages") || containsFold(r.Text, "too fast")
}

func greylisted(text string) bool {
	return containsFold(text, "greylist") || containsFold(text, "graylist") ||
		containsFold(text, "grey-list") || containsFold(text, "gray-list") ||
		containsFold(text, "greylisted")
}

// hint returns the delay a reply's text names ("try again in 60 seconds"),
// capped at MaxRetryAfter, or def when it names none.
func (c *Classifier) hint(text string, def time.Duration) time.Duration {
	if d := delayInText(text); d > 0 {
		return min(d, c.maxRetryAfter)
	}
	return def
}
