// Package testservers starts real servers (Mailpit, Postfix's smtp-sink,
// Toxiproxy, Jaeger) as subprocesses for integration tests.
//
// Every server binds to 127.0.0.1 on free ports, is waited for until it is
// ready, and is stopped through t.Cleanup when the test (or benchmark) ends.
// Its stdout and stderr are captured and printed with t.Log when the test
// fails (or always, with POSTWISE_TESTSERVERS_VERBOSE=1).
//
// A missing binary fails the test loudly; it is never a skip. The binaries are
// found through environment variables, which scripts/test exports after
// installing and building them:
//
//	POSTWISE_MAILPIT     Mailpit          (default <repo>/.tools/bin/mailpit)
//	POSTWISE_SMTP_SINK   Postfix smtp-sink (default /usr/sbin/smtp-sink)
//	POSTWISE_TOXIPROXY   toxiproxy-server (default <repo>/.tools/bin/toxiproxy-server)
//	POSTWISE_JAEGER      Jaeger v2        (default <repo>/.tools/bin/jaeger)
//
// When a variable is unset, the package looks in <repo>/.tools/bin (the
// directory scripts/test builds into), then in PATH. So after one run of
// scripts/test, plain `go test -tags integration ./...` works too.
package testservers

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	modulePath = "github.com/postwise/postwise"

	// startAttempts is how often a server start is retried when it loses a
	// race for its free port ("address already in use").
	startAttempts = 3

	// stopGrace is how long a server gets to exit after SIGTERM before SIGKILL.
	stopGrace = 5 * time.Second

	// maxLog caps the captured output of one server (the tail is kept).
	maxLog = 4 << 20

	// maxPrinted caps what a failed test prints of a server's output.
	maxPrinted = 128 << 10
)

// binary returns the path of a server binary or fails the test with
// instructions. envVar overrides; then <repo>/.tools/bin/<name>, PATH, and
// the extra fallbacks are tried in that order.
func binary(t testing.TB, envVar, name string, fallbacks ...string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		if isExecutable(p) {
			return p
		}
		t.Fatalf("testservers: %s=%q is not an executable file; run scripts/test to install and build the test servers", envVar, p)
	}
	var tried []string
	if root, ok := repoRoot(); ok {
		p := filepath.Join(root, ".tools", "bin", name)
		if isExecutable(p) {
			return p
		}
		tried = append(tried, p)
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	tried = append(tried, name+" in PATH")
	for _, p := range fallbacks {
		if isExecutable(p) {
			return p
		}
		tried = append(tried, p)
	}
	t.Fatalf("testservers: %s binary not found (set %s; tried %s).\n"+
		"Run scripts/test from the repository root: it installs Postfix's smtp-sink and builds Mailpit, Jaeger and Toxiproxy into .tools/bin.",
		name, envVar, strings.Join(tried, ", "))
	return ""
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// repoRoot walks up from the working directory (go test runs in the
// package directory) to the go.mod of this module.
func repoRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil {
			if firstLine(b) == "module "+modulePath {
				return dir, true
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

func firstLine(b []byte) string {
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); line != "" && !strings.HasPrefix(line, "//") {
			return line
		}
	}
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Starting a server on it can still race with another process; the Start
// functions retry with new ports when that happens.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("testservers: no free port: %v", err)
	}
	return p
}

// FreeAddr returns "127.0.0.1:<port>" for a port from FreePort.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return loopback(FreePort(t))
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// freePorts returns n distinct free ports.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	// Hold all listeners open until every port is chosen so they are distinct.
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("testservers: no free port: %v", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func loopback(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// logBuffer is a goroutine-safe output sink that keeps the last maxLog bytes.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped int
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - maxLog; over > 0 {
		// Drop a little more than needed so this does not run on every write.
		drop := min(over+maxLog/4, b.buf.Len())
		b.buf.Next(drop)
		b.dropped += drop
	}
	return len(p), nil
}

// tail returns the last n bytes of s, marking the cut.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("[... %d earlier bytes not shown; use Output() ...]\n%s", len(s)-n, s[len(s)-n:])
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dropped > 0 {
		return fmt.Sprintf("[... %d earlier bytes dropped ...]\n%s", b.dropped, b.buf.String())
	}
	return b.buf.String()
}

// process is one running server.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *logBuffer
	done chan struct{} // closed when the process has exited
	err  error         // Wait's result, valid after done is closed

	stopOnce sync.Once
}

// Output returns what the server wrote to stdout and stderr so far.
func (p *process) Output() string { return p.out.String() }

// Running reports whether the server process is still alive.
func (p *process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

func launch(name, bin string, args []string, dir string) (*process, error) {
	p := &process{name: name, out: &logBuffer{}, done: make(chan struct{})}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	cmd.Env = os.Environ()
	cmd.SysProcAttr = sysProcAttr()
	fmt.Fprintf(p.out, "$ %s %s\n", bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// stop ends the process: SIGTERM, then SIGKILL after stopGrace. It waits
// for the process to exit and is safe to call more than once.
func (p *process) stop() {
	p.stopOnce.Do(func() {
		if !p.Running() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			return
		case <-time.After(stopGrace):
		}
		fmt.Fprintf(p.out, "[testservers: %s ignored SIGTERM for %v, sending SIGKILL]\n", p.name, stopGrace)
		_ = p.cmd.Process.Kill()
		<-p.done
	})
}

// exitStatus describes how the process ended, for messages.
func (p *process) exitStatus() string {
	if p.Running() {
		return "still running"
	}
	if p.err == nil {
		return "exited with status 0"
	}
	return p.err.Error()
}

// start launches a server and waits until ready returns nil. It retries with
// fresh ports (argsFor is called again) when the server lost a port race. On
// success the server is stopped at the end of the test. On failure the test
// fails with the server's output.
func start(t testing.TB, name, bin string, timeout time.Duration, argsFor func(attempt int) []string, ready func(ctx context.Context) error) *process {
	t.Helper()
	var lastErr error
	var lastOut string
	for attempt := 1; attempt <= startAttempts; attempt++ {
		p, err := launch(name, bin, argsFor(attempt), "")
		if err != nil {
			t.Fatalf("testservers: %v", err)
		}
		err = waitReady(p, timeout, ready)
		if err == nil {
			t.Cleanup(func() {
				p.stop()
				if t.Failed() || os.Getenv("POSTWISE_TESTSERVERS_VERBOSE") == "1" {
					t.Logf("testservers: %s output (%s):\n%s", name, p.exitStatus(), tail(p.Output(), maxPrinted))
				}
			})
			return p
		}
		p.stop()
		lastErr, lastOut = err, p.Output()
		if !strings.Contains(strings.ToLower(lastOut), "address already in use") {
			break
		}
	}
	t.Fatalf("testservers: %s did not become ready: %v\n--- %s output ---\n%s", name, lastErr, name, lastOut)
	return nil
}

// waitReady polls ready until it succeeds, the process exits, or timeout.
func waitReady(p *process, timeout time.Duration, ready func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for {
		if !p.Running() {
			return fmt.Errorf("%s exited before it was ready: %s", p.name, p.exitStatus())
		}
		attemptCtx, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		last = ready(attemptCtx)
		cancelAttempt()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", timeout, last)
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// dialReady returns a readiness check that succeeds once addr accepts TCP.
func dialReady(addrs ...string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		for _, a := range addrs {
			c, err := d.DialContext(ctx, "tcp", a)
			if err != nil {
				return err
			}
			c.Close()
		}
		return nil
	}
}

// httpReady reports whether GET url answers 200 OK.
func httpReady(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// listening reports whether some socket listens on 127.0.0.1:port, by reading
// /proc/net/tcp, without connecting (a connection would be a session for
// servers that count or fault sessions). ok is false when /proc is unavailable.
func listening(port int) (yes, ok bool) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false, false
	}
	// local_address is "0100007F:1F90" (127.0.0.1:8080, little-endian IP), state 0A = LISTEN.
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			return true, true
		}
	}
	return false, true
}

// listenReady succeeds once 127.0.0.1:port is in LISTEN state; it falls back
// to dialing where /proc/net/tcp is unavailable.
func listenReady(port int) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		yes, ok := listening(port)
		if !ok {
			return dialReady(loopback(port))(ctx)
		}
		if !yes {
			return errors.New("port " + strconv.Itoa(port) + " is not listening yet")
		}
		return nil
	}
}
