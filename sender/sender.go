package sender

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/telemetry"
)

// Sender sends messages to one SMTP server over a pool of connections,
// classifying every reply, retrying what can succeed later and reporting
// each recipient's outcome. It is safe for concurrent use by many
// goroutines; make one per server and share it.
type Sender struct {
	opts       Options
	classifier *classify.Classifier
	tel        *telemetry.Telemetry
	pool       *pool
	now        func() time.Time

	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup
	stop     chan struct{}
	reaped   chan struct{}
}

// New returns a Sender for opts. It checks the options, including the
// go-mail options, without touching the network.
func New(opts Options) (*Sender, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	probe, err := mail.NewClient(opts.Host, opts.MailOptions...)
	if err != nil {
		return nil, fmt.Errorf("sender: Options.MailOptions: %w", err)
	}
	if usesImplicitTLS(probe) {
		return nil, errors.New("sender: mail.WithSSL is not supported; set Options.ImplicitTLS")
	}
	s := &Sender{
		opts:       opts,
		classifier: opts.Classifier,
		tel:        telemetry.New(opts.Telemetry),
		now:        time.Now,
		stop:       make(chan struct{}),
		reaped:     make(chan struct{}),
	}
	if opts.Retry.Clock != nil {
		s.now = opts.Retry.Clock.Now
	}
	s.pool = newPool(s, opts.MaxConnections)
	go s.reapIdle()
	return s, nil
}

func (s *Sender) reapIdle() {
	defer close(s.reaped)
	t := time.NewTicker(max(s.opts.IdleTimeout/2, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.pool.reap()
		case <-s.stop:
			return
		}
	}
}

// Close waits for the sends in progress to finish, then says QUIT on every
// pooled connection and closes it. Send returns ErrClosed afterwards.
// Close is safe to call more than once.
func (s *Sender) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.inflight.Wait()
	close(s.stop)
	<-s.reaped
	s.pool.close()
	return nil
}

// sendState is one Send's progress, shared by its attempts (which run one
// after another, never at once).
type sendState struct {
	from      string // the reverse path as sent: "<alice@example.com>"
	rcpts     []string
	body      []byte
	utf8      bool // an address needs SMTPUTF8 (RFC 6531)
	result    *Result
	telemetry *telemetry.Send
}

// bodyBuffers keeps the buffers messages are rendered into; those that
// grew past maxPooledBody are left to the garbage collector.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledBody = 1 << 20

// Send delivers msg to each of its recipients (To, Cc and Bcc), retrying
// per Options.Retry. It returns a Result whenever the message was valid,
// and a *Error unless every recipient got the message. Invalid input fails
// before any network traffic with ErrInvalidMessage or ErrNoRecipients.
//
// The message is rendered once, so every attempt sends the same bytes with
// the same Message-ID. A Message-ID is added if msg has none.
func (s *Sender) Send(ctx context.Context, msg *mail.Msg) (*Result, error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	s.inflight.Add(1)
	s.mu.RUnlock()
	defer s.inflight.Done()

	buf := bodyBuffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody { // do not keep one large attachment's memory for ever
			bodyBuffers.Put(buf)
		}
	}()
	st, err := prepare(msg, buf)
	if err != nil {
		return nil, err
	}

	addrs := make([]string, len(st.result.Recipients))
	for i, r := range st.result.Recipients {
		addrs[i] = r.Address
	}
	ctx, st.telemetry = s.tel.StartSend(ctx, telemetry.SendInfo{
		ServerAddress: s.opts.Host, ServerPort: s.opts.Port, Recipients: addrs,
	})
	policy := s.opts.Retry
	if policy.Classifier == nil {
		policy.Classifier = s.classifier
	}
	userOnRetry := policy.OnRetry
	policy.OnRetry = func(ctx context.Context, attempt int, v classify.Verdict, delay time.Duration) {
		st.telemetry.Retry(attempt, v, delay)
		if userOnRetry != nil {
			userOnRetry(ctx, attempt, v, delay)
		}
	}
	rerr := retry.Do(ctx, policy, func(actx context.Context, attempt int) error {
		st.result.Attempts = attempt
		return s.attempt(actx, st, attempt)
	})
	err = s.finish(st, rerr)

	var v classify.Verdict
	var se *Error
	if errors.As(err, &se) {
		v = se.Verdict
	} else {
		// Delivered: the deciding reply is the last final dot's.
		for _, r := range st.result.Recipients {
			if r.Attempt == st.result.Attempts {
				v = r.Verdict
			}
		}
	}
	accepted, deferred, rejected := st.result.counts()
	st.telemetry.End(telemetry.SendOutcome{
		Err: err, Verdict: v, Attempts: st.result.Attempts,
		Accepted: accepted, Deferred: deferred, Rejected: rejected, Ambiguous: st.result.Ambiguous,
	})
	return st.result, err
}

// prepare checks msg and renders it into buf.
func prepare(msg *mail.Msg, buf *bytes.Buffer) (*sendState, error) {
	if msg == nil {
		return nil, fmt.Errorf("%w: nil message", ErrInvalidMessage)
	}
	from, err := msg.GetSender(false)
	if err != nil {
		return nil, fmt.Errorf("%w: no sender: %v", ErrInvalidMessage, err)
	}
	rcpts, err := msg.GetRecipients()
	if err != nil || len(rcpts) == 0 {
		return nil, ErrNoRecipients
	}
	st := &sendState{from: from, rcpts: rcpts, result: &Result{Recipients: make([]Recipient, len(rcpts))}}
	// go-mail parses every address when it is set (net/mail), so none can
	// carry CR or LF into a command line; only SMTPUTF8 needs looking for.
	for _, a := range append([]string{from}, rcpts...) {
		for i := 0; i < len(a); i++ {
			if a[i] >= 0x80 {
				st.utf8 = true
			}
		}
	}
	for i, r := range rcpts {
		st.result.Recipients[i].Address = strings.TrimSuffix(strings.TrimPrefix(r, "<"), ">")
	}
	if msg.GetMessageID() == "" {
		msg.SetMessageID()
	}
	st.result.MessageID = strings.TrimSuffix(strings.TrimPrefix(msg.GetMessageID(), "<"), ">")
	if _, err := msg.WriteTo(buf); err != nil {
		return nil, fmt.Errorf("%w: composing the message: %v", ErrInvalidMessage, err)
	}
	st.body = buf.Bytes()
	return st, nil
}

// finish settles the recipients no attempt decided and builds the error.
func (s *Sender) finish(st *sendState, rerr error) error {
	res := st.result
	var re *retry.Error
	errors.As(rerr, &re)
	var final classify.Verdict
	if re != nil {
		final = re.Verdict
	}
	messageRefused := re != nil && errors.Is(rerr, retry.ErrPermanent) && final.Action == classify.FailMessage
	for i := range res.Recipients {
		r := &res.Recipients[i]
		switch {
		case messageRefused && (r.Status == Pending || r.Status == Deferred):
			// The message itself was refused for good: nobody left gets it.
			r.Status, r.Verdict, r.Attempt = Rejected, final, res.Attempts
		case r.Status == Pending:
			r.Status, r.Verdict, r.Attempt = Deferred, final, res.Attempts
		}
	}

	var (
		errs                               []error
		rejected, deferred, unknown, total int
	)
	for _, r := range res.Recipients {
		if r.Status == Delivered {
			continue
		}
		total++
		switch r.Status {
		case Rejected:
			rejected++
		case Deferred:
			deferred++
		case Unknown:
			unknown++
		}
		if final.Class == classify.Unclassified {
			final = r.Verdict
		}
		errs = append(errs, &RecipientError{Address: r.Address, Status: r.Status, Verdict: r.Verdict})
	}
	if total == 0 && rerr == nil {
		return nil
	}
	switch {
	case messageRefused:
		errs = append(errs, ErrMessageRejected)
	case rejected > 0:
		errs = append(errs, ErrRecipientsRejected)
	}
	if deferred > 0 {
		errs = append(errs, ErrDeferred)
	}
	if unknown > 0 {
		errs = append(errs, ErrAmbiguous)
	}
	if rerr != nil {
		errs = append(errs, rerr)
	}
	return &Error{Verdict: final, Attempts: res.Attempts, errs: errs}
}

// decide records recipient i's outcome.
func (st *sendState) decide(i int, status Status, v classify.Verdict, attempt int, reply string, ta *telemetry.Attempt) {
	r := &st.result.Recipients[i]
	r.Status, r.Verdict, r.Attempt, r.Reply = status, v, attempt, reply
	ta.Recipient(r.Address, v)
}

// undecided returns the indexes of the recipients still to be delivered
// that attempt has not yet decided: the ones a transaction of that attempt
// should carry.
func (st *sendState) undecided(attempt int) []int {
	var out []int
	for i, r := range st.result.Recipients {
		if r.Status == Pending || (r.Status == Deferred && r.Attempt < attempt) {
			out = append(out, i)
		}
	}
	return out
}

// pending returns the indexes of the recipients still to be delivered.
func (st *sendState) pending() []int {
	var out []int
	for i, r := range st.result.Recipients {
		if r.Status == Pending || r.Status == Deferred {
			out = append(out, i)
		}
	}
	return out
}
