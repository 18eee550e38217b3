package classify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/textproto"
	"os"
	"syscall"
)

// CommandError records the command during which an error happened, so that
// Classify can say what a reply answered, and can tell a connection lost
// after the final dot (ambiguous: the message may have been queued) from one
// lost earlier. Clients that drive SMTP themselves wrap each command's error
// in one.
type CommandError struct {
	Command string // CmdMAIL, CmdRCPT, …
	Err     error
}

func (e *CommandError) Error() string {
	if e.Err == nil {
		return "smtp " + e.Command + ": <nil>"
	}
	return "smtp " + e.Command + ": " + e.Err.Error()
}

func (e *CommandError) Unwrap() error { return e.Err }

// codedError is how Classify recognises go-mail's *mail.SendError without
// importing go-mail: it has no Unwrap, only these methods.
type codedError interface {
	error
	ErrorCode() int
	EnhancedStatusCode() string
}

// Classify returns the verdict on err with the package's default Classifier.
func Classify(err error) Verdict { return defaultClassifier.Classify(err) }

// Classify returns the verdict on an error a send produced, wrapped any
// number of times (fmt.Errorf %w, errors.Join):
//
//   - nil: Success.
//   - context.Canceled, context.DeadlineExceeded: the caller gave up; never
//     retried, never blamed on the server.
//   - a reply: *textproto.Error, or an error with go-mail's SendError
//     methods (ErrorCode, EnhancedStatusCode) and a code: ClassifyReply,
//     with the command from an enclosing *CommandError.
//   - *ParseError, textproto.ProtocolError: the server sent something that
//     is not a reply; like a lost connection.
//   - TLS certificate errors: permanent; configuration must change.
//   - DNS errors: permanent when the name does not exist, else transient.
//   - refused, reset and closed connections, io.EOF, io.ErrUnexpectedEOF,
//     timeouts: transient, on a new connection; Ambiguous after the final dot.
//   - anything else is a local error (bad input, a message that cannot be
//     composed, a configuration the server does not support): permanent,
//     and never a reason to retry.
func (c *Classifier) Classify(err error) Verdict {
	if err == nil {
		return Verdict{Class: Success, Action: Done, Description: "OK"}
	}
	if c == nil {
		c = defaultClassifier
	}
	command := ""
	var ce *CommandError
	if errors.As(err, &ce) {
		command = ce.Command
	}

	if errors.Is(err, context.Canceled) {
		return local(ReasonCanceled, command, "canceled by the caller")
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return local(ReasonDeadline, command, "the caller's deadline passed")
	}

	var te *textproto.Error
	if errors.As(err, &te) {
		r := ReplyOf(te.Code, te.Msg)
		r.Command = command
		return c.ClassifyReply(r)
	}
	var coded codedError
	if errors.As(err, &coded) && coded.ErrorCode() != 0 {
		return c.ClassifyReply(Reply{Code: coded.ErrorCode(), Enhanced: coded.EnhancedStatusCode(), Command: command})
	}

	v := Verdict{Class: Transient, Action: Reconnect, Source: FromNetwork, Command: command}
	var (
		pe        *ParseError
		tpe       textproto.ProtocolError
		dnsErr    *net.DNSError
		netErr    net.Error
		verifyErr *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		alert     tls.AlertError
		record    tls.RecordHeaderError
	)
	switch {
	case errors.As(err, &pe) || errors.As(err, &tpe):
		v.Source, v.Reason, v.Description = FromServer, ReasonProtocolError, "the server's answer is not an SMTP reply"
	case errors.As(err, &verifyErr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &invalid):
		v.Class, v.Action, v.Reason, v.Description = Permanent, FailMessage, ReasonCertificate, "the server's TLS certificate was rejected"
	case errors.As(err, &alert) || errors.As(err, &record):
		v.Class, v.Action, v.Reason, v.Description = Permanent, FailMessage, ReasonTLSFailed, "the TLS handshake failed"
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		v.Class, v.Action, v.Reason, v.Description = Permanent, FailMessage, ReasonDNSNotFound, "the server's name does not exist"
	case errors.As(err, &dnsErr):
		v.Reason, v.Description = ReasonDNSTemporary, "the server's name could not be resolved now"
	case errors.Is(err, syscall.ECONNREFUSED):
		v.Reason, v.Description = ReasonConnectionRefused, "connection refused"
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		v.Reason, v.Description = ReasonTimeout, "the server did not answer in time"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.As(err, &netErr):
		v.Reason, v.Description = ReasonConnectionLost, "connection lost"
	default:
		return local(ReasonInvalidInput, command, "the client could not send this message as it is")
	}
	// RFC 5321 §4.2.5 and §6.1: after the final dot the server may already
	// own the message, so a silent end leaves its fate unknown.
	v.Ambiguous = command == CmdDataEnd && v.Class == Transient
	return v
}

func local(reason Reason, command, description string) Verdict {
	return Verdict{
		Class: Permanent, Action: FailMessage, Reason: reason, Source: FromClient,
		Command: command, Description: description,
	}
}
