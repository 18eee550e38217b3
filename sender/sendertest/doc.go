// Package sendertest provides a scriptable SMTP server for tests, in the
// way net/http/httptest provides HTTP servers.
//
// NewServer starts a server on a free loopback port (127.0.0.1 only; it
// never listens on other interfaces). Point the client under test at
// Server.Addr, send, then inspect what arrived: Messages for the messages
// the server accepted, Rejected for those it refused after the final dot,
// and Commands for the transcript of every command line, in order, with
// the number of the connection it came on. Close shuts the server down and
// waits for all of its goroutines, so tests can check for leaks.
//
// Without rules the server accepts every well-formed transaction. Rules
// replace its reply to a command, for a number of times or forever:
//
//	srv := sendertest.NewServer(sendertest.Options{Rules: []sendertest.Rule{
//		{Command: "RCPT", Arg: "bob@", Times: 2,
//			Do: sendertest.Reply(451, "4.7.1", "Greylisted, try again later")},
//	}})
//	defer srv.Close()
//
// An Action replies with any code, sends raw bytes, drops the connection,
// stalls, or does any of those after a delay. A scripted reply has the
// effect a real server's reply with that code has: a refused recipient is
// not in the stored message, a 4xx after the final dot means the message
// is not stored, a 421 closes the connection.
//
// Protocol support:
//   - RFC 5321: EHLO, HELO, MAIL, RCPT, DATA (with dot-stuffing), RSET,
//     NOOP, VRFY, QUIT. Command order is enforced; addresses are parsed
//     leniently. EHLO advertises PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES
//     and SMTPUTF8; parameters such as BODY=8BITMIME are accepted and kept
//     in the transcript, not interpreted.
//   - RFC 2920 PIPELINING: commands are read line by line from a buffer,
//     so a client may send MAIL, several RCPTs and DATA in one write and
//     gets the replies in order.
//   - RFC 3207 STARTTLS, with Options.TLS, using a certificate generated
//     in process; trust it with Server.ClientTLSConfig. Plaintext pipelined
//     after STARTTLS is discarded, as §5 requires. StartTLS serves implicit
//     TLS (RFC 8314) instead.
//   - RFC 4954 AUTH with PLAIN (RFC 4616) and LOGIN, with Options.Username
//     and Options.Password. Credentials never reach the transcript: they
//     are recorded as Redacted.
//   - RFC 3463 enhanced status codes in every reply but the greeting, the
//     EHLO/HELO reply and 354.
package sendertest
