package testservers

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// SMTPSink is a running Postfix smtp-sink.
type SMTPSink struct {
	*process
	// Addr is the SMTP listener, "127.0.0.1:port".
	Addr string
	// DumpDir holds one file per mail transaction (smtp-sink -d), unless the
	// caller passed its own -d or -D; then it is empty.
	DumpDir string
}

// StartSMTPSink starts /usr/sbin/smtp-sink on a free loopback port with the
// caller's options, and stops it when the test ends. Useful options (see
// man smtp-sink; command lists are comma-separated, case-insensitive, and
// name SMTP commands: CONNECT, HELO, EHLO, LHLO, MAIL, RCPT, VRFY, DATA, "."
// (the end of message data), RSET, NOOP, QUIT):
//
//	-r cmds  reject with 450 4.3.0 (soft); -b sets the reply text
//	-f cmds  reject with 500 5.3.0 (hard); -B sets the reply text
//	-Q cmds  reply 421 and disconnect
//	-q cmds  disconnect without replying
//	-w s     wait s seconds before answering DATA; -W cmd:s[:odds] any command
//	-A s     after DATA, wait s seconds then abort with 550 without reading "."
//	-v       log the SMTP conversation (shown in the test log on failure)
//
// -r and -f imply -p (no PIPELINING). Added automatically: -u nobody when
// running as root (smtp-sink refuses to run as root otherwise), and
// -d <DumpDir>/msg. so Count and Messages can see what was delivered.
func StartSMTPSink(t testing.TB, args ...string) *SMTPSink {
	t.Helper()
	bin := binary(t, "POSTWISE_SMTP_SINK", "smtp-sink", "/usr/sbin/smtp-sink")
	s := &SMTPSink{}
	root := os.Geteuid() == 0
	if root && !hasOpt(args, "u") {
		args = append([]string{"-u", "nobody"}, args...)
	}
	if !hasOpt(args, "d") && !hasOpt(args, "D") {
		// Not t.TempDir: its parents are 0700 and smtp-sink writes as nobody.
		dir, err := os.MkdirTemp("", "postwise-smtp-sink-")
		if err != nil {
			t.Fatalf("testservers: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if root {
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatalf("testservers: %v", err)
			}
		}
		s.DumpDir = dir
		args = append(args, "-d", filepath.Join(dir, "msg."))
	}
	var port int
	argsFor := func(int) []string {
		port = FreePort(t)
		s.Addr = loopback(port)
		return append(append([]string(nil), args...), s.Addr, "64")
	}
	// Readiness without connecting: a probe connection would be a session,
	// and with -q/-Q/-r/-f CONNECT it would be faulted and logged.
	ready := func(ctx context.Context) error { return listenReady(port)(ctx) }
	s.process = start(t, "smtp-sink", bin, 15*time.Second, argsFor, ready)
	return s
}

// hasOpt reports whether args contain the single-letter option -o, alone or
// with its value attached (-unobody).
func hasOpt(args []string, o string) bool {
	for _, a := range args {
		if strings.HasPrefix(a, "-"+o) {
			return true
		}
	}
	return false
}

// dumpFiles lists the non-empty dump files, oldest first (roughly).
func (s *SMTPSink) dumpFiles(t testing.TB) []string {
	t.Helper()
	if s.DumpDir == "" {
		t.Fatalf("testservers: smtp-sink was started with its own -d/-D; Count and Messages are unavailable")
	}
	entries, err := os.ReadDir(s.DumpDir)
	if err != nil {
		t.Fatalf("testservers: %v", err)
	}
	type file struct {
		path string
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() == 0 {
			// smtp-sink creates an empty file at MAIL FROM; it stays empty
			// when the transaction ends before the message data.
			continue
		}
		files = append(files, file{filepath.Join(s.DumpDir, e.Name()), info.ModTime()})
	}
	sort.SliceStable(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.path
	}
	return paths
}

// Count returns the number of mail transactions whose message data
// smtp-sink received up to the final dot. Careful: that includes messages
// whose final dot was then faulted (-r/-f/-Q/-q .), because smtp-sink
// writes the capture before it replies; a transaction that ended earlier
// (a fault at MAIL, RCPT or DATA, a disconnect) is not counted. Call it
// after the client's session ended.
func (s *SMTPSink) Count(t testing.TB) int {
	t.Helper()
	return len(s.dumpFiles(t))
}

// Messages returns the captured mail transactions, oldest first by file
// modification time, which has a granularity of a few milliseconds: do not
// rely on the order of transactions that ended close together. Each one
// starts with smtp-sink's own headers (X-Client-Addr, X-Client-Proto,
// X-Helo-Args, X-Mail-Args, one X-Rcpt-Args per recipient, Received)
// followed by the message as received.
func (s *SMTPSink) Messages(t testing.TB) []string {
	t.Helper()
	var msgs []string
	for _, p := range s.dumpFiles(t) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("testservers: %v", err)
		}
		msgs = append(msgs, string(b))
	}
	return msgs
}
