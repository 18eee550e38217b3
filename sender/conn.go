package sender

import (
	"context"
	"crypto/tls"
	"net"
	"net/textproto"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/postwise/postwise/classify"
)

// conn is one SMTP connection of the pool. It is used by one goroutine at a
// time: the pool hands it out and takes it back.
type conn struct {
	text *textproto.Conn
	raw  *watchedConn // the network connection, below any TLS

	lastUsed time.Time
	messages int

	// What the server offered in its EHLO reply.
	pipelining, eightBitMIME, smtpUTF8 bool
}

// watchedConn is the network connection of a dial, which the Sender keeps
// to close it when go-mail does not, and to interrupt a stalled dial. It
// notes whether the client has written anything yet: until then a failure
// is the greeting's.
type watchedConn struct {
	net.Conn
	wrote atomic.Bool
}

func (c *watchedConn) Write(p []byte) (int, error) {
	c.wrote.Store(true)
	return c.Conn.Write(p)
}

// dialFailures learns, through go-mail's error-handler hook, which command
// a refusal during dialing answered: go-mail's own error loses that when it
// falls back from EHLO to HELO, when it reports the TLS policy unmet after a
// refused EHLO, and for AUTH, whose refusals it builds itself and then
// cleans up after with "*" and QUIT. Only command names are kept: AUTH
// lines carry credentials.
type dialFailures struct {
	mu     sync.Mutex
	first  *classify.CommandError // the first refused command
	inAuth bool                   // an AUTH exchange was aborted
}

// go-mail names a command by the first word of its format string; AUTH's
// is "%s" (the line is built beforehand).
var dialCommands = map[string]string{
	"ehlo": classify.CmdEHLO, "helo": classify.CmdHELO, "starttls": classify.CmdSTARTTLS,
	"%s": classify.CmdAUTH, "noop": classify.CmdNOOP,
}

func (f *dialFailures) HandleError(_, command string, _ *textproto.Conn, err error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch command {
	case "*": // go-mail aborting an AUTH exchange the server refused
		f.inAuth = true
	case "quit": // go-mail's clean-up; says nothing about the cause
	default:
		if f.first == nil {
			f.first = &classify.CommandError{Command: dialCommands[command], Err: err}
		}
	}
	return err
}

// cause returns the error that decided a failed dial.
func (f *dialFailures) cause(err error, greeted bool) *classify.CommandError {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.first != nil:
		// The first refusal decided: the rest (HELO after EHLO, "no
		// STARTTLS" after a refused EHLO) follows from it.
		return f.first
	case f.inAuth:
		return &classify.CommandError{Command: classify.CmdAUTH, Err: err}
	case !greeted:
		return &classify.CommandError{Command: classify.CmdConnect, Err: err}
	}
	return &classify.CommandError{Err: err}
}

// usesImplicitTLS reports whether mail.WithSSL was among opts. go-mail
// applies implicit TLS only with its own dialer, and the Sender always
// supplies one, so the option would be silently lost; New rejects it and
// points to Options.ImplicitTLS. go-mail has no getter: the field is read
// by reflection (a test pins it to go-mail v0.8.1's layout).
func usesImplicitTLS(c *mail.Client) bool {
	f := reflect.ValueOf(c).Elem().FieldByName("useSSL")
	return f.IsValid() && f.Kind() == reflect.Bool && f.Bool()
}

// dial opens a connection: TCP, greeting, EHLO, STARTTLS and AUTH as the
// MailOptions say, all done by go-mail. A failure comes back as a
// *classify.CommandError naming the command whose reply decided it.
func (s *Sender) dial(ctx context.Context) (*conn, error) {
	var (
		mu  sync.Mutex
		raw *watchedConn
	)
	dialFunc := func(dctx context.Context, network, address string) (net.Conn, error) {
		nc, err := s.opts.DialContext(dctx, network, address)
		if err != nil {
			return nil, err
		}
		cc := &watchedConn{Conn: nc}
		mu.Lock()
		raw = cc
		mu.Unlock()
		if !s.opts.ImplicitTLS {
			return cc, nil
		}
		tc := tls.Client(cc, s.tlsConfig())
		if err := tc.HandshakeContext(dctx); err != nil {
			return nil, err
		}
		return tc, nil
	}
	opts := append(append([]mail.Option(nil), s.opts.MailOptions...), mail.WithDialContextFunc(dialFunc))
	if s.opts.Port != 0 {
		opts = append(opts, mail.WithPort(s.opts.Port))
	}
	if s.opts.ImplicitTLS {
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS)) // TLS is already on
	}
	mc, err := mail.NewClient(s.opts.Host, opts...)
	if err != nil {
		return nil, &classify.CommandError{Command: classify.CmdConnect, Err: err}
	}
	failures := &dialFailures{}
	mc.ErrorHandlerRegistry = smtp.NewErrorHandlerRegistry()
	mc.ErrorHandlerRegistry.SetDefaultHandler(failures)

	// The caller's cancellation must interrupt a server that stalls mid-dial.
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if raw != nil {
			raw.SetDeadline(time.Unix(1, 0))
		}
	})
	client, err := mc.DialToSMTPClientWithContext(ctx)
	stop()
	mu.Lock()
	cc := raw
	mu.Unlock()
	if err != nil {
		if cc != nil {
			cc.Close() // go-mail leaves it open when EHLO, STARTTLS or AUTH fail
		}
		greeted := cc != nil && cc.wrote.Load() // a command went out after the greeting
		return nil, failures.cause(err, greeted)
	}

	c := &conn{text: client.Text, raw: cc, lastUsed: s.now()}
	c.pipelining, _ = client.Extension("PIPELINING")
	c.pipelining = c.pipelining && !s.opts.DisablePipelining
	c.eightBitMIME, _ = client.Extension("8BITMIME")
	c.smtpUTF8, _ = client.Extension("SMTPUTF8")
	return c, nil
}

func (s *Sender) tlsConfig() *tls.Config {
	if s.opts.TLSConfig != nil {
		return s.opts.TLSConfig.Clone()
	}
	return &tls.Config{ServerName: s.opts.Host, MinVersion: tls.VersionTLS12}
}

// arm bounds the connection's IO by ctx: its deadline, and its
// cancellation, which must wake a read blocked on a silent server.
func (c *conn) arm(ctx context.Context) (disarm func()) {
	stop := context.AfterFunc(ctx, func() { c.raw.SetDeadline(time.Unix(1, 0)) })
	return func() { stop() }
}

// deadline bounds the next reads and writes by timeout and ctx's deadline.
func (c *conn) deadline(ctx context.Context, timeout time.Duration) {
	d := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(d) {
		d = dl
	}
	c.raw.SetDeadline(d)
}

// writeLine buffers one command line; flush sends the buffer.
func (c *conn) writeLine(line string) error {
	w := c.text.W
	if _, err := w.WriteString(line); err != nil {
		return err
	}
	_, err := w.WriteString("\r\n")
	return err
}

func (c *conn) flush() error { return c.text.W.Flush() }

// readReply reads one reply. A malformed one is a textproto.ProtocolError.
func (c *conn) readReply() (classify.Reply, error) {
	code, msg, err := c.text.ReadResponse(0)
	if err != nil {
		return classify.Reply{}, err
	}
	return classify.ReplyOf(code, msg), nil
}

// quit says goodbye and closes, within a short bound: the server's reply
// does not change anything.
func (c *conn) quit() {
	c.raw.SetDeadline(time.Now().Add(time.Second))
	if c.writeLine("QUIT") == nil && c.flush() == nil {
		c.readReply()
	}
	c.raw.Close()
}
