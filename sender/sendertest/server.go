package sendertest

import (
	"crypto/tls"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"
)

// DefaultHostname is the name the server gives in its greeting and EHLO
// reply when Options.Hostname is empty.
const DefaultHostname = "localhost"

// Options configure a Server. The zero value is a server that accepts every
// well-formed transaction, without STARTTLS or AUTH.
type Options struct {
	// Hostname is the name in the greeting and EHLO reply, also covered by
	// the TLS certificate. Empty means DefaultHostname.
	Hostname string

	// Username and Password enable AUTH PLAIN and AUTH LOGIN when Username
	// is not empty. Then MAIL is refused with 530 5.7.0 until the client
	// has authenticated, and a wrong username or password gets
	// 535 5.7.8. AUTH is offered with or without TLS, so tests need no
	// certificate: the PLAIN and LOGIN clients of go-mail's smtp package
	// (and net/smtp's PlainAuth) send credentials without TLS to a server
	// they know as localhost or 127.0.0.1.
	// Empty Username means no AUTH.
	Username string
	Password string

	// TLS offers STARTTLS (RFC 3207) with a self-signed certificate; trust
	// it with (*Server).ClientTLSConfig. False means STARTTLS is neither
	// advertised nor accepted.
	TLS bool

	// MaxRecipients is how many recipients one transaction may have; the
	// next RCPT gets 452 4.5.3 Too many recipients (RFC 5321 §4.5.3.1.10).
	// Zero means no limit.
	MaxRecipients int

	// Rules script the server's replies; see Rule. They are copied.
	Rules []Rule
}

// A Server is an SMTP server on a loopback port, for tests. Its methods are
// safe for concurrent use, including while clients are connected.
type Server struct {
	// Addr is the server's address, "127.0.0.1:port". It is set by
	// NewUnstartedServer and not changed afterwards.
	Addr string

	opts     Options
	listener net.Listener
	quit     chan struct{} // closed by Close: ends Delay and Stall
	wg       sync.WaitGroup

	tlsOnce sync.Once
	tls     *tlsState

	mu       sync.Mutex
	started  bool
	closed   bool
	conns    map[net.Conn]struct{}
	nconns   int
	script   script
	commands []Command
	messages []Message
	rejected []Message
	nqueued  int
}

// NewServer starts and returns a new Server listening on 127.0.0.1 on a
// free port. The caller should call Close when finished, to shut it down.
// Like httptest.NewServer it panics if it cannot listen.
func NewServer(opts Options) *Server {
	s := NewUnstartedServer(opts)
	s.Start()
	return s
}

// NewUnstartedServer returns a new Server listening on 127.0.0.1 on a free
// port but not yet accepting connections: connections wait until Start or
// StartTLS. The caller should call Close when finished.
func NewUnstartedServer(opts Options) *Server {
	if opts.Hostname == "" {
		opts.Hostname = DefaultHostname
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic("sendertest: failed to listen on a port: " + err.Error())
	}
	s := &Server{
		Addr:     l.Addr().String(),
		opts:     opts,
		listener: l,
		quit:     make(chan struct{}),
		conns:    make(map[net.Conn]struct{}),
	}
	s.opts.Rules = nil // the script owns the copy
	s.script.add(opts.Rules...)
	return s
}

// Start starts serving plain SMTP, with STARTTLS if Options.TLS is set.
// It panics if the server was already started or closed.
func (s *Server) Start() { s.start(false) }

// StartTLS starts serving SMTP over implicit TLS (RFC 8314, "SMTPS", the
// port-465 style): the TLS handshake comes before the greeting. STARTTLS is
// then not offered. It panics if the server was already started or closed.
func (s *Server) StartTLS() { s.start(true) }

func (s *Server) start(implicitTLS bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		panic("sendertest: Server already started or closed")
	}
	s.started = true
	l := s.listener
	if implicitTLS {
		l = tls.NewListener(l, s.tlsState().server)
	}
	s.wg.Add(1)
	go s.serve(l)
}

// serve accepts connections until the listener is closed.
func (s *Server) serve(l net.Listener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			// Loopback accept does not fail transiently; the only
			// expected error is Close closing the listener.
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.nconns++
		id := s.nconns
		// Close closes the TCP connection under any TLS: tls.Conn.Close
		// would first try to send an alert, which can block.
		raw := c
		if tc, ok := c.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		s.conns[raw] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()

		go func() {
			defer s.wg.Done()
			newSession(s, c, id).run()
			s.mu.Lock()
			delete(s.conns, raw)
			s.mu.Unlock()
		}()
	}
}

// Close stops accepting connections, closes every open connection, and
// waits for all of the server's goroutines to return, so a test may check
// for leaks right after. Close may be called more than once.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	close(s.quit)
	s.listener.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// Host returns the server's IP address, "127.0.0.1".
func (s *Server) Host() string {
	host, _, _ := net.SplitHostPort(s.Addr)
	return host
}

// Port returns the server's TCP port.
func (s *Server) Port() int {
	_, port, _ := net.SplitHostPort(s.Addr)
	n, _ := strconv.Atoi(port)
	return n
}

// Connections returns how many connections the server has accepted.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nconns
}

// Commands returns every command line received so far, in order, across
// all connections; see Command. The slice is a copy.
func (s *Server) Commands() []Command {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.commands)
}

// Messages returns the messages whose final dot was answered with a 2xx
// reply, in order. They are copies.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMessages(s.messages)
}

// Rejected returns the messages received in full whose final dot got a
// 4xx or 5xx reply from a Rule, or no reply at all (Code 0: Drop or Stall
// at DATA-END). They are copies.
func (s *Server) Rejected() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneMessages(s.rejected)
}

func cloneMessages(ms []Message) []Message {
	out := make([]Message, len(ms))
	for i, m := range ms {
		out[i] = m.clone()
	}
	return out
}

// AddRule appends rules to the script, after the existing ones. Sessions
// in progress see them from their next command.
func (s *Server) AddRule(rules ...Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script.add(rules...)
}

// SetRules replaces the script with rules, with fresh Times counts.
// Sessions in progress see them from their next command.
func (s *Server) SetRules(rules ...Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = script{}
	s.script.add(rules...)
}

// Reset forgets the recorded commands and messages, so one server can
// serve several subtests. Rules, their counts, and connection numbering
// are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands, s.messages, s.rejected = nil, nil, nil
}

// match finds the scripted action for a command, if any.
func (s *Server) match(command, arg string) (Action, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.script.match(command, arg)
}

func (s *Server) record(c Command) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commands = append(s.commands, c)
}

func (s *Server) nextQueueID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nqueued++
	return fmt.Sprintf("ST%06d", s.nqueued)
}

// store records a message: delivered when code is 2xx, else rejected.
func (s *Server) store(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m.Code >= 200 && m.Code < 300 {
		s.messages = append(s.messages, m)
	} else {
		s.rejected = append(s.rejected, m)
	}
}

// sleep waits for d, or less if the server closes; it reports whether the
// full time passed.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.quit:
		return false
	}
}
