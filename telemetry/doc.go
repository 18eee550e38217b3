// Package telemetry makes the OpenTelemetry spans and metrics of SMTP sends,
// annotated with each reply's code and what it means, so that a failing
// mail is visible in a tracing backend. The sender calls it; it imports
// classify and OpenTelemetry only.
//
// No semantic convention for SMTP exists yet. The package follows the
// general ones: server.address, server.port and error.type (semconv
// v1.43.0), and the recording-errors guidance: a failed attempt is an
// error; the send is an error only if it finally failed; errors that were
// retried are not recorded on the send. Spans are left Unset on success.
// SMTP attributes are named under smtp.
//
// # Spans
//
// One smtp.send span (kind internal) per send covers all its attempts; it is
// a child of the span in the caller's context. Each attempt, one SMTP
// conversation, is an smtp.attempt span (kind client) under it. Events:
// smtp.reply on the attempt for every reply that refused or failed (every
// reply is counted in smtp.client.replies), smtp.recipient on the attempt
// for each recipient deferred or rejected (and, with RecordRecipients,
// accepted), smtp.retry on the send for each retry decided, with its delay.
//
// # Attributes
//
//	key                                type     where
//	server.address                     string   send, attempt; all metrics
//	server.port                        int      send, attempt; all metrics
//	error.type                         string   failed send, failed attempt; duration metrics
//	smtp.attempt                       int      attempt, smtp.retry (the attempt that failed)
//	smtp.attempts                      int      send
//	smtp.command                       string   send, attempt, events; replies, retries
//	smtp.reply.code                    int      send, attempt, events; replies
//	smtp.reply.enhanced_status_code    string   send, attempt, events
//	smtp.reply.class                   string   send, attempt, events; replies, retries
//	smtp.reply.action                  string   send, attempt
//	smtp.reply.reason                  string   send, attempt, smtp.retry, smtp.recipient; retries
//	smtp.reply.description             string   send, attempt
//	smtp.reply.enhanced_description    string   send, attempt
//	smtp.reply.text                    string   smtp.reply (opt-in: RecordReplyText)
//	smtp.recipients.count              int      send
//	smtp.recipients.accepted           int      send, attempt
//	smtp.recipients.deferred           int      send, attempt
//	smtp.recipients.rejected           int      send, attempt
//	smtp.recipients.addresses          string[] send (opt-in: RecordRecipients)
//	smtp.recipient.address             string   smtp.recipient (opt-in: RecordRecipients)
//	smtp.recipient.outcome             string   smtp.recipient; recipients
//	smtp.retry.delay                   double   smtp.retry, in seconds
//	smtp.ambiguous                     bool     send, attempt; only when true
//
// On the spans, the smtp.reply.* attributes and smtp.command are those of
// the deciding reply: the one whose verdict ended the attempt or the send.
// Descriptions come from classify's tables, never from server text.
// error.type is the verdict's reason ("greylisted", "connection-lost",
// "bad-mailbox", …), else its reply code, else the error's type name.
// Attributes with no value (a lost connection has no code) are left out.
//
// # Metrics
//
//	name                           instrument          unit         attributes
//	smtp.client.send.duration      float64 histogram   s            server.*, error.type
//	smtp.client.attempt.duration   float64 histogram   s            server.*, error.type
//	smtp.client.replies            int64 counter       {reply}      server.*, smtp.reply.code, smtp.reply.class, smtp.command
//	smtp.client.retries            int64 counter       {retry}      server.*, smtp.reply.reason, smtp.reply.class, smtp.command
//	smtp.client.recipients         int64 counter       {recipient}  server.*, smtp.recipient.outcome
//
// Send duration runs from StartSend to Send.End, retry waits included;
// recipients counts final outcomes, at Send.End. Metric attributes are
// bounded: codes, classes, commands and reasons are small fixed sets, and
// no metric carries an address, a message id or any text.
//
// # Privacy
//
// Server reply text (bounces quote addresses and names) and recipient
// addresses are personal data: off by default, recorded only with
// Options.RecordReplyText and Options.RecordRecipients, and never in
// metrics. Error values are never recorded, only their classification: an
// error's text can quote the server. Credentials never reach this package:
// the sender passes it only what servers said, never the client's lines,
// and the text of AUTH challenges (334) is never recorded: success and
// intermediate replies are counted, not recorded as events.
//
// # Providers and concurrency
//
// Providers default to the global ones, as otelhttp does: with no
// TracerProvider, a send uses the provider of the span in its context when
// there is one, else otel.GetTracerProvider(). New never fails: errors
// creating instruments go to otel.Handle. A Telemetry is safe for concurrent
// use, and so are a Send and an Attempt. A nil *Telemetry, Noop(), and a nil
// *Send or *Attempt record nothing, so the sender needs no nil checks.
package telemetry
