package sender

import (
	"context"
	"errors"
	"net/textproto"
	"time"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/telemetry"
)

// attempt makes one attempt: it takes a connection and runs transactions
// for the recipients still pending, several when the server limits the
// recipients of one (RFC 5321 §4.5.3.1.10), until every recipient is
// decided or the connection fails.
func (s *Sender) attempt(ctx context.Context, st *sendState, n int) (err error) {
	ctx, ta := st.telemetry.StartAttempt(ctx, n)
	var out telemetry.AttemptOutcome
	defer func() {
		out.Err = err
		ta.End(out)
	}()

	c, err := s.pool.get(ctx)
	if err != nil {
		v := s.classifier.Classify(err)
		var te *textproto.Error
		if errors.As(err, &te) {
			ta.Reply(v, classify.ReplyOf(te.Code, te.Msg).Text)
		}
		out.Verdict = v
		return &attemptError{verdict: v, err: err}
	}
	healthy := false
	defer func() { s.pool.put(c, healthy) }()
	disarm := c.arm(ctx)
	defer disarm()

	for {
		tx := s.transaction(ctx, c, st, n, ta)
		healthy = tx.connOK
		out.Accepted += tx.accepted
		out.Deferred += tx.deferred
		out.Rejected += tx.rejected
		out.Verdict = tx.verdict
		pending := st.pending()
		if len(pending) == 0 {
			if tx.verdict.Action == classify.FailMessage {
				return &attemptError{verdict: tx.verdict, err: tx.err} // refused at DATA or the final dot
			}
			return nil
		}
		if tx.restNow && tx.connOK && len(st.undecided(n)) > 0 {
			continue // "send the rest now": a new transaction, no wait
		}
		if tx.err == nil {
			// The last transaction went through; recipients refused for
			// now earlier in this attempt are what is left.
			out.Verdict = deferredVerdict(st, pending, false)
		}
		return &attemptError{verdict: out.Verdict, err: tx.err}
	}
}

// pipelineWindow bounds the bytes of commands sent before reading their
// replies. Writes block, so each group must fit in the TCP window (RFC 2920
// §3.1): a server blocked writing replies that are not read yet stops
// reading, and a client still writing its group then waits for ever.
const pipelineWindow = 4096

// txResult is how one transaction ended.
type txResult struct {
	connOK  bool             // the connection can carry another transaction
	restNow bool             // recipients were left out by a recipient limit, after progress
	verdict classify.Verdict // the verdict deciding what the retry loop does
	err     error            // the error behind verdict, if any

	accepted, deferred, rejected int
}

// transaction sends MAIL, RCPT for every pending recipient, DATA, the body
// and the final dot, and decides each recipient's outcome. With PIPELINING
// (RFC 2920) MAIL, the RCPTs and DATA go out in one write and their replies
// are read in order afterwards; without it, each command waits for its
// reply. Either way every reply is classified on its own.
func (s *Sender) transaction(ctx context.Context, c *conn, st *sendState, attempt int, ta *telemetry.Attempt) txResult {
	t := &txn{s: s, ctx: ctx, c: c, st: st, attempt: attempt, ta: ta, pending: st.undecided(attempt)}
	if done := t.envelope(); done {
		return t.tx
	}
	if len(t.accepted) == 0 || t.fatal != nil {
		return t.abandon()
	}
	return t.data()
}

// txn is one transaction in progress.
type txn struct {
	s       *Sender
	ctx     context.Context
	c       *conn
	st      *sendState
	attempt int
	ta      *telemetry.Attempt
	pending []int // the recipients this transaction carries

	tx txResult

	// What the envelope phase left.
	sent     int  // RCPTs sent
	dataSent bool // DATA sent, pipelined with the RCPTs
	accepted []int
	limited  bool              // the server's recipient limit was reached
	fatal    *classify.Verdict // a reply to RCPT that fails the whole message
	fatalErr error
}

// read reads the reply to command and judges it.
func (t *txn) read(command string) (classify.Reply, classify.Verdict, error) {
	t.c.deadline(t.ctx, t.s.opts.CommandTimeout)
	r, err := t.c.readReply()
	if err != nil {
		err = &classify.CommandError{Command: command, Err: err}
		return r, t.s.classifier.Classify(err), err
	}
	r.Command = command
	v := t.s.classifier.ClassifyReply(r)
	t.ta.Reply(v, r.Text)
	return r, v, nil
}

// send writes line and flushes it.
func (t *txn) send(line string) error {
	err := t.c.writeLine(line)
	if err == nil {
		err = t.c.flush()
	}
	return err
}

// lost ends the transaction on a connection that cannot be used again.
func (t *txn) lost(v classify.Verdict, err error) txResult {
	t.tx.connOK, t.tx.verdict, t.tx.err = false, v, err
	if v.Action != classify.Reconnect && v.Class != classify.Permanent {
		t.tx.verdict.Action = classify.Reconnect
	}
	return t.tx
}

// failed ends the transaction on an error writing command.
func (t *txn) failed(command string, err error) txResult {
	err = &classify.CommandError{Command: command, Err: err}
	return t.lost(t.s.classifier.Classify(err), err)
}

// refused is the error of a refusing reply.
func refused(r classify.Reply) error {
	return &classify.CommandError{Command: r.Command, Err: &textproto.Error{Code: r.Code, Msg: joinEnhanced(r)}}
}

// group sends, pipelined, the next RCPTs and then DATA, as many as fit in
// pipelineWindow with what is buffered already, and at least one.
func (t *txn) group() error {
	for ; t.sent <= len(t.pending); t.sent++ {
		line := "DATA"
		if t.sent < len(t.pending) {
			line = "RCPT TO:" + t.st.rcpts[t.pending[t.sent]]
		}
		if n := t.c.text.W.Buffered(); n > 0 && n+len(line)+2 > pipelineWindow {
			break
		}
		if err := t.c.writeLine(line); err != nil {
			return err
		}
		if t.sent == len(t.pending) {
			t.dataSent = true
		}
	}
	t.sent = min(t.sent, len(t.pending))
	return t.c.flush()
}

// envelope sends MAIL and the RCPTs and reads their replies, deciding the
// refused recipients. It reports whether the transaction is over: MAIL was
// refused, or the connection failed.
func (t *txn) envelope() (done bool) {
	c, st := t.c, t.st
	c.deadline(t.ctx, t.s.opts.CommandTimeout) // for the writes of the first flight
	mailCmd := "MAIL FROM:" + st.from
	if c.eightBitMIME {
		mailCmd += " BODY=8BITMIME"
	}
	if c.smtpUTF8 && st.utf8 {
		mailCmd += " SMTPUTF8"
	}
	err := c.writeLine(mailCmd)
	switch {
	case err == nil && c.pipelining:
		err = t.group()
	case err == nil:
		err = c.flush()
	}
	if err != nil {
		t.failed(classify.CmdMAIL, err)
		return true
	}

	mr, mv, err := t.read(classify.CmdMAIL)
	if err != nil {
		t.lost(mv, err)
		return true
	}
	if mv.Action == classify.Reconnect {
		t.lost(mv, refused(mr))
		return true
	}
	mailOK := mv.Class == classify.Success

	// One reply per RCPT sent: all of them in pipelined groups; without
	// PIPELINING, none once MAIL failed or the server said the transaction
	// is full.
	for k, i := range t.pending {
		if !mailOK || t.limited || t.fatal != nil {
			if !c.pipelining || k == t.sent {
				break // nothing more was sent, and nothing more will be
			}
		} else if c.pipelining && k == t.sent {
			// The group is read: send the next one.
			if err := t.group(); err != nil {
				t.failed(classify.CmdRCPT, err)
				return true
			}
		} else if !c.pipelining {
			if err := t.send("RCPT TO:" + st.rcpts[i]); err != nil {
				t.failed(classify.CmdRCPT, err)
				return true
			}
		}
		rr, rv, err := t.read(classify.CmdRCPT)
		if err != nil {
			t.lost(rv, err)
			return true
		}
		if !mailOK {
			continue // 503s after a refused MAIL, read to stay in step
		}
		switch rv.Action {
		case classify.Done:
			t.accepted = append(t.accepted, i)
		case classify.FailRecipient:
			st.decide(i, Rejected, rv, t.attempt, rr.Text, t.ta)
			t.tx.rejected++
		case classify.Retry:
			st.decide(i, Deferred, rv, t.attempt, rr.Text, t.ta)
			t.tx.deferred++
		case classify.SendRestNow:
			// Not a failure of the recipient: it goes in the next
			// transaction, together with those after it.
			t.limited = true
			if t.tx.verdict.Class == classify.Unclassified {
				t.tx.verdict = rv
			}
		case classify.Reconnect:
			t.lost(rv, refused(rr))
			return true
		case classify.FailMessage:
			if t.fatal == nil {
				t.fatal, t.fatalErr = &rv, refused(rr)
			}
		default: // a 3xx to RCPT: the conversation is out of step
			rv.Class, rv.Action, rv.Reason = classify.Transient, classify.Reconnect, classify.ReasonProtocolError
			t.lost(rv, refused(rr))
			return true
		}
	}
	if mailOK {
		return false
	}
	// A refused MAIL opened no transaction: nothing to RSET.
	if t.dataSent {
		if !t.skipData() {
			return true
		}
	}
	t.tx.verdict, t.tx.err, t.tx.connOK = mv, refused(mr), true
	return true
}

// skipData reads the reply to a DATA that was pipelined for nobody (503 or
// 554, RFC 2920 §3.1), and ends the message a server that said 354 anyway
// is waiting for, which it refuses for want of recipients. That refusal
// echoes the earlier ones and is not recorded as a reply of its own. It
// reports whether the connection is still usable.
func (t *txn) skipData() bool {
	t.c.deadline(t.ctx, t.s.opts.CommandTimeout)
	dr, err := t.c.readReply()
	if err != nil {
		t.failed(classify.CmdDATA, err)
		return false
	}
	if dr.Code != 354 {
		return true
	}
	if err := t.send("."); err != nil {
		t.failed(classify.CmdDataEnd, err)
		return false
	}
	if _, v, err := t.read(classify.CmdDataEnd); err != nil {
		t.lost(v, err)
		return false
	}
	return true
}

// abandon ends a transaction in which no recipient was accepted, or a
// reply failed the message: no body is sent, and the transaction MAIL
// opened is closed with RSET, the only time the Sender sends it.
func (t *txn) abandon() txResult {
	if t.dataSent && !t.skipData() {
		return t.tx
	}
	if t.fatal != nil {
		t.tx.verdict, t.tx.err = *t.fatal, t.fatalErr
	} else {
		t.tx.verdict = deferredVerdict(t.st, t.pending, t.limited)
	}
	t.tx.connOK = t.s.reset(t.c)
	return t.tx
}

// data sends DATA (unless it was pipelined), the body and the final dot,
// and decides the accepted recipients by the server's last reply.
func (t *txn) data() txResult {
	c, st := t.c, t.st
	if !t.dataSent {
		if err := t.send("DATA"); err != nil {
			return t.failed(classify.CmdDATA, err)
		}
	}
	dr, dv, err := t.read(classify.CmdDATA)
	if err != nil {
		return t.lost(dv, err)
	}
	if dr.Code != 354 {
		if dv.Class == classify.Success || dv.Class == classify.Intermediate {
			dv.Class, dv.Action, dv.Reason = classify.Transient, classify.Reconnect, classify.ReasonProtocolError
		}
		t.settle(dv, dr.Text)
		t.tx.verdict, t.tx.err = dv, refused(dr)
		if dv.Action == classify.Reconnect {
			return t.lost(dv, t.tx.err)
		}
		t.tx.connOK = t.s.reset(c)
		return t.tx
	}

	c.deadline(t.ctx, t.s.opts.CommandTimeout)
	dw := c.text.DotWriter()
	_, err = dw.Write(st.body)
	if cerr := dw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return t.failed(classify.CmdDATA, err)
	}
	er, ev, err := t.read(classify.CmdDataEnd)
	if err != nil {
		// RFC 5321 §6.1: the server may have taken the message.
		st.result.Ambiguous = true
		ev.Ambiguous = true
		if t.s.opts.AtMostOnce {
			for _, i := range t.accepted {
				st.decide(i, Unknown, ev, t.attempt, "", t.ta)
				t.tx.rejected++
			}
		}
		return t.lost(ev, err)
	}
	if ev.Class == classify.Success {
		for _, i := range t.accepted {
			st.decide(i, Delivered, ev, t.attempt, er.Text, t.ta)
		}
		t.tx.accepted += len(t.accepted)
		st.result.Response = er.Text
		c.messages++
		t.tx.verdict = ev
	} else {
		t.settle(ev, er.Text)
		t.tx.verdict, t.tx.err = ev, refused(er)
	}
	t.tx.connOK = ev.Action != classify.Reconnect
	t.tx.restNow = t.limited
	return t.tx
}

// settle decides the recipients accepted in a transaction that the server
// then refused at DATA or the final dot.
func (t *txn) settle(v classify.Verdict, text string) {
	for _, i := range t.accepted {
		if v.Class == classify.Permanent {
			t.st.decide(i, Rejected, v, t.attempt, text, t.ta)
			t.tx.rejected++
		} else {
			t.st.decide(i, Deferred, v, t.attempt, text, t.ta)
			t.tx.deferred++
		}
	}
}

// deferredVerdict is the verdict of a transaction that left recipients
// for later: a retry, waiting at least the longest delay any of them was
// given.
func deferredVerdict(st *sendState, pending []int, limited bool) classify.Verdict {
	var v classify.Verdict
	for _, i := range pending {
		r := st.result.Recipients[i]
		if r.Status != Deferred {
			continue
		}
		if v.Class == classify.Unclassified || r.Verdict.RetryAfter > v.RetryAfter {
			v = r.Verdict
		}
	}
	if v.Class == classify.Unclassified && limited {
		// The server took no recipient at all before its limit: sending the
		// rest at once would meet the same answer.
		v = classify.Verdict{
			Class: classify.Transient, Action: classify.Retry, Reason: classify.ReasonTooManyRecipients,
			Code: 452, Command: classify.CmdRCPT, Description: classify.DescribeReply(452, classify.CmdRCPT),
		}
	}
	if v.Action == classify.SendRestNow {
		v.Action = classify.Retry
	}
	return v
}

// reset sends RSET after a failed transaction; it reports whether the
// connection is still usable.
func (s *Sender) reset(c *conn) bool {
	if err := c.writeLine("RSET"); err != nil {
		return false
	}
	if err := c.flush(); err != nil {
		return false
	}
	r, err := c.readReply()
	return err == nil && r.Code/100 == 2
}

// alive checks an idle connection with NOOP.
func (s *Sender) alive(ctx context.Context, c *conn) bool {
	c.deadline(ctx, min(s.opts.CommandTimeout, 10*time.Second))
	if c.writeLine("NOOP") != nil || c.flush() != nil {
		return false
	}
	r, err := c.readReply()
	return err == nil && r.Code/100 == 2
}

// joinEnhanced puts a reply's enhanced code back in front of its text, as
// *textproto.Error carries it, so that classify reads it again.
func joinEnhanced(r classify.Reply) string {
	if r.Enhanced == "" {
		return r.Text
	}
	if r.Text == "" {
		return r.Enhanced
	}
	return r.Enhanced + " " + r.Text
}
