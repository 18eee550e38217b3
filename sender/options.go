package sender

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/postwise/postwise/classify"
	"github.com/postwise/postwise/retry"
	"github.com/postwise/postwise/telemetry"
)

// Defaults for Options.
const (
	// DefaultMaxConnections bounds the connections to the server. Four
	// keeps a notification service's bursts moving without looking like a
	// flood to the relay; most relays allow 10–20 per client.
	DefaultMaxConnections = 4
	// DefaultIdleTimeout closes a pooled connection idle this long, before
	// the server's own timeout does it (RFC 5321 §4.5.3.2.7 asks servers
	// to wait at least 5 minutes; many wait less).
	DefaultIdleTimeout = 30 * time.Second
	// DefaultCheckAfterIdle is how long a connection may sit idle before a
	// NOOP checks it on reuse. A connection used more recently is trusted:
	// if it died, the send meets that at MAIL and retries on a new one.
	DefaultCheckAfterIdle = 5 * time.Second
	// DefaultMaxMessagesPerConnection closes a connection after this many
	// messages; providers limit it (often to 100) and a fresh connection
	// spreads load across a relay's servers.
	DefaultMaxMessagesPerConnection = 100
	// DefaultCommandTimeout bounds the wait for each reply when the
	// attempt has no earlier deadline.
	DefaultCommandTimeout = 5 * time.Minute
)

// Options configures a Sender. The zero value of every field but Host
// means its documented default. New copies the Options.
type Options struct {
	// Host is the SMTP server's name or address. Required.
	Host string
	// Port is the server's port. Zero means go-mail's default (25, or
	// what MailOptions choose).
	Port int

	// MailOptions are passed to go-mail's NewClient for every connection:
	// TLS policy (mandatory STARTTLS by default), credentials, HELO name,
	// timeouts (mail.WithTimeout bounds the dial phase). The Sender takes
	// over two: mail.WithDialContextFunc (use Options.DialContext) and
	// mail.WithSSL (use Options.ImplicitTLS); and it sets the client's
	// ErrorHandlerRegistry to learn which command each refusal answered.
	MailOptions []mail.Option

	// Retry is the retry policy of each Send. Its zero value is retry's
	// defaults.
	Retry retry.Policy
	// Classifier judges replies; nil means classify's default rules.
	Classifier *classify.Classifier

	// MaxConnections bounds the connections open at once. Zero means
	// DefaultMaxConnections.
	MaxConnections int
	// IdleTimeout closes pooled connections idle this long. Zero means
	// DefaultIdleTimeout.
	IdleTimeout time.Duration
	// CheckAfterIdle sends a NOOP before reusing a connection idle this
	// long. Zero means DefaultCheckAfterIdle.
	CheckAfterIdle time.Duration
	// MaxMessagesPerConnection closes a connection after this many
	// messages. Zero means DefaultMaxMessagesPerConnection.
	MaxMessagesPerConnection int
	// CommandTimeout bounds each wait for a reply, within the attempt's
	// deadline. Zero means DefaultCommandTimeout.
	CommandTimeout time.Duration

	// DisablePipelining sends each command and waits for its reply even
	// when the server offers PIPELINING (RFC 2920).
	DisablePipelining bool
	// AtMostOnce reports a message whose connection was lost after the
	// final dot as failed (ErrAmbiguous), rather than sending it again.
	// The default, at-least-once, resends it with the same Message-ID so
	// that receivers can drop the duplicate.
	AtMostOnce bool

	// ImplicitTLS connects with TLS from the first byte (RFC 8314, port
	// 465) instead of STARTTLS. go-mail's mail.WithSSL is not honoured
	// with the Sender's dialer; New rejects it in favour of this.
	ImplicitTLS bool
	// TLSConfig is the TLS configuration for ImplicitTLS. Nil means
	// verifying the server's certificate for Host, TLS 1.2 or later. For
	// STARTTLS, use mail.WithTLSConfig in MailOptions.
	TLSConfig *tls.Config

	// DialContext opens connections. Nil means a net.Dialer.
	DialContext func(ctx context.Context, network, address string) (net.Conn, error)

	// Telemetry configures spans and metrics. The zero value uses the
	// global OpenTelemetry providers and records no personal data.
	Telemetry telemetry.Options
}

func (o Options) withDefaults() (Options, error) {
	if o.Host == "" {
		return o, errors.New("sender: Options.Host is empty")
	}
	if o.Port < 0 || o.Port > 65535 {
		return o, fmt.Errorf("sender: Options.Port %d is not a port", o.Port)
	}
	if o.MaxConnections < 0 || o.IdleTimeout < 0 || o.CheckAfterIdle < 0 || o.MaxMessagesPerConnection < 0 || o.CommandTimeout < 0 {
		return o, errors.New("sender: negative limit in Options")
	}
	if err := o.Retry.Validate(); err != nil {
		return o, fmt.Errorf("sender: Options.Retry: %w", err)
	}
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.CheckAfterIdle == 0 {
		o.CheckAfterIdle = DefaultCheckAfterIdle
	}
	if o.MaxMessagesPerConnection == 0 {
		o.MaxMessagesPerConnection = DefaultMaxMessagesPerConnection
	}
	if o.CommandTimeout == 0 {
		o.CommandTimeout = DefaultCommandTimeout
	}
	if o.DialContext == nil {
		var d net.Dialer
		o.DialContext = d.DialContext
	}
	o.MailOptions = append([]mail.Option(nil), o.MailOptions...)
	return o, nil
}
