package testservers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MailpitOptions configures StartMailpit. The zero value is a plain SMTP
// server without authentication and with chaos available but inactive.
type MailpitOptions struct {
	// AuthAcceptAny accepts any SMTP username and password, including none
	// (--smtp-auth-accept-any).
	AuthAcceptAny bool
	// AuthAllowInsecure allows PLAIN and LOGIN authentication without TLS
	// (--smtp-auth-allow-insecure).
	AuthAllowInsecure bool
	// Chaos sets chaos triggers from the start (--chaos-triggers). They can
	// be changed at any time with SetChaos.
	Chaos *Chaos
	// MaxMessages caps the mailbox (--max). Zero means unlimited; Mailpit's
	// own default of 500 would silently prune larger test runs.
	MaxMessages int
	// Args are extra command-line flags appended as they are.
	Args []string
}

// Mailpit is a running Mailpit server.
type Mailpit struct {
	*process
	// SMTPAddr is the SMTP listener, "127.0.0.1:port".
	SMTPAddr string
	// HTTPAddr is the web UI and API listener, "127.0.0.1:port".
	HTTPAddr string
	// APIURL is the base URL of the API, "http://127.0.0.1:port/api/v1".
	APIURL string

	client *http.Client
}

// Chaos holds Mailpit's chaos triggers: Sender fails MAIL FROM, Recipient
// fails RCPT TO, Authentication fails AUTH (only when auth is configured,
// for example with AuthAcceptAny). The JSON shape is Mailpit's.
type Chaos struct {
	Sender         ChaosTrigger `json:"Sender"`
	Recipient      ChaosTrigger `json:"Recipient"`
	Authentication ChaosTrigger `json:"Authentication"`
}

// ChaosTrigger makes Mailpit answer a command with ErrorCode (400-599) with
// a probability of Probability percent (0-100; 0 disables the trigger).
// Mailpit replies "<code> Chaos sender error" (or recipient / authentication).
type ChaosTrigger struct {
	ErrorCode   int `json:"ErrorCode"`
	Probability int `json:"Probability"`
}

func (c Chaos) flag() string {
	var parts []string
	add := func(key string, tr ChaosTrigger, defaultCode int) {
		if tr.Probability == 0 {
			return
		}
		if tr.ErrorCode == 0 {
			tr.ErrorCode = defaultCode
		}
		parts = append(parts, fmt.Sprintf("%s:%d:%d", key, tr.ErrorCode, tr.Probability))
	}
	add("Sender", c.Sender, 451)
	add("Recipient", c.Recipient, 451)
	add("Authentication", c.Authentication, 535)
	return strings.Join(parts, ",")
}

// MailpitMessage is one message summary from Mailpit's API.
type MailpitMessage struct {
	// ID is Mailpit's database ID.
	ID string `json:"ID"`
	// MessageID is the Message-ID header, without angle brackets.
	MessageID string           `json:"MessageID"`
	From      *MailpitAddress  `json:"From"`
	To        []MailpitAddress `json:"To"`
	Cc        []MailpitAddress `json:"Cc"`
	Bcc       []MailpitAddress `json:"Bcc"`
	Subject   string           `json:"Subject"`
	Created   time.Time        `json:"Created"`
	Username  string           `json:"Username"`
	Size      uint64           `json:"Size"`
}

// MailpitAddress is a mail address in Mailpit's API.
type MailpitAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// StartMailpit starts Mailpit on free loopback SMTP and HTTP ports with a
// database in a temporary directory, and stops it when the test ends.
//
// Flags always passed: --smtp, --listen (loopback, free ports),
// --database (temp dir), --smtp-disable-rdns and --disable-version-check (no
// lookups on a machine without outside network), --enable-chaos (so SetChaos
// works at any time; triggers start at 0%), --max (see MailpitOptions).
func StartMailpit(t testing.TB, opts MailpitOptions) *Mailpit {
	t.Helper()
	bin := binary(t, "POSTWISE_MAILPIT", "mailpit")
	dir := t.TempDir()
	m := &Mailpit{client: &http.Client{Timeout: 30 * time.Second}}
	argsFor := func(attempt int) []string {
		ports := freePorts(t, 2)
		m.SMTPAddr, m.HTTPAddr = loopback(ports[0]), loopback(ports[1])
		m.APIURL = "http://" + m.HTTPAddr + "/api/v1"
		args := []string{
			"--smtp", m.SMTPAddr,
			"--listen", m.HTTPAddr,
			"--database", filepath.Join(dir, fmt.Sprintf("mailpit-%d.db", attempt)),
			"--smtp-disable-rdns",
			"--disable-version-check",
			"--enable-chaos",
			"--max", strconv.Itoa(opts.MaxMessages),
		}
		if opts.AuthAcceptAny {
			args = append(args, "--smtp-auth-accept-any")
		}
		if opts.AuthAllowInsecure {
			args = append(args, "--smtp-auth-allow-insecure")
		}
		if opts.Chaos != nil {
			if f := opts.Chaos.flag(); f != "" {
				args = append(args, "--chaos-triggers", f)
			}
		}
		return append(args, opts.Args...)
	}
	ready := func(ctx context.Context) error {
		if err := dialReady(m.SMTPAddr)(ctx); err != nil {
			return err
		}
		return httpReady(ctx, m.client, "http://"+m.HTTPAddr+"/readyz")
	}
	m.process = start(t, "mailpit", bin, 30*time.Second, argsFor, ready)
	return m
}

// api performs one API request; body (if not nil) is sent as JSON and the
// response is decoded into out (if not nil). Any error fails the test.
func (m *Mailpit) api(t testing.TB, method, path string, body, out any) {
	t.Helper()
	if err := doJSON(m.client, method, m.APIURL+path, body, out); err != nil {
		t.Fatalf("testservers: mailpit API: %v", err)
	}
}

// SetChaos replaces all chaos triggers (PUT /api/v1/chaos) and returns what
// Mailpit applied. A trigger left zero is disabled; an ErrorCode of 0 means
// Mailpit's default (451, or 535 for Authentication).
func (m *Mailpit) SetChaos(t testing.TB, c Chaos) Chaos {
	t.Helper()
	var got Chaos
	m.api(t, http.MethodPut, "/chaos", c, &got)
	return got
}

// GetChaos returns the current chaos triggers (GET /api/v1/chaos).
func (m *Mailpit) GetChaos(t testing.TB) Chaos {
	t.Helper()
	var got Chaos
	m.api(t, http.MethodGet, "/chaos", nil, &got)
	return got
}

// ResetChaos disables all chaos triggers.
func (m *Mailpit) ResetChaos(t testing.TB) {
	t.Helper()
	m.SetChaos(t, Chaos{})
}

// Count returns the number of messages in the mailbox.
func (m *Mailpit) Count(t testing.TB) int {
	t.Helper()
	var page struct {
		Total int `json:"total"`
	}
	m.api(t, http.MethodGet, "/messages?limit=1", nil, &page)
	return page.Total
}

// Messages returns every message in the mailbox, newest first, reading
// GET /api/v1/messages page by page.
func (m *Mailpit) Messages(t testing.TB) []MailpitMessage {
	t.Helper()
	const pageSize = 250
	var all []MailpitMessage
	for start := 0; ; start += pageSize {
		var page struct {
			Total    int              `json:"total"`
			Messages []MailpitMessage `json:"messages"`
		}
		m.api(t, http.MethodGet, "/messages?"+url.Values{
			"start": {strconv.Itoa(start)},
			"limit": {strconv.Itoa(pageSize)},
		}.Encode(), nil, &page)
		all = append(all, page.Messages...)
		if len(page.Messages) < pageSize || len(all) >= page.Total {
			return all
		}
	}
}

// MessageIDs returns how many times each Message-ID (without angle brackets)
// is in the mailbox: a count above 1 is a duplicate delivery.
func (m *Mailpit) MessageIDs(t testing.TB) map[string]int {
	t.Helper()
	ids := make(map[string]int)
	for _, msg := range m.Messages(t) {
		ids[msg.MessageID]++
	}
	return ids
}

// WaitCount polls until the mailbox holds at least n messages and returns
// the count, or fails the test after timeout. Mailpit stores a message
// before it answers the final dot, so this is only needed for sends that
// run concurrently with the check.
func (m *Mailpit) WaitCount(t testing.TB, n int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := m.Count(t)
		if c >= n {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("testservers: mailpit holds %d messages after %v, want at least %d", c, timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// DeleteAll deletes every message (DELETE /api/v1/messages).
func (m *Mailpit) DeleteAll(t testing.TB) {
	t.Helper()
	m.api(t, http.MethodDelete, "/messages", nil, nil)
}

// doJSON is a small JSON-over-HTTP helper shared by the API clients.
func doJSON(c *http.Client, method, url string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading response: %w", method, url, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(b)))
	}
	if out != nil && len(bytes.TrimSpace(b)) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decoding %q: %w", method, url, truncate(b, 300), err)
		}
	}
	return nil
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
