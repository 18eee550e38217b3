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
func (s *Sender) transaction(ctx context.Context, c *conn, st *sendState, attempt int, ta *telemetry.Attempt) (tx txResult) {
	pending := st.undecided(attempt)
	c.deadline(ctx, s.opts.CommandTimeout) // for the writes of the first flight

	// read reads the reply to command and judges it.
	read := func(command string) (classify.Reply, classify.Verdict, error) {
		c.deadline(ctx, s.opts.CommandTimeout)
		r, err := c.readReply()
		if err != nil {
			err = &classify.CommandError{Command: command, Err: err}
			return r, s.classifier.Classify(err), err
		}
		r.Command = command
		v := s.classifier.ClassifyReply(r)
		ta.Reply(v, r.Text)
		return r, v, nil
	}
	// lost ends the transaction on a connection that cannot be used again.
	lost := func(v classify.Verdict, err error) txResult {
		tx.connOK, tx.verdict, tx.err = false, v, err
		if v.Action != classify.Reconnect && v.Class != classify.Permanent {
			tx.verdict.Action = classify.Reconnect
		}
		return tx
	}
	refused := func(r classify.Reply) error {
		return &classify.CommandError{Command: r.Command, Err: &textproto.Error{Code: r.Code, Msg: joinEnhanced(r)}}
	}

	mailCmd := "MAIL FROM:" + st.from
	if c.eightBitMIME {
		mailCmd += " BODY=8BITMIME"
	}
	if c.smtpUTF8 && st.utf8 {
		mailCmd += " SMTPUTF8"
	}
	// group sends, pipelined, the next RCPTs and then DATA, as many as fit
	// in pipelineWindow with what is buffered already, and at least one.
	var (
		sent     int  // RCPTs sent
		dataSent bool // DATA sent with the RCPTs
	)
	group := func() error {
		for ; sent <= len(pending); sent++ {
			line := "DATA"
			if sent < len(pending) {
				line = "RCPT TO:" + st.rcpts[pending[sent]]
			}
			if n := c.text.W.Buffered(); n > 0 && n+len(line)+2 > pipelineWindow {
				break
			}
			if err := c.writeLine(line); err != nil {
				return err
			}
			if sent == len(pending) {
				dataSent = true
			}
		}
		sent = min(sent, len(pending))
		return c.flush()
	}

	writeErr := c.writeLine(mailCmd)
	if writeErr == nil && c.pipelining {
		writeErr = group()
	} else if writeErr == nil {
		writeErr = c.flush()
	}
	if writeErr != nil {
		err := &classify.CommandError{Command: classify.CmdMAIL, Err: writeErr}
		return lost(s.classifier.Classify(err), err)
	}

	// MAIL
	mr, mv, err := read(classify.CmdMAIL)
	if err != nil {
		return lost(mv, err)
	}
	if mv.Action == classify.Reconnect {
		return lost(mv, refused(mr))
	}
	mailOK := mv.Class == classify.Success

	// RCPT, one reply per pending recipient (all of them were sent when
	// pipelining; without it, stop sending once MAIL failed or the server
	// says the transaction is full).
	var (
		accepted []int
		limited  bool
		fatal    *classify.Verdict
		fatalErr error
	)
	for k, i := range pending {
		if c.pipelining && k == sent {
			// The group is read: send the next one, unless the replies
			// so far ended the transaction.
			if !mailOK || limited || fatal != nil {
				break
			}
			if err := group(); err != nil {
				err := &classify.CommandError{Command: classify.CmdRCPT, Err: err}
				return lost(s.classifier.Classify(err), err)
			}
		}
		if !c.pipelining {
			if !mailOK || limited || fatal != nil {
				break
			}
			err := c.writeLine("RCPT TO:" + st.rcpts[i])
			if err == nil {
				err = c.flush()
			}
			if err != nil {
				err := &classify.CommandError{Command: classify.CmdRCPT, Err: err}
				return lost(s.classifier.Classify(err), err)
			}
		}
		rr, rv, err := read(classify.CmdRCPT)
		if err != nil {
			return lost(rv, err)
		}
		if !mailOK {
			continue // 503s after a refused MAIL, read to stay in step
		}
		switch rv.Action {
		case classify.Done:
			accepted = append(accepted, i)
		case classify.FailRecipient:
			st.decide(i, Rejected, rv, attempt, rr.Text, ta)
			tx.rejected++
		case classify.Retry:
			st.decide(i, Deferred, rv, attempt, rr.Text, ta)
			tx.deferred++
		case classify.SendRestNow:
			// Not a failure of the recipient: it goes in the next
			// transaction, together with those after it.
			limited = true
			if tx.verdict.Class == classify.Unclassified {
				tx.verdict = rv
			}
		case classify.Reconnect:
			return lost(rv, refused(rr))
		case classify.FailMessage:
			if fatal == nil {
				fatal, fatalErr = &rv, refused(rr)
			}
		default: // a 3xx to RCPT: the conversation is out of step
			rv.Class, rv.Action, rv.Reason = classify.Transient, classify.Reconnect, classify.ReasonProtocolError
			return lost(rv, refused(rr))
		}
	}

	// DATA
	if !mailOK || len(accepted) == 0 || fatal != nil {
		if dataSent {
			// DATA was sent; its reply (503 or 554, RFC 2920 §3.1) must be
			// read, and a server that said 354 anyway gets an empty message
			// it will refuse for want of recipients. That refusal is the
			// expected echo of the RCPT refusals, not news: it is not
			// recorded as a reply of its own.
			c.deadline(ctx, s.opts.CommandTimeout)
			dr, err := c.readReply()
			if err != nil {
				err := &classify.CommandError{Command: classify.CmdDATA, Err: err}
				return lost(s.classifier.Classify(err), err)
			}
			if dr.Code == 354 {
				err := c.writeLine(".")
				if err == nil {
					err = c.flush()
				}
				if err != nil {
					err := &classify.CommandError{Command: classify.CmdDataEnd, Err: err}
					return lost(s.classifier.Classify(err), err)
				}
				if _, v, err := read(classify.CmdDataEnd); err != nil {
					return lost(v, err)
				}
			}
		}
		switch {
		case !mailOK:
			tx.verdict, tx.err = mv, refused(mr)
		case fatal != nil:
			tx.verdict, tx.err = *fatal, fatalErr
		default:
			tx.verdict = deferredVerdict(st, pending, limited)
		}
		// A refused MAIL opened no transaction; an accepted one must be
		// closed with RSET, the only time the Sender sends it.
		tx.connOK = !mailOK || s.reset(c)
		return tx
	}
	if !dataSent {
		err := c.writeLine("DATA")
		if err == nil {
			err = c.flush()
		}
		if err != nil {
			err := &classify.CommandError{Command: classify.CmdDATA, Err: err}
			return lost(s.classifier.Classify(err), err)
		}
	}
	dr, dv, err := read(classify.CmdDATA)
	if err != nil {
		return lost(dv, err)
	}
	if dr.Code != 354 {
		if dv.Class == classify.Success || dv.Class == classify.Intermediate {
			dv.Class, dv.Action, dv.Reason = classify.Transient, classify.Reconnect, classify.ReasonProtocolError
		}
		s.settle(st, accepted, dv, attempt, dr.Text, ta, &tx)
		tx.verdict, tx.err = dv, refused(dr)
		if dv.Action == classify.Reconnect {
			return lost(dv, tx.err)
		}
		tx.connOK = s.reset(c)
		return tx
	}

	// The body, then the final dot.
	c.deadline(ctx, s.opts.CommandTimeout)
	dw := c.text.DotWriter()
	_, err = dw.Write(st.body)
	if cerr := dw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		err := &classify.CommandError{Command: classify.CmdDATA, Err: err}
		return lost(s.classifier.Classify(err), err)
	}
	er, ev, err := read(classify.CmdDataEnd)
	if err != nil {
		// RFC 5321 §6.1: the server may have taken the message.
		st.result.Ambiguous = true
		ev.Ambiguous = true
		if s.opts.AtMostOnce {
			for _, i := range accepted {
				st.decide(i, Unknown, ev, attempt, "", ta)
				tx.rejected++
			}
		}
		return lost(ev, err)
	}
	switch ev.Class {
	case classify.Success:
		for _, i := range accepted {
			st.decide(i, Delivered, ev, attempt, er.Text, ta)
		}
		tx.accepted += len(accepted)
		st.result.Response = er.Text
		c.messages++
		tx.verdict = ev
	default:
		s.settle(st, accepted, ev, attempt, er.Text, ta, &tx)
		tx.verdict, tx.err = ev, refused(er)
	}
	tx.connOK = ev.Action != classify.Reconnect
	if limited {
		tx.restNow = true
		return tx
	}
	return tx
}

// settle decides the recipients accepted in a transaction that the server
// then refused at DATA or the final dot.
func (s *Sender) settle(st *sendState, accepted []int, v classify.Verdict, attempt int, text string, ta *telemetry.Attempt, tx *txResult) {
	for _, i := range accepted {
		if v.Class == classify.Permanent {
			st.decide(i, Rejected, v, attempt, text, ta)
			tx.rejected++
		} else {
			st.decide(i, Deferred, v, attempt, text, ta)
			tx.deferred++
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
